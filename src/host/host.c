/*-------------------------------------------------------------------------
 *
 * host.c
 *	  The host worker: takes calls from its ring and runs them in batches.
 *
 * durable.hosts of these background workers are registered by _PG_init.
 * Each loops: wait on its latch, take up to durable.max_batch requests,
 * run them in one transaction with a subtransaction per call (invoke.c),
 * commit once, and only then publish the outcomes (call_io.c).  If the
 * batch's commit fails (a storage write of one call waits too long for a row
 * lock, say), every call of the batch is run again in a transaction of its
 * own, so that one call never changes another's outcome.
 *
 * When its timer says so, or when woken for new sends, a batch also takes the
 * host's due alarms and sends (work.c); the loop sleeps until the next one
 * falls due, never longer than a second.
 *
 * A host survives errors: handler errors end their call only; any other
 * error aborts the batch (its callers get the error) and the loop goes on
 * from the sigsetjmp block.  When the host exits (SIGTERM, FATAL), its
 * before_shmem_exit callback answers every caller it holds, so nobody waits
 * on a host that is gone; the postmaster restarts it after a second.
 *
 * IDENTIFICATION
 *	  src/host/host.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/replies.h"

#include <setjmp.h>

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"


typedef enum BatchState
{
	BATCH_IDLE,					/* no calls held */
	BATCH_RUNNING,				/* calls taken, not committed */
	BATCH_COMMITTED				/* committed, replies not all published */
} BatchState;

static MemoryContext BatchContext = NULL;
static DurableCall *batch = NULL;
static int	batch_size = 0;
static volatile BatchState batch_state = BATCH_IDLE;

/* alarms and sends (work.c) */
static bool work_dirty = true;	/* look for due work at the next chance */
static int	work_taken = 0;		/* due items the last batch took */
static TimestampTz next_wake = 0;	/* when the next pending item falls due */
static TimestampTz last_work_look = 0;

#define WORK_SAFETY_LOOK_MS 10000

/*
 * fail_batch
 *		Answer every call of the held batch with the same error.  Nothing the
 *		calls queued for sockets goes out: they did not commit.
 */
static void
fail_batch(int sqlerrcode, const char *message, const char *detail)
{
	int			i;

	DurableOutboundReset();
	for (i = 0; i < batch_size; i++)
		if (!batch[i].skipped)
			DurableCallFail(&batch[i], sqlerrcode, message, detail);
	batch_size = 0;
	batch_state = BATCH_IDLE;
}

/*
 * host_exit
 *		before_shmem_exit callback: answer everyone this host holds, then mark
 *		it gone.  Runs after the transaction was aborted.
 */
static void
host_exit(int code, Datum arg)
{
	DurableRequest reqs[64];
	int			n;
	int			i;

	if (batch_state == BATCH_COMMITTED)
	{
		for (i = 0; i < batch_size; i++)
			DurableCallPublish(&batch[i]);
		batch_size = 0;
	}
	else if (batch_state == BATCH_RUNNING)
		fail_batch(ERRCODE_ADMIN_SHUTDOWN,
				   "durable host exited before the call committed",
				   "The call's writes were rolled back.");
	batch_state = BATCH_IDLE;
	DurableHostRefuseMailbox();

	while ((n = DurableDequeue(durable_host_number, reqs, lengthof(reqs))) > 0)
	{
		for (i = 0; i < n; i++)
		{
			DurableCall call;

			DurableCallLoad(&reqs[i], &call);
			DurableCallFail(&call, ERRCODE_ADMIN_SHUTDOWN,
					  "durable host exited before the call started",
					  "The call was not run.");
		}
	}

	DurableHostDetach(durable_host_number);
}

/*
 * take_batch
 *		Move up to durable.max_batch requests from the ring into batch[]
 *		(half as many with leave_room).
 */
static int
take_batch(bool leave_room)
{
	DurableRequest reqs[DURABLE_MAX_BATCH];
	int			max = Min(durable_max_batch, DURABLE_MAX_BATCH);
	int			n;
	int			i;

	/* due alarms and sends get half of the batch when they want it */
	if (leave_room && max > 1)
		max -= max / 2;
	n = DurableDequeue(durable_host_number, reqs, max);
	for (i = 0; i < n; i++)
		DurableCallLoad(&reqs[i], &batch[i]);
	batch_size = n;
	if (n > 0)
		batch_state = BATCH_RUNNING;
	return n;
}

/*
 * send_waits_behind_failure
 *		Sends to one object run in send order: a send whose object had an
 *		earlier send fail in this batch is left for later (it stays in the
 *		outbox, behind the failed one, which now waits for its retry).
 */
static bool
send_waits_behind_failure(DurableCall *calls, int i)
{
	int			j;

	if (calls[i].source != DURABLE_SOURCE_SEND)
		return false;
	for (j = 0; j < i; j++)
		if (calls[j].source == DURABLE_SOURCE_SEND && !calls[j].skipped &&
			calls[j].status == DURABLE_REPLY_ERROR &&
			strcmp(calls[j].class_name, calls[i].class_name) == 0 &&
			strcmp(calls[j].id, calls[i].id) == 0)
			return true;
	return false;
}

/*
 * run_transaction
 *		Run calls[0..*n-1] in one transaction.  With fetch_work, first append
 *		the due alarms and sends of this host to calls (up to the batch size)
 *		and update next_wake.  Returns false (with *error set) if the
 *		transaction failed as a whole, e.g. at commit.
 */
static bool
run_transaction(DurableCall *calls, int *n_calls, bool fetch_work, ErrorData **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool committed = false;

	PG_TRY();
	{
		bool		all_async = true;
		int			n;
		int			i;

		DurableHostTransactionStart("durable batch");
		DurableOutboundReset();
		if (fetch_work)
		{
			int			room = Min(durable_max_batch, DURABLE_MAX_BATCH) - *n_calls;

			MemoryContextSwitchTo(BatchContext);
			if (room > 0)
			{
				work_taken = DurableWorkFetch(calls + *n_calls, room, &next_wake);
				*n_calls += work_taken;
			}
			else
				work_dirty = true;	/* no room this time: look again next time */
			MemoryContextSwitchTo(cxt);
		}
		n = *n_calls;

		for (i = 0; i < n; i++)
		{
			DurableCall *call = &calls[i];

			call->skipped = (call->source == DURABLE_SOURCE_REQUEST && call->req.caller >= 0 &&
							 !DurableReplySlotWaiting(call->req.caller, call->req.seq)) ||
				send_waits_behind_failure(calls, i);
			if (call->skipped)
				continue;
			DurableOutboundSetCall(call);
			DurableInvoke(call, BatchContext);
			all_async &= call->async_commit;
		}
		if (all_async)
			(void) set_config_option("synchronous_commit", "off",
									 PGC_SUSET, PGC_S_SESSION,
									 GUC_ACTION_LOCAL, true, 0, false);
		CommitTransactionCommand();
		committed = true;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(BatchContext);
		*error = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		/* nothing the calls queued for sockets may leave: it did not commit */
		DurableOutboundReset();
	}
	PG_END_TRY();

	MemoryContextSwitchTo(cxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return committed;
}

/*
 * run_alone
 *		Run fn(arg) in a transaction of its own (with a snapshot); an error is
 *		logged and rolled back, never raised.
 */
static void
run_alone(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		DurableHostTransactionStart("durable host work");
		PushActiveSnapshot(GetTransactionSnapshot());
		fn(arg);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}

static void
record_failure(void *call)
{
	DurableWorkFailed((DurableCall *) call);
}

/*
 * record_failure_alone
 *		An alarm or send whose transaction failed at commit: reschedule it in a
 *		transaction of its own so it does not come back at once forever.
 */
static void
record_failure_alone(DurableCall *call)
{
	if (call->source != DURABLE_SOURCE_REQUEST)
		run_alone(record_failure, call);
}

/*
 * run_batch
 *		Run the held batch (and, with fetch_work, the due alarms and sends),
 *		publish the replies after commit and count.  Returns the number of
 *		calls that ran.
 */
static uint64
run_batch(bool fetch_work)
{
	ErrorData  *error = NULL;
	uint64		calls = 0;
	uint64		errors = 0;
	int			i;

	work_taken = 0;
	batch_state = BATCH_RUNNING;
	if (!run_transaction(batch, &batch_size, fetch_work, &error))
	{
		if (batch_size == 1)
		{
			batch[0].status = DURABLE_REPLY_ERROR;
			batch[0].error = error;
			record_failure_alone(&batch[0]);
		}
		else
		{
			/*
			 * Retry each call alone so one call cannot fail the others.  Each
			 * one that commits is answered at once, so an exit during the
			 * retries does not tell it that it was rolled back.
			 */
			for (i = 0; i < batch_size; i++)
			{
				int			one = 1;

				error = NULL;
				if (!run_transaction(&batch[i], &one, false, &error))
				{
					batch[i].status = DURABLE_REPLY_ERROR;
					batch[i].error = error;
					record_failure_alone(&batch[i]);
				}
				if (!batch[i].skipped)
				{
					calls++;
					errors += batch[i].status == DURABLE_REPLY_ERROR;
					DurableCallPublish(&batch[i]);
					DurableResidencyTouch(batch[i].class_name, batch[i].id);
					batch[i].skipped = true;
				}
			}
		}
	}
	batch_state = BATCH_COMMITTED;

	for (i = 0; i < batch_size; i++)
	{
		if (batch[i].skipped)
			continue;
		calls++;
		if (batch[i].status == DURABLE_REPLY_ERROR)
			errors++;
		DurableCallPublish(&batch[i]);
		DurableResidencyTouch(batch[i].class_name, batch[i].id);
	}
	if (batch_size == 0 && error != NULL)
		ereport(WARNING,
				(errmsg("pg_durable_objects host %d could not look for due alarms and sends: %s",
						durable_host_number, error->message)));
	DurableHostAddBatch(durable_host_number, calls, errors);
	batch_size = 0;
	batch_state = BATCH_IDLE;

	/* what ran may have set alarms or left more due work: look again */
	if (work_taken > 0)
		work_dirty = true;
	if (DurableWorkTouchedReset())
		work_dirty = true;
	return calls;
}

/*
 * work_due
 *		Whether the next batch should look for due alarms and sends: new sends
 *		were committed for this host, a handler touched alarms, the earliest
 *		pending item is due, or a long time passed.
 */
static bool
work_due(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (DurableHostTakeWorkPending(durable_host_number))
		work_dirty = true;

	if (work_dirty || (next_wake != 0 && now >= next_wake) ||
		TimestampDifferenceExceeds(last_work_look, now, WORK_SAFETY_LOOK_MS))
	{
		last_work_look = now;
		work_dirty = false;
		return true;
	}
	return false;
}

/*
 * wait_timeout_ms
 *		How long the loop may sleep: until the next pending item, at most 1 s.
 */
static long
wait_timeout_ms(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		us;

	if (work_dirty)
		return 0;
	if (next_wake == 0)
		return 1000L;
	us = next_wake - now;
	if (us <= 0)
		return 0;
	return (long) Min((us + 999) / 1000, 1000);
}

static void
init_settings(void *arg)
{
	DurableSandboxInitHost();
}

/*
 * DurableHostMain
 *		Entry point of a host worker; main_arg is its host number.
 */
void
DurableHostMain(Datum main_arg)
{
	sigjmp_buf	local_sigjmp_buf;
	MemoryContext HostContext;
	bool		fetch_work;

	durable_host_number = DatumGetInt32(main_arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	before_shmem_exit(host_exit, (Datum) 0);
	BackgroundWorkerInitializeConnection(durable_database, NULL, 0);
	pgstat_report_appname(psprintf("pg_durable_objects host %d", durable_host_number));

	/* each call sees the commits before it; the batch must not see a frozen snapshot */
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	DurableInvokeInit();
	/* handlers get their owners' settings, not those of the role we connect as */
	run_alone(init_settings, NULL);

	HostContext = AllocSetContextCreate(TopMemoryContext, "durable host",
										ALLOCSET_DEFAULT_SIZES);
	BatchContext = AllocSetContextCreate(HostContext, "durable batch",
										 ALLOCSET_DEFAULT_SIZES);
	batch = MemoryContextAllocZero(HostContext, sizeof(DurableCall) * DURABLE_MAX_BATCH);

	DurableHostAttach(durable_host_number);

	ereport(LOG,
			(errmsg("pg_durable_objects host %d started in database \"%s\"",
					durable_host_number, durable_database)));

	/* errors outside a call land here: fail the held batch and go on */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		ErrorData  *edata;

		error_context_stack = NULL;
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(HostContext);
		edata = CopyErrorData();
		EmitErrorReport();
		AbortCurrentTransaction();
		LWLockReleaseAll();
		DurableHostRefuseMailbox();
		DurableChainSet(0);
		if (batch_state == BATCH_RUNNING)
			fail_batch(edata->sqlerrcode, edata->message, edata->detail);
		batch_state = BATCH_IDLE;
		batch_size = 0;
		FreeErrorData(edata);
		FlushErrorState();
		MemoryContextReset(BatchContext);
		RESUME_INTERRUPTS();
	}
	PG_exception_stack = &local_sigjmp_buf;

	DurableResidencyReset();

	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (durable_host_number == 0)
			DurableClassDirMaintain();

		MemoryContextReset(BatchContext);
		MemoryContextSwitchTo(BatchContext);
		fetch_work = work_due();
		if (take_batch(fetch_work) > 0 && batch[0].source == DURABLE_SOURCE_REQUEST)
			DurablePollRequestArrived(&batch[0].req);
		if (batch_size > 0 || fetch_work)
		{
			DurablePollBatchDone(run_batch(fetch_work));
			DurableResidencyMaintain(false);
			continue;
		}
		DurableResidencyMaintain(false);
		MemoryContextSwitchTo(HostContext);

		/* one caller at a time (a ping-pong): stay awake a moment for the next */
		if (DurablePollRing())
			continue;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_timeout_ms(), PG_WAIT_EXTENSION);
	}
}

/*
 * DurableHostsRegister
 *		_PG_init: register the durable.hosts host workers.  A host that exits
 *		is restarted after a second.
 */
void
DurableHostsRegister(void)
{
	int			i;

	for (i = 0; i < durable_hosts; i++)
	{
		BackgroundWorker worker;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = 1;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_durable_objects");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "DurableHostMain");
		snprintf(worker.bgw_name, BGW_MAXLEN, "pg_durable_objects host %d", i);
		snprintf(worker.bgw_type, BGW_MAXLEN, "pg_durable_objects host");
		worker.bgw_main_arg = Int32GetDatum(i);
		worker.bgw_notify_pid = 0;
		RegisterBackgroundWorker(&worker);
	}
}
