/*-------------------------------------------------------------------------
 *
 * epochs.c
 *	  Counters that tell the hosts to forget what they keep in memory.
 *
 *	- the storage epoch moves when a transaction that wrote durable._storage
 *	  behind the hosts' back commits: hosts forget their cached storage;
 *	- the settings epoch moves when an ALTER ROLE/DATABASE ... SET commits:
 *	  hosts read the settings of class owners again;
 *	- the class directory's dirty flag is set when classes changed: the scheduler
 *	  sends the gateway a new directory (and is woken for it);
 *	- the gone epoch of a database moves when its scheduler finds the
 *	  extension gone from the database (DROP EXTENSION, or outdated SQL): hosts stop serving and leave,
 *	  which returns all their memory.
 * All are atomics; nothing here throws.
 *
 * IDENTIFICATION
 *	  src/shared/epochs.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/epochs.h"
#include "shared/hosts.h"

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

typedef struct EpochsShared
{
	pg_atomic_uint64 storage;
	pg_atomic_uint64 settings;
	pg_atomic_uint32 classes_dirty;	/* per database, a bit */
	pg_atomic_uint64 gone[DURABLE_MAX_DATABASES];	/* per database */
} EpochsShared;

static EpochsShared *shared = NULL;

void
DurableEpochsShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(EpochsShared)));
}

void
DurableEpochsShmemStartup(void)
{
	bool		found;
	int			i;

	shared = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pg_durable_objects epochs", sizeof(EpochsShared), &found);
	if (!found)
	{
		pg_atomic_init_u64(&shared->storage, 0);
		pg_atomic_init_u64(&shared->settings, 0);
		pg_atomic_init_u32(&shared->classes_dirty, ~((uint32) 0));
		for (i = 0; i < DURABLE_MAX_DATABASES; i++)
			pg_atomic_init_u64(&shared->gone[i], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

uint64
DurableStorageEpoch(void)
{
	return pg_atomic_read_u64(&shared->storage);
}

void
DurableStorageEpochBump(void)
{
	if (shared)
		pg_atomic_fetch_add_u64(&shared->storage, 1);
}

uint64
DurableSettingsEpoch(void)
{
	return pg_atomic_read_u64(&shared->settings);
}

void
DurableSettingsEpochBump(void)
{
	if (shared)
		pg_atomic_fetch_add_u64(&shared->settings, 1);
}

/*
 * DurableClassDirMarkDirty
 *		Classes changed in this process's database (in all of them from a
 *		process that serves none, e.g. a session dropping the extension in a
 *		database it never called into): its scheduler sends the gateway a
 *		new directory soon.
 */
void
DurableClassDirMarkDirty(void)
{
	if (shared == NULL)
		return;
	pg_atomic_fetch_or_u32(&shared->classes_dirty,
						   durable_db >= 0 ? ((uint32) 1) << durable_db : ~((uint32) 0));
	DurableWakeScheduler();
}

/* whether classes of database db changed since its scheduler last asked */
bool
DurableClassDirTakeDirty(int db)
{
	uint32		bit = ((uint32) 1) << db;

	return (pg_atomic_fetch_and_u32(&shared->classes_dirty, ~bit) & bit) != 0;
}

/*
 * DurableExtensionGoneEpoch / DurableExtensionGoneBump
 *		The gone epoch of this process's database (a host, the scheduler):
 *		DROP EXTENSION in one database makes only that database's hosts leave.
 */
uint64
DurableExtensionGoneEpoch(void)
{
	Assert(durable_db >= 0);
	return pg_atomic_read_u64(&shared->gone[durable_db]);
}

void
DurableExtensionGoneBump(void)
{
	Assert(durable_db >= 0);
	if (shared)
		pg_atomic_fetch_add_u64(&shared->gone[durable_db], 1);
}
