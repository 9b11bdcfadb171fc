/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The scheduler: starts and stops the hosts, and keeps calls moving.
 *
 * One background worker per database of durable.database, registered by
 * _PG_init, connected to that database; it looks after the host slots of
 * its database only (making room excepted: any scheduler may ask an idle
 * host of any database to leave).  It never runs a handler, so no object
 * can stall it.  A database it cannot connect to (it does not exist) is
 * tried again every UNREACHABLE_RETRY_MS, each failure logged.  It loops:
 *	- it starts a host process (a dynamic background worker) for every host
 *	  slot a caller reserved (shared/hosts.c), and again for one whose
 *	  process died; a slot whose process cannot be started (no free
 *	  background worker slot) is given up and its calls fail with 53400;
 *	- it watches the hosts: one that has been in one call for longer than
 *	  durable.busy_threshold marks that call's object slow and has the calls
 *	  of other objects queued behind it moved to other hosts of the same
 *	  owner (shared/lanes.c), so one slow object never stalls the others;
 *	- when a caller found every slot taken, it asks the host of another owner
 *	  that was idle longest to leave;
 *	- once a second (and when woken for it) it starts the home hosts of
 *	  owners with due alarms or pending sends whose hosts do not run;
 *	- it sends the gateway the class directory of its database (upkeep.c).
 * While some host is busy it looks every BUSY_TICK_MS, else it sleeps until
 * woken, at most a second.
 *
 * IDENTIFICATION
 *	  src/host/scheduler.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/lanes.h"
#include "shared/placement.h"

#include <setjmp.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define BUSY_TICK_MS 10
#define DUE_LOOK_MS 1000
#define RESTART_DELAY_MS 1000	/* a host that died is started again after this */
#define ASK_AGAIN_MS 1000		/* a host that would not leave is asked again after this */
#define UNREACHABLE_RETRY_MS 10000	/* a database that could not be connected to */

static BackgroundWorkerHandle **handles = NULL;	/* per slot: our last start */
static TimestampTz *started_at = NULL;
static TimestampTz *asked_at = NULL;	/* per slot: when make_room last asked it to leave */

static SPIPlanPtr due_plan = NULL;

/*
 * register_host
 *		Start the process of host slot hostno; false if no background worker
 *		slot is free.
 */
static bool
register_host(int hostno)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_durable_objects");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "DurableHostMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_durable_objects host %d", hostno);
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_durable_objects host");
	worker.bgw_main_arg = Int32GetDatum(hostno);
	worker.bgw_notify_pid = MyProcPid;
	if (handles[hostno] != NULL)
		pfree(handles[hostno]);
	handles[hostno] = NULL;
	return RegisterDynamicBackgroundWorker(&worker, &handles[hostno]);
}

/* a slot whose process cannot start: its calls fail, the slot is free again */
static void
give_up_slot(int hostno)
{
	DurableRequest reqs[64];
	int			n;
	int			i;

	ereport(WARNING,
			(errmsg("pg_durable_objects could not start host %d: no background worker slot is free",
					hostno),
			 errhint("Raise max_worker_processes (hosts need durable.max_hosts of them, plus the scheduler and the gateway).")));
	while ((n = DurableDrain(hostno, reqs, lengthof(reqs))) > 0)
	{
		for (i = 0; i < n; i++)
		{
			DurableCall call;

			DurableCallLoad(&reqs[i], &call);
			DurableCallFail(&call, ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
							"no durable host could be started for the call",
							"No background worker slot is free (max_worker_processes); the call was not run.");
		}
	}
	DurableHostFree(hostno);
}

/*
 * start_hosts
 *		Start a process for every reserved slot that has none (a new host, or
 *		one whose process died).
 */
static void
start_hosts(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < DurableHostSlots(); i++)
	{
		DurableHostState state;
		int			db;
		Oid			owner;
		int			home;
		pid_t		pid;

		DurableHostSlotInfo(i, &state, &db, &owner, &home);
		if (state != DURABLE_HOST_RESERVED || db != durable_db)
			continue;
		if (handles[i] != NULL &&
			GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED)
			continue;			/* starting */
		if (handles[i] != NULL &&
			!TimestampDifferenceExceeds(started_at[i], now, RESTART_DELAY_MS))
			continue;			/* died just now: not at once again */
		started_at[i] = now;
		if (!register_host(i))
			give_up_slot(i);
	}
}

/*
 * watch_busy_hosts
 *		Hosts of this database in one call for longer than
 *		durable.busy_threshold: their call's object is slow, and what waits
 *		behind it for other objects moves.  Whether any host is in a call at
 *		all (then we look again soon).
 */
static bool
watch_busy_hosts(void)
{
	TimestampTz stuck_before = GetCurrentTimestamp() -
		(TimestampTz) durable_busy_threshold * 1000;
	bool		any_busy = false;
	int			i;

	for (i = 0; i < DurableHostSlots(); i++)
	{
		uint64		object;
		DurableHostState state;
		int			db;
		Oid			owner;
		int			home;

		if (!DurableHostBusy(i, 0, NULL))
			continue;
		DurableHostSlotInfo(i, &state, &db, &owner, &home);
		if (db != durable_db)
			continue;
		any_busy = true;
		if (!DurableHostBusy(i, stuck_before, &object))
			continue;
		DurableMarkSlow(object);
		(void) DurableMoveQueued(i, object);
	}
	return any_busy;
}

/*
 * make_room
 *		A caller found every slot taken: ask the running host that was idle
 *		longest (and is idle now, and was not asked within ASK_AGAIN_MS: it
 *		stays while it has work due soon) to leave.
 */
static void
make_room(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz oldest = 0;
	int			victim = -1;
	int			i;

	for (i = 0; i < DurableHostSlots(); i++)
	{
		DurableHostState state;
		int			db;
		Oid			owner;
		int			home;
		TimestampTz last;

		DurableHostSlotInfo(i, &state, &db, &owner, &home);
		if (state != DURABLE_HOST_RUNNING || DurableHostBusy(i, 0, NULL) ||
			!DurableRingEmpty(i) ||
			!TimestampDifferenceExceeds(asked_at[i], now, ASK_AGAIN_MS))
			continue;
		last = DurableHostLastActive(i);
		if (victim < 0 || last < oldest)
		{
			victim = i;
			oldest = last;
		}
	}
	if (victim >= 0)
	{
		asked_at[victim] = now;
		DurableHostAskRetire(victim);
	}
}

/* owners and homes with alarms or sends falling due within a second */
#define DUE_ALARMS_SQL \
	"SELECT c.owner::pg_catalog.oid, (a.shard OPERATOR(pg_catalog.%) $1)::pg_catalog.int4 " \
	"  FROM durable._alarms a JOIN durable._classes c " \
	"    ON c.name OPERATOR(pg_catalog.=) a.class " \
	" WHERE a.at OPERATOR(pg_catalog.<=) (pg_catalog.clock_timestamp() " \
	"                 OPERATOR(pg_catalog.+) '1 second'::pg_catalog.interval) " \
	"   AND c.owner IS NOT NULL"
#define DUE_SENDS_SQL \
	"SELECT c.owner::pg_catalog.oid, (o.shard OPERATOR(pg_catalog.%) $1)::pg_catalog.int4 " \
	"  FROM durable._outbox o JOIN durable._classes c " \
	"    ON c.name OPERATOR(pg_catalog.=) o.class " \
	" WHERE o.not_before OPERATOR(pg_catalog.<=) " \
	"       (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) '1 second'::pg_catalog.interval) " \
	"   AND c.owner IS NOT NULL"

/* reserve the home hosts of the (owner, home) rows of the last statement */
static void
reserve_homes(void)
{
	uint64		i;

	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));
		int			home = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc, 2, &isnull));

		if (DurableHostFind(durable_db, owner, home) < 0 &&
			DurableReserveHost(durable_db, owner, home) < 0)
			DurableHostNeedSlot();
	}
}

/*
 * start_hosts_with_due_work
 *		In a transaction: reserve the home hosts of owners that have alarms
 *		or sends falling due within a second, and no running host.  With the
 *		tables distributed by Citus, only those of this node's shards
 *		(placement.c): other nodes' schedulers start theirs.
 */
static void
start_hosts_with_due_work(void *unused)
{
	static const char *sql = DUE_ALARMS_SQL " UNION " DUE_SENDS_SQL;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	DurableSpiState spi;
	char	   *local;
	int			which;

	if (!DurableExtensionPresent())
		return;
	values[0] = Int32GetDatum(durable_hosts);
	DurableSpiBegin(&spi);
	if (!DurableLocalStatement(DUE_ALARMS_SQL, "durable._alarms", 1, "ALL", &local))
	{
		DurableSpiExecute(DurableSpiPlan(&due_plan, sql, 1, types), values, NULL, true,
						  SPI_OK_SELECT);
		reserve_homes();
	}
	else
	{
		for (which = 0; which < 2; which++)
		{
			if (which == 1)
				DurableLocalStatement(DUE_SENDS_SQL, "durable._outbox", 1, "ALL", &local);
			if (local == NULL)
				continue;
			if (SPI_execute_with_args(local, 1, types, values, NULL, true, 0) != SPI_OK_SELECT)
				elog(ERROR, "SPI_execute_with_args failed");
			reserve_homes();
		}
	}
	DurableSpiEnd(&spi);
}

/* look for due work in a transaction of its own; an error is logged */
static void
look_for_due_work(void)
{
	DurableRunAlone("durable scheduler: due work", start_hosts_with_due_work, NULL);
}

static bool connected = false;

/* leaving: before connecting, the database could not be connected to */
static void
scheduler_exit(int code, Datum arg)
{
	if (connected)
		DurableSchedulerDetach(durable_db);
	else
		DurableSchedulerUnreachable(durable_db);
}

/* the CONTEXT of an error while connecting: which setting named the database */
static void
connecting_context(void *arg)
{
	errcontext("pg_durable_objects scheduler connecting to database \"%s\" of durable.database",
			   DurableDatabaseName(durable_db));
}

/*
 * connect_database
 *		Connect to this scheduler's database.  If the last try failed (it
 *		does not exist, or does not allow connections), wait
 *		UNREACHABLE_RETRY_MS first, so that a wrong name costs a log line
 *		per ten seconds, not a restart loop; the failure itself is FATAL
 *		(the postmaster starts the scheduler again).
 */
static void
connect_database(void)
{
	ErrorContextCallback context;
	TimestampTz start = GetCurrentTimestamp();

	while (DurableDatabaseUnreachable(durable_db) &&
		   !TimestampDifferenceExceeds(start, GetCurrentTimestamp(), UNREACHABLE_RETRY_MS))
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 UNREACHABLE_RETRY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	context.callback = connecting_context;
	context.arg = NULL;
	context.previous = error_context_stack;
	error_context_stack = &context;
	BackgroundWorkerInitializeConnection(DurableDatabaseName(durable_db), NULL, 0);
	error_context_stack = context.previous;
	connected = true;
}

/*
 * DurableSchedulerMain
 *		Entry point of the scheduler.
 */
void
DurableSchedulerMain(Datum main_arg)
{
	sigjmp_buf	local_sigjmp_buf;
	static TimestampTz last_due_look = 0;

	durable_db = DatumGetInt32(main_arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	before_shmem_exit(scheduler_exit, (Datum) 0);
	connect_database();
	pgstat_report_appname("pg_durable_objects scheduler");
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);

	handles = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(BackgroundWorkerHandle *) * DurableHostSlots());
	started_at = MemoryContextAllocZero(TopMemoryContext,
										sizeof(TimestampTz) * DurableHostSlots());
	asked_at = MemoryContextAllocZero(TopMemoryContext,
									  sizeof(TimestampTz) * DurableHostSlots());
	DurableSchedulerAttach(durable_db);
	ereport(LOG,
			(errmsg("pg_durable_objects scheduler started in database \"%s\"",
					DurableDatabaseName(durable_db))));

	/* an error of a chore is logged; the loop goes on */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		error_context_stack = NULL;
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(TopMemoryContext);
		EmitErrorReport();
		AbortCurrentTransaction();
		LWLockReleaseAll();
		FlushErrorState();
		RESUME_INTERRUPTS();
		pg_usleep(100000L);		/* not a tight loop of the same error */
	}
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		bool		busy;
		TimestampTz now;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		start_hosts();
		busy = watch_busy_hosts();
		if (DurableHostSlotWanted())
			make_room();
		now = GetCurrentTimestamp();
		if (DurableSchedulerTakeWork(durable_db) ||
			TimestampDifferenceExceeds(last_due_look, now, DUE_LOOK_MS))
		{
			last_due_look = now;
			look_for_due_work();
			start_hosts();
		}
		DurableClassDirMaintain();

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 busy ? Max(Min(BUSY_TICK_MS, durable_busy_threshold / 2), 1) : DUE_LOOK_MS,
						 PG_WAIT_EXTENSION);
	}
}

/*
 * DurableSchedulerRegister
 *		_PG_init: register the scheduler of every database of
 *		durable.database (main_arg: its number); each is restarted a second
 *		after it exits.
 */
void
DurableSchedulerRegister(void)
{
	BackgroundWorker worker;
	int			db;

	for (db = 0; db < DurableDatabaseCount(); db++)
	{
		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = 1;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_durable_objects");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "DurableSchedulerMain");
		/* the first keeps the name it always had */
		if (db == 0)
			snprintf(worker.bgw_name, BGW_MAXLEN, "pg_durable_objects scheduler");
		else
			snprintf(worker.bgw_name, BGW_MAXLEN, "pg_durable_objects scheduler %s",
					 DurableDatabaseName(db));
		snprintf(worker.bgw_type, BGW_MAXLEN, "pg_durable_objects scheduler");
		worker.bgw_main_arg = Int32GetDatum(db);
		worker.bgw_notify_pid = 0;
		RegisterBackgroundWorker(&worker);
	}
}
