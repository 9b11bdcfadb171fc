/*-------------------------------------------------------------------------
 *
 * host.c
 *	  The host worker: takes calls from its ring and runs them in batches.
 *
 * The scheduler (scheduler.c) starts a host in a slot that a caller reserved
 * for one class owner (shared/hosts.c); the host runs the calls of that
 * owner's classes only.  It loops: wait on its latch, then run a batch: one
 * transaction in which it takes calls from its ring one at a time, up to
 * durable.max_batch, each in a subtransaction of its own (invoke.c), commits
 * once, and only then publishes the outcomes (call_io.c) and releases the
 * objects it held (held.c).  Calls not taken yet stay in the ring, where the
 * scheduler can move them to another host while this one is stuck in a long
 * call.  A call of a slow object runs in a batch of its own.  If the batch's
 * commit fails (a storage write of one call waits too long for a row lock,
 * say), every call of the batch is run again in a transaction of its own, so
 * that one call never changes another's outcome.
 *
 * A home host also runs its owner's due alarms and sends (work.c) when its
 * timer says so or when woken for new sends; the loop sleeps until the next
 * one falls due, never longer than a second.  A host with nothing to do for
 * durable.idle_timeout (an extra host: EXTRA_IDLE_MS), or asked to make room
 * for another owner, leaves.
 *
 * A host survives errors: handler errors end their call only; any other
 * error aborts the batch (its callers get the error) and the loop goes on
 * from the sigsetjmp block.  When the host exits (SIGTERM, FATAL), its
 * before_shmem_exit callback answers every caller it holds, so nobody waits
 * on a host that is gone; a host that died is started again by the
 * scheduler.
 *
 * IDENTIFICATION
 *	  src/host/host.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/epochs.h"
#include "shared/lanes.h"
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
static bool work_dirty = true;	/* look for due work at the next chance (home hosts) */
static int	work_taken = 0;		/* due items the last batch took */
static TimestampTz next_wake = 0;	/* when the next pending item falls due */
static uint64 gone_epoch = 0;	/* shared/epochs.c's gone epoch when this host started */
static TimestampTz last_work_look = 0;

#define WORK_SAFETY_LOOK_MS 10000
#define EXTRA_IDLE_MS 10000		/* an extra host with nothing to do this long leaves */
#define LEAVE_BEFORE_WORK_MS 3000	/* a host with due work nearer than this stays */

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
	DurableCallsReset();
	DurableHeldReleaseAll();

	while ((n = DurableDrain(durable_host_number, reqs, lengthof(reqs))) > 0)
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
 * skip_call
 *		Whether a call must not run now: its caller gave up waiting, or it is
 *		a send behind a failed one.
 */
static bool
skip_call(DurableCall *calls, int i)
{
	DurableCall *call = &calls[i];

	return (call->source == DURABLE_SOURCE_REQUEST && call->req.caller >= 0 &&
			!DurableReplySlotStart(call->req.caller, call->req.seq)) ||
		send_waits_behind_failure(calls, i);
}

/*
 * holds_others
 *		Whether calls before calls[i] in this transaction ran an object other
 *		than calls[i]'s: then their objects wait for this call to commit, and
 *		a call that takes longer than durable.busy_threshold is preempted (see
 *		DurableInvoke) so that they need not wait for it.
 */
static bool
holds_others(DurableCall *calls, int i)
{
	int			j;

	for (j = 0; j < i; j++)
		if (!calls[j].skipped && !calls[j].preempted && calls[j].object != calls[i].object)
			return true;
	return false;
}

/*
 * take_call
 *		Take the next call from this host's ring into calls[n] (false if none
 *		may join a batch of n calls: a slow object's call only starts one).
 */
static bool
take_call(DurableCall *calls, int n)
{
	DurableRequest req;
	bool		alone;
	bool		cache_valid;

	if (!DurableTake(durable_host_number, n == 0, &req, &alone, &cache_valid))
		return false;
	DurableHeldAdd(req.object);
	DurableCallLoad(&req, &calls[n]);
	calls[n].cache_valid = cache_valid;
	calls[n].alone = alone;
	if (n == 0)
		DurablePollRequestArrived(&req);
	return true;
}

/*
 * run_transaction
 *		Run calls in one transaction: first calls[0..*n_calls-1] (held
 *		already), then with fetch_work this host's due alarms and sends (up to
 *		half the batch; updates next_wake), then with take calls from the ring
 *		one at a time until the batch is full, the ring empty or a slow
 *		object's call ran.  Returns false (with *error set) if the
 *		transaction failed as a whole, e.g. at commit.
 */
static bool
run_transaction(DurableCall *calls, int *n_calls, bool fetch_work, bool take, ErrorData **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool committed = false;

	PG_TRY();
	{
		bool		all_async = true;
		int			max = Min(durable_max_batch, DURABLE_MAX_BATCH);
		int			i = 0;

		DurableHostTransactionStart("durable batch");
		DurableOutboundReset();
		if (fetch_work)
		{
			int			room = max - *n_calls - (take && max > 1 ? max / 2 : 0);

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

		for (;;)
		{
			DurableCall *call;

			if (i == *n_calls)
			{
				if (!take || *n_calls >= max || (i > 0 && calls[i - 1].alone))
					break;
				MemoryContextSwitchTo(BatchContext);
				if (!take_call(calls, *n_calls))
				{
					MemoryContextSwitchTo(cxt);
					break;
				}
				MemoryContextSwitchTo(cxt);
				(*n_calls)++;
				batch_size = *n_calls;
			}
			call = &calls[i];
			call->skipped = skip_call(calls, i);
			if (!call->skipped)
			{
				call->preemptable = holds_others(calls, i);
				DurableOutboundSetCall(call);
				DurableInvoke(call, BatchContext);
				all_async &= call->async_commit;

				/*
				 * a call from another host's waiting call: commit now, so that
				 * its answer does not wait for calls after it, one of which
				 * could wait for that host (a cycle no one would see)
				 */
				if (call->source == DURABLE_SOURCE_REQUEST && call->req.chain != 0)
					call->alone = true;
				if (call->preempted)
				{
					/* the batch commits without it; due work after it waits */
					for (i++; i < *n_calls; i++)
						calls[i].skipped = true;
					work_dirty = true;
					break;
				}
			}
			i++;
		}
		/* a batch that sent events waits for its WAL: a seq a client saw is never given again */
		if (all_async && !DurableEventsPending())
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
		DurableRunAlone("durable host work", record_failure, call);
}

/*
 * run_preempted
 *		The batch committed without call, preempted at durable.busy_threshold:
 *		let the other objects of the batch go (the call keeps its object), and
 *		run it again in a transaction of its own, as the slow object's call it
 *		is.  Adds to *calls and *errors.
 */
static void
run_preempted(DurableCall *call, uint64 *calls, uint64 *errors)
{
	ErrorData  *error = NULL;
	int			one = 1;

	DurableHeldReleaseAllBut(call->object);
	DurableMarkSlow(call->object);
	call->alone = true;
	if (!run_transaction(call, &one, false, false, &error))
	{
		call->status = DURABLE_REPLY_ERROR;
		call->error = error;
		record_failure_alone(call);
	}
	if (!call->skipped)
	{
		(*calls)++;
		*errors += call->status == DURABLE_REPLY_ERROR;
		DurableCallPublish(call);
		DurableResidencyTouch(call->class_name, call->id);
	}
}

/*
 * run_batch
 *		Run a batch of calls from the ring (and, with fetch_work, the due
 *		alarms and sends), publish the replies after commit, release the
 *		objects and count.  Returns the number of calls that ran.
 */
static uint64
run_batch(bool fetch_work)
{
	ErrorData  *error = NULL;
	uint64		calls = 0;
	uint64		errors = 0;
	int			i;

	work_taken = 0;
	batch_size = 0;
	batch_state = BATCH_RUNNING;
	if (!run_transaction(batch, &batch_size, fetch_work, true, &error))
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
				if (!run_transaction(&batch[i], &one, false, false, &error))
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
		if (batch[i].skipped || batch[i].preempted)
			continue;
		calls++;
		if (batch[i].status == DURABLE_REPLY_ERROR)
			errors++;
		DurableCallPublish(&batch[i]);
		DurableResidencyTouch(batch[i].class_name, batch[i].id);
	}
	for (i = 0; i < batch_size; i++)
		if (batch[i].preempted)
			run_preempted(&batch[i], &calls, &errors);
	if (batch_size == 0 && error != NULL)
		ereport(WARNING,
				(errmsg("pg_durable_objects host %d could not look for due alarms and sends: %s",
						durable_host_number, error->message)));
	DurableHostAddBatch(durable_host_number, calls, errors);
	batch_size = 0;
	batch_state = BATCH_IDLE;
	DurableHeldReleaseAll();

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

/* a home host that should look for due work at once (extra hosts never look) */
static bool
looks_again(void)
{
	return work_dirty && durable_host_home >= 0;
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

	if (looks_again())
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
 * leave_if_idle
 *		Between batches: a host with nothing queued, nothing held and no due
 *		work ahead leaves when it was idle long enough, or at once when the
 *		scheduler wants its slot for another owner.  Its slot is free then.
 *		After DROP EXTENSION (the gone epoch moved since it started) it
 *		leaves as soon as nothing is queued or held: it has nothing to serve,
 *		and leaving returns every byte it cached.
 */
static void
leave_if_idle(void)
{
	TimestampTz last = DurableHostLastActive(durable_host_number);
	int			idle_ms = durable_host_home >= 0 ?
		(int) Min((int64) durable_idle_timeout * 1000, INT_MAX) : EXTRA_IDLE_MS;
	bool		asked = DurableHostRetireAsked(durable_host_number);
	bool		gone = DurableExtensionGoneEpoch() != gone_epoch;

	if (DurableHeldCount() > 0 || !DurableRingEmpty(durable_host_number))
		return;
	/* due work soon keeps it; later work starts it again (the scheduler looks each second) */
	if (!gone && (looks_again() ||
				  (next_wake != 0 &&
				   next_wake < TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   LEAVE_BEFORE_WORK_MS))))
		return;
	if (!asked && !gone &&
		!TimestampDifferenceExceeds(last, GetCurrentTimestamp(), idle_ms))
		return;
	if (!DurableHostStartExit(durable_host_number, DurableHostIdle))
		return;
	DurableResidencyLeave();
	ereport(DEBUG1,
			(errmsg("pg_durable_objects host %d leaves: %s", durable_host_number,
					gone ? "the extension is gone" : "idle")));
	proc_exit(0);
}

/*
 * DurableHostMain
 *		Entry point of a host worker; main_arg is its slot (hosts.c), which
 *		names the database it connects to and the owner whose classes it runs.
 */
void
DurableHostMain(Datum main_arg)
{
	sigjmp_buf	local_sigjmp_buf;
	MemoryContext HostContext;
	bool		fetch_work;
	DurableHostState state;

	durable_host_number = DatumGetInt32(main_arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	DurableHostSlotInfo(durable_host_number, &state, &durable_db, &durable_host_owner,
						&durable_host_home);
	if (state != DURABLE_HOST_RESERVED && state != DURABLE_HOST_RUNNING)
		proc_exit(0);			/* the slot was given up meanwhile */

	before_shmem_exit(host_exit, (Datum) 0);
	BackgroundWorkerInitializeConnection(DurableDatabaseName(durable_db), NULL, 0);
	pgstat_report_appname(psprintf("pg_durable_objects host %d", durable_host_number));

	/* each call sees the commits before it; the batch must not see a frozen snapshot */
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	DurableInvokeInit();
	/* handlers get their owners' settings, not those of the role we connect as */
	DurableRunAlone("durable host work", init_settings, NULL);

	HostContext = AllocSetContextCreate(TopMemoryContext, "durable host",
										ALLOCSET_DEFAULT_SIZES);
	BatchContext = AllocSetContextCreate(HostContext, "durable batch",
										 ALLOCSET_DEFAULT_SIZES);
	batch = MemoryContextAllocZero(HostContext, sizeof(DurableCall) * DURABLE_MAX_BATCH);

	DurableRingOpen(durable_host_number);
	DurableHostAttach(durable_host_number);

	ereport(DEBUG1,
			(errmsg("pg_durable_objects host %d started for role %u (home %d) in database \"%s\"",
					durable_host_number, durable_host_owner, durable_host_home,
					DurableDatabaseName(durable_db))));

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
		DurableCallsReset();
		DurableChainSet(0);
		if (batch_state == BATCH_RUNNING)
			fail_batch(edata->sqlerrcode, edata->message, edata->detail);
		batch_state = BATCH_IDLE;
		batch_size = 0;
		DurableHeldReleaseAll();
		DurableHostSetIdle(durable_host_number);
		FreeErrorData(edata);
		FlushErrorState();
		MemoryContextReset(BatchContext);
		RESUME_INTERRUPTS();
	}
	PG_exception_stack = &local_sigjmp_buf;

	DurableResidencyReset();
	gone_epoch = DurableExtensionGoneEpoch();

	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextReset(BatchContext);
		MemoryContextSwitchTo(BatchContext);
		fetch_work = durable_host_home >= 0 && work_due();
		if (!DurableRingEmpty(durable_host_number) || fetch_work)
		{
			DurablePollBatchDone(run_batch(fetch_work));
			DurableResidencyMaintain(false);
			DurableHistoryPrune();
			continue;
		}
		DurableResidencyMaintain(false);
		DurableHistoryPrune();
		MemoryContextSwitchTo(HostContext);

		/* one caller at a time (a ping-pong): stay awake a moment for the next */
		if (DurablePollRing())
			continue;

		leave_if_idle();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_timeout_ms(), PG_WAIT_EXTENSION);
	}
}
