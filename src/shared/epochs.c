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
 *	- the gone epoch moves when the scheduler finds the extension gone from the
 *	  database (DROP EXTENSION, or outdated SQL): hosts stop serving and leave,
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
	pg_atomic_uint32 classes_dirty;
	pg_atomic_uint64 gone;
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

	shared = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pg_durable_objects epochs", sizeof(EpochsShared), &found);
	if (!found)
	{
		pg_atomic_init_u64(&shared->storage, 0);
		pg_atomic_init_u64(&shared->settings, 0);
		pg_atomic_init_u32(&shared->classes_dirty, 1);
		pg_atomic_init_u64(&shared->gone, 0);
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
 *		Classes changed: the scheduler sends the gateway a new directory soon.
 */
void
DurableClassDirMarkDirty(void)
{
	if (shared == NULL)
		return;
	pg_atomic_write_u32(&shared->classes_dirty, 1);
	DurableWakeScheduler();
}

/* whether classes changed since the scheduler last asked */
bool
DurableClassDirTakeDirty(void)
{
	return pg_atomic_exchange_u32(&shared->classes_dirty, 0) != 0;
}

uint64
DurableExtensionGoneEpoch(void)
{
	return pg_atomic_read_u64(&shared->gone);
}

void
DurableExtensionGoneBump(void)
{
	if (shared)
		pg_atomic_fetch_add_u64(&shared->gone, 1);
}
