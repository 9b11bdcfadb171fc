/*-------------------------------------------------------------------------
 *
 * at_commit.c
 *	  What a session's commit tells the hosts.
 *
 * One transaction callback per process, registered on first use, acts when
 * the transaction commits (and forgets when it aborts):
 *	- sends were committed for some home hosts: they are woken (or started)
 *	  at once, instead of at their next tick (call.c);
 *	- classes changed: the scheduler sends the gateway a new class directory
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
#include "shared/lanes.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"

PG_FUNCTION_INFO_V1(durable_storage_written);

/* home hosts with sends in this transaction: (owner, home) */
#define WAKE_MAX 16
static Oid	wake_owner[WAKE_MAX];
static int	wake_home[WAKE_MAX];
static int	nwake = 0;
static bool wake_overflow = false;	/* more than WAKE_MAX: the scheduler looks */
static bool classes_changed = false;	/* this transaction changed classes */
static bool storage_written = false;	/* it wrote storage outside a host */
static bool settings_changed = false;	/* it ran ALTER ROLE/DATABASE ... SET */
static bool callback_registered = false;

/*
 * wake_home_host
 *		Sends for owner's home host home (of this database) committed: wake it, or start it (it
 *		looks for due work when it starts).  With no slot free the scheduler
 *		starts it later, when it looks for due work.
 */
static void
wake_home_host(Oid owner, int home)
{
	int			hostno = DurableHostFind(durable_db, owner, home);

	if (hostno >= 0)
		DurableWakeHostForWork(hostno);
	else if (DurableReserveHost(durable_db, owner, home) < 0)
		DurableWakeSchedulerForWork();
}

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
		for (i = 0; i < nwake; i++)
			wake_home_host(wake_owner[i], wake_home[i]);
		if (wake_overflow)
			DurableWakeSchedulerForWork();
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		nwake = 0;
		wake_overflow = false;
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
 *		This transaction sent calls to objects of owner's home host home.
 */
void
DurableWakeHostAtCommit(Oid owner, int home)
{
	int			i;

	register_callback();
	for (i = 0; i < nwake; i++)
		if (wake_owner[i] == owner && wake_home[i] == home)
			return;
	if (nwake == WAKE_MAX)
	{
		wake_overflow = true;
		return;
	}
	wake_owner[nwake] = owner;
	wake_home[nwake] = home;
	nwake++;
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
