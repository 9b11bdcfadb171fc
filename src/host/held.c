/*-------------------------------------------------------------------------
 *
 * held.c
 *	  The objects this host holds until its batch commits.
 *
 * A host that takes a call from its ring, or runs an object outside its ring
 * (inline in another call, a due alarm or send, a call handed to its
 * mailbox), holds the object's lane (shared/lanes.c): no other host runs the
 * object until this host's transaction ended, so what the call wrote is
 * committed before anyone else reads it.  The objects are remembered here
 * and released after the batch's commit (or abort), or when the host exits.
 *
 * IDENTIFICATION
 *	  src/host/held.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/lanes.h"

#include "utils/memutils.h"

static uint64 *held = NULL;
static int	nheld = 0;
static int	held_size = 0;

/* remember that this host holds object once more */
void
DurableHeldAdd(uint64 object)
{
	if (nheld == held_size)
	{
		held_size = Max(2 * held_size, 256);
		held = held ? repalloc(held, sizeof(uint64) * held_size)
			: MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * held_size);
	}
	held[nheld++] = object;
}

/*
 * DurableHostHoldObject
 *		This host runs object outside its ring now: hold it (false if another
 *		host holds it).  *cache_valid: see DurableClaim.
 */
bool
DurableHostHoldObject(uint64 object, bool *cache_valid)
{
	if (!DurableClaim(durable_host_number, object, cache_valid))
		return false;
	DurableHeldAdd(object);
	return true;
}

/*
 * DurableHeldReleaseAll
 *		The batch's transaction ended: other hosts may run these objects now.
 *		Never throws.
 */
void
DurableHeldReleaseAll(void)
{
	int			i;

	for (i = 0; i < nheld; i++)
		DurableRelease(held[i]);
	nheld = 0;
}

/*
 * DurableHeldReleaseAllBut
 *		The same, keeping one hold of object (its preempted call runs next).
 */
void
DurableHeldReleaseAllBut(uint64 object)
{
	bool		kept = false;
	int			i;

	for (i = 0; i < nheld; i++)
	{
		if (!kept && held[i] == object)
			kept = true;
		else
			DurableRelease(held[i]);
	}
	nheld = 0;
	if (kept)
		held[nheld++] = object;
}

/* how many holds this host has (0: it may leave) */
int
DurableHeldCount(void)
{
	return nheld;
}
