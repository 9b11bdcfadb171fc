/*-------------------------------------------------------------------------
 *
 * at_commit.c
 *	  What a session's commit tells the hosts.
 *
 * One transaction callback per process, registered on first use, acts when
 * the transaction commits (and forgets when it aborts):
 *	- sends were committed for some hosts: they are woken at once, instead of
 *	  at their next tick (call.c);
 *	- classes changed: host 0 sends the gateway a new class directory
 *	  (classes.c, epochs.c);
 *	- durable._storage was written behind the hosts' back (a restore, a
 *	  superuser's UPDATE, drop_class): the statement trigger
 *	  durable._storage_written is here; the hosts forget their cached storage;
 *	- ALTER ROLE/DATABASE ... SET ran (the utility hook of
 *	  pg_durable_objects.c): hosts read the settings of class owners again.
 *
 * IDENTIFICATION
 *	  src/sql/at_commit.c
 *
 *-------------------------------------------------------------------------
 */
#include "sql/sql.h"
#include "host/host.h"
#include "shared/epochs.h"
#include "shared/hosts.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"

PG_FUNCTION_INFO_V1(durable_storage_written);

static uint64 hosts_to_wake = 0;	/* bit per host with sends in this transaction */
static bool classes_changed = false;	/* this transaction changed classes */
static bool storage_written = false;	/* it wrote storage outside a host */
static bool settings_changed = false;	/* it ran ALTER ROLE/DATABASE ... SET */
static bool callback_registered = false;

static void
at_commit(XactEvent event, void *arg)
{
	int			i;

	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		if (classes_changed)
			DurableClassDirMarkDirty();
		if (storage_written)
			DurableStorageEpochBump();
		if (settings_changed)
			DurableSettingsEpochBump();
		for (i = 0; i < DurableHostCount() && hosts_to_wake != 0; i++)
			if (hosts_to_wake & ((uint64) 1 << i))
				DurableWakeHostForWork(i);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		hosts_to_wake = 0;
		classes_changed = false;
		storage_written = false;
		settings_changed = false;
	}
}

static void
register_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(at_commit, NULL);
		callback_registered = true;
	}
}

/*
 * DurableWakeHostAtCommit
 *		This transaction sent calls to objects of host hostno.
 */
void
DurableWakeHostAtCommit(int hostno)
{
	register_callback();
	hosts_to_wake |= (uint64) 1 << hostno;
}

/*
 * DurableClassesChangedAtCommit
 *		This transaction changed classes: when it commits, host 0 sends the
 *		gateway a new class directory.
 */
void
DurableClassesChangedAtCommit(void)
{
	register_callback();
	classes_changed = true;
}

/*
 * DurableSettingsChangedAtCommit
 *		This transaction ran ALTER ROLE/DATABASE ... SET: when it commits,
 *		hosts read the settings of class owners again (host/sandbox.c).
 */
void
DurableSettingsChangedAtCommit(void)
{
	if (!DurableShmemReady())
		return;
	register_callback();
	settings_changed = true;
}

/*
 * durable_storage_written
 *		durable._storage_written(): BEFORE ... FOR EACH STATEMENT trigger on
 *		durable._storage.  A write by anyone but a host makes the hosts forget
 *		their cached storage once it commits.
 */
Datum
durable_storage_written(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("durable._storage_written() must be called as a trigger")));
	if (!DurableInHost())
	{
		register_callback();
		storage_written = true;
	}
	PG_RETURN_POINTER(NULL);
}
