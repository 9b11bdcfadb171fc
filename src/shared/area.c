/*-------------------------------------------------------------------------
 *
 * area.c
 *	  The shared message area: where requests, replies and messages to the
 *	  gateway live on their way between processes.
 *
 * A DSA area created in place in a block of the main shared memory segment;
 * it grows by DSM segments when payloads are large, up to
 * durable.message_area_bytes in all (dsa_set_size_limit; an allocation that
 * would go over it fails cleanly).  A message is stored as one allocation:
 * the number of parts, the account it is counted in (0: none), the lengths
 * of the parts (PG_UINT32_MAX for a NULL part), then their bytes.  The sender
 * stores it, the receiver loads (copies) or views it in place and frees it.
 *
 * Counted messages.  The gateway stores its clients' calls with a budget
 * (DurableMessageStoreCounted): each connection has an account, and the
 * bytes of its messages still in the area are counted in a shared atomic
 * per account and in a total; whoever frees a message (a host, after
 * loading it) takes its bytes off again.  A message that would take its
 * account over the client's share, or the total over the gateway's part of
 * the area, is not stored (budget->over), and the gateway waits before
 * trying again, which slows that client down without refusing it.
 *
 * Errors.  Storing returns InvalidDsaPointer when the area is at its limit
 * (DSA_ALLOC_NO_OOM).  But when the operating system refuses a new segment
 * (a full /dev/shm), dsm_create raises an ERROR, which DSA_ALLOC_NO_OOM does
 * not cover: callers that must not throw catch it (the gateway does, in
 * routes.c).  No lock of ours is held while the area allocates or maps a
 * segment.
 *
 * IDENTIFICATION
 *	  src/shared/area.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/area.h"
#include "shared/settings.h"

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"

#define AREA_INITIAL_SIZE (4 * 1024 * 1024)
#define PART_NULL		PG_UINT32_MAX
#define HEADER_WORDS	2		/* number of parts, account */

typedef struct AreaShared
{
	int			tranche;
	pg_atomic_uint64 counted;	/* bytes of counted messages in the area */
	pg_atomic_uint64 accounts[DURABLE_AREA_ACCOUNTS];	/* the same per account */
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

		int			i;

		shared->tranche = LWLockNewTrancheId();
		pg_atomic_init_u64(&shared->counted, 0);
		for (i = 0; i < DURABLE_AREA_ACCOUNTS; i++)
			pg_atomic_init_u64(&shared->accounts[i], 0);
		created = dsa_create_in_place(shared->place, AREA_INITIAL_SIZE, shared->tranche, NULL);
		dsa_set_size_limit(created, (Size) durable_message_area_bytes * 1024);
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
 * DurableAreaApplyLimit
 *		Make durable.message_area_bytes the area's size limit (after a
 *		reload; the area already larger keeps what it has).
 */
void
DurableAreaApplyLimit(void)
{
	dsa_set_size_limit(DurableArea(), (Size) durable_message_area_bytes * 1024);
}

/* the bytes of a stored message with parts */
static Size
stored_size(const DurableParts *parts)
{
	Size		size = sizeof(uint32) * (HEADER_WORDS + parts->nparts);
	int			i;

	for (i = 0; i < parts->nparts; i++)
		if (!parts->isnull[i])
			size += parts->len[i];
	return size;
}

/* take a message's bytes off its account */
static void
uncount(uint32 account, Size size)
{
	if (account == 0 || account >= DURABLE_AREA_ACCOUNTS)
		return;
	pg_atomic_fetch_sub_u64(&shared->accounts[account], size);
	pg_atomic_fetch_sub_u64(&shared->counted, size);
}

/*
 * store
 *		Copy parts into the area, counted in account (0: not counted).
 *		InvalidDsaPointer when the area is at its limit.
 */
static dsa_pointer
store(const DurableParts *parts, uint32 account)
{
	Size		size = stored_size(parts);
	dsa_pointer dp;
	char	   *p;
	int			i;

	Assert(parts->nparts <= DURABLE_MAX_PARTS);
	dp = dsa_allocate_extended(DurableArea(), size, DSA_ALLOC_NO_OOM | DSA_ALLOC_HUGE);
	if (!DsaPointerIsValid(dp))
		return InvalidDsaPointer;

	p = dsa_get_address(DurableArea(), dp);
	((uint32 *) p)[0] = parts->nparts;
	((uint32 *) p)[1] = account;
	for (i = 0; i < parts->nparts; i++)
		((uint32 *) p)[HEADER_WORDS + i] = parts->isnull[i] ? PART_NULL : parts->len[i];
	p += sizeof(uint32) * (HEADER_WORDS + parts->nparts);
	for (i = 0; i < parts->nparts; i++)
	{
		if (parts->isnull[i])
			continue;
		memcpy(p, parts->data[i], parts->len[i]);
		p += parts->len[i];
	}
	return dp;
}

/* store, counted in account: size is taken off again if it raises an ERROR */
static dsa_pointer
store_counted(const DurableParts *parts, uint32 account, Size size)
{
	volatile dsa_pointer dp = InvalidDsaPointer;

	PG_TRY();
	{
		dp = store(parts, account);
	}
	PG_CATCH();
	{
		uncount(account, size);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return dp;
}

/*
 * DurableMessageStore
 *		Copy parts into the area, not counted.  InvalidDsaPointer when the
 *		area is at its limit; see the header comment for the ERROR a full
 *		/dev/shm raises.
 */
dsa_pointer
DurableMessageStore(const DurableParts *parts)
{
	return store(parts, 0);
}

/*
 * DurableMessageStoreCounted
 *		Copy parts into the area, counted in budget->account, unless that
 *		would take the account over budget->account_limit or all counted
 *		messages over budget->total_limit: then InvalidDsaPointer with
 *		budget->over set.  InvalidDsaPointer (over not set) when the area is
 *		at its limit; an ERROR for a full /dev/shm, as DurableMessageStore.
 *		The counts are checked, then added, then the message allocated: one
 *		process (the gateway) adds to them, others only take off.
 */
dsa_pointer
DurableMessageStoreCounted(const DurableParts *parts, DurableAreaBudget *budget)
{
	Size		size = stored_size(parts);
	uint32		account = budget->account;
	dsa_pointer dp;

	budget->over = false;
	if (account == 0 || account >= DURABLE_AREA_ACCOUNTS)
		return store(parts, 0);
	if (pg_atomic_read_u64(&shared->accounts[account]) + size > budget->account_limit ||
		pg_atomic_read_u64(&shared->counted) + size > budget->total_limit)
	{
		budget->over = true;
		return InvalidDsaPointer;
	}
	pg_atomic_fetch_add_u64(&shared->accounts[account], size);
	pg_atomic_fetch_add_u64(&shared->counted, size);
	dp = store_counted(parts, account, size);
	if (!DsaPointerIsValid(dp))
		uncount(account, size);
	return dp;
}

/* the bytes of account's messages in the area now */
uint64
DurableAreaAccountBytes(uint32 account)
{
	if (shared == NULL || account == 0 || account >= DURABLE_AREA_ACCOUNTS)
		return 0;
	return pg_atomic_read_u64(&shared->accounts[account]);
}

/* the bytes of all counted messages in the area now */
uint64
DurableAreaCountedBytes(void)
{
	return shared ? pg_atomic_read_u64(&shared->counted) : 0;
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
	uint32	   *words = (uint32 *) p;
	uint32	   *lens = words + HEADER_WORDS;
	int			i;

	memset(parts, 0, sizeof(*parts));
	parts->nparts = Min(words[0], DURABLE_MAX_PARTS);
	p += sizeof(uint32) * (HEADER_WORDS + words[0]);
	for (i = 0; i < parts->nparts; i++)
	{
		if (lens[i] == PART_NULL)
		{
			parts->isnull[i] = true;
			continue;
		}
		parts->data[i] = p;
		parts->len[i] = lens[i];
		p += lens[i];
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
	DurableMessageFree(message);
}

/*
 * DurableMessageFree
 *		Free a stored message (InvalidDsaPointer: nothing), taking its bytes
 *		off its account.
 */
void
DurableMessageFree(dsa_pointer message)
{
	uint32	   *words;

	if (!DsaPointerIsValid(message))
		return;
	words = dsa_get_address(DurableArea(), message);
	if (words[1] != 0)
	{
		DurableParts parts;

		DurableMessageView(message, &parts);
		uncount(words[1], stored_size(&parts));
	}
	dsa_free(DurableArea(), message);
}
