/*-------------------------------------------------------------------------
 *
 * area.c
 *	  The shared message area: where requests, replies and messages to the
 *	  gateway live on their way between processes.
 *
 * A DSA area created in place in a block of the main shared memory segment;
 * it grows by DSM segments when payloads are large, so nothing below
 * durable.max_message_bytes is truncated or refused.  A message is stored as
 * one allocation: the number of parts, their lengths (PG_UINT32_MAX for a
 * NULL part), then their bytes.  The sender stores it, the receiver loads
 * (copies) or views it in place and frees it.  Storing never throws: it
 * returns InvalidDsaPointer when shared memory is exhausted, so that hosts
 * and the gateway can use it where they must not throw.
 *
 * IDENTIFICATION
 *	  src/shared/area.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/area.h"

#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"

#define AREA_INITIAL_SIZE (4 * 1024 * 1024)
#define PART_NULL		PG_UINT32_MAX

typedef struct AreaShared
{
	int			tranche;
	char		place[FLEXIBLE_ARRAY_MEMBER];	/* the DSA area, AREA_INITIAL_SIZE */
} AreaShared;

static AreaShared *shared = NULL;
static dsa_area *area = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(AreaShared, place), AREA_INITIAL_SIZE);
}

/*
 * DurableAreaShmemRequest / DurableAreaShmemStartup
 *		shmem hooks: room for the area, created in place (once).
 */
void
DurableAreaShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(shared_size()));
}

void
DurableAreaShmemStartup(void)
{
	bool		found;

	shared = NULL;
	area = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pg_durable_objects messages", shared_size(), &found);
	if (!found)
	{
		dsa_area   *created;

		shared->tranche = LWLockNewTrancheId();
		created = dsa_create_in_place(shared->place, AREA_INITIAL_SIZE, shared->tranche, NULL);
		dsa_pin(created);
		dsa_detach(created);
	}
	LWLockRelease(AddinShmemInitLock);
	LWLockRegisterTranche(shared->tranche, "pg_durable_objects");
}

/*
 * DurableArea
 *		This process's handle of the area, attached on first use.
 */
dsa_area *
DurableArea(void)
{
	if (area == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		LWLockRegisterTranche(shared->tranche, "pg_durable_objects");
		area = dsa_attach_in_place(shared->place, NULL);
		dsa_pin_mapping(area);
		MemoryContextSwitchTo(old);
	}
	return area;
}

/*
 * DurableAreaAttach
 *		Attach the area now (it is otherwise attached on first use), for
 *		processes that must not allocate later, like the gateway.
 */
void
DurableAreaAttach(void)
{
	(void) DurableArea();
}

/*
 * DurableMessageStore
 *		Copy parts into the area.  InvalidDsaPointer when it is exhausted.
 */
dsa_pointer
DurableMessageStore(const DurableParts *parts)
{
	Size		size = sizeof(uint32) * (1 + parts->nparts);
	dsa_pointer dp;
	char	   *p;
	int			i;

	Assert(parts->nparts <= DURABLE_MAX_PARTS);
	for (i = 0; i < parts->nparts; i++)
		if (!parts->isnull[i])
			size += parts->len[i];

	dp = dsa_allocate_extended(DurableArea(), size, DSA_ALLOC_NO_OOM | DSA_ALLOC_HUGE);
	if (!DsaPointerIsValid(dp))
		return InvalidDsaPointer;

	p = dsa_get_address(DurableArea(), dp);
	((uint32 *) p)[0] = parts->nparts;
	for (i = 0; i < parts->nparts; i++)
		((uint32 *) p)[i + 1] = parts->isnull[i] ? PART_NULL : parts->len[i];
	p += sizeof(uint32) * (1 + parts->nparts);
	for (i = 0; i < parts->nparts; i++)
	{
		if (parts->isnull[i])
			continue;
		memcpy(p, parts->data[i], parts->len[i]);
		p += parts->len[i];
	}
	return dp;
}

/*
 * DurableMessageView
 *		Point parts at the parts of a stored message, in place (not
 *		NUL-terminated).  Allocates nothing.
 */
void
DurableMessageView(dsa_pointer message, DurableParts *parts)
{
	char	   *p = dsa_get_address(DurableArea(), message);
	uint32	   *lens = (uint32 *) p;
	int			i;

	memset(parts, 0, sizeof(*parts));
	parts->nparts = Min(lens[0], DURABLE_MAX_PARTS);
	p += sizeof(uint32) * (1 + lens[0]);
	for (i = 0; i < parts->nparts; i++)
	{
		if (lens[i + 1] == PART_NULL)
		{
			parts->isnull[i] = true;
			continue;
		}
		parts->data[i] = p;
		parts->len[i] = lens[i + 1];
		p += lens[i + 1];
	}
}

/*
 * DurableMessageLoad
 *		Copy a stored message into palloc'd memory of the current context and
 *		free it in the area.  Every part is NUL-terminated.
 */
void
DurableMessageLoad(dsa_pointer message, DurableParts *parts)
{
	int			i;

	DurableMessageView(message, parts);
	for (i = 0; i < parts->nparts; i++)
	{
		char	   *copy;

		if (parts->isnull[i])
			continue;
		copy = palloc(parts->len[i] + 1);
		memcpy(copy, parts->data[i], parts->len[i]);
		copy[parts->len[i]] = '\0';
		parts->data[i] = copy;
	}
	dsa_free(DurableArea(), message);
}

void
DurableMessageFree(dsa_pointer message)
{
	if (DsaPointerIsValid(message))
		dsa_free(DurableArea(), message);
}
