/*-------------------------------------------------------------------------
 *
 * host.c
 *	  The host worker: takes calls from its ring and runs them in batches.
 *
 * durable.hosts of these background workers are registered by _PG_init.
 * Each loops: wait on its latch, take up to durable.max_batch requests,
 * run them in one transaction with a subtransaction per call (invoke.c),
 * commit once, and only then publish the replies (shmem.c).  If the batch's
 * commit fails (a deferred constraint of one call, say), every call of the
 * batch is run again in a transaction of its own, so that one call never
 * changes another's outcome.
 *
 * A host survives errors: handler errors end their call only; any other
 * error aborts the batch (its callers get the error) and the loop goes on
 * from the sigsetjmp block.  When the host exits (SIGTERM, FATAL), its
 * before_shmem_exit callback answers every caller it holds, so nobody waits
 * on a host that is gone; the postmaster restarts it after a second.
 *
 * IDENTIFICATION
 *	  src/host.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"

#include <setjmp.h>

#include "access/xact.h"
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

#define DURABLE_BATCH_LIMIT 1000	/* maximum of durable.max_batch */

int			durable_host_number = -1;

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

/*
 * publish_error
 *		Answer a request with an error made of the given fields.
 */
static void
publish_error(const DurableRequest *req, int sqlerrcode, const char *message,
			  const char *detail, const char *hint, const char *context)
{
	DurableParts parts;
	const char *fields[5];
	int			i;

	if (req->caller < 0)
		return;
	fields[0] = unpack_sql_state(sqlerrcode);
	fields[1] = message;
	fields[2] = detail;
	fields[3] = hint;
	fields[4] = context;
	memset(&parts, 0, sizeof(parts));
	parts.nparts = 5;
	for (i = 0; i < 5; i++)
	{
		parts.data[i] = fields[i];
		parts.isnull[i] = (fields[i] == NULL);
		parts.len[i] = fields[i] ? strlen(fields[i]) : 0;
	}
	DurableReplySlotPublish(req->caller, req->seq, DURABLE_REPLY_ERROR, &parts);
}

/*
 * publish_outcome
 *		Answer the caller of one finished call.  Must not throw.
 */
static void
publish_outcome(DurableCall *call)
{
	DurableParts parts;

	if (call->skipped || call->req.caller < 0)
		return;
	if (call->status == DURABLE_REPLY_ERROR)
	{
		ErrorData  *e = call->error;

		publish_error(&call->req, e->sqlerrcode, e->message ? e->message : "unknown error",
					  e->detail, e->hint, e->context);
		return;
	}
	memset(&parts, 0, sizeof(parts));
	parts.nparts = 1;
	parts.isnull[0] = (call->result == NULL);
	if (call->result)
	{
		parts.data[0] = (const char *) call->result;
		parts.len[0] = VARSIZE(call->result);
	}
	DurableReplySlotPublish(call->req.caller, call->req.seq, DURABLE_REPLY_OK, &parts);
}

/*
 * fail_batch
 *		Answer every call of the held batch with the same error.
 */
static void
fail_batch(int sqlerrcode, const char *message, const char *detail)
{
	int			i;

	for (i = 0; i < batch_size; i++)
		if (!batch[i].skipped)
			publish_error(&batch[i].req, sqlerrcode, message, detail, NULL, NULL);
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
	DurableHostShared *host = DurableHost(durable_host_number);
	DurableRequest reqs[64];
	int			n;
	int			i;

	if (batch_state == BATCH_COMMITTED)
	{
		for (i = 0; i < batch_size; i++)
			publish_outcome(&batch[i]);
		batch_size = 0;
	}
	else if (batch_state == BATCH_RUNNING)
		fail_batch(ERRCODE_ADMIN_SHUTDOWN,
				   "durable host exited before the call committed",
				   "The call's writes were rolled back.");
	batch_state = BATCH_IDLE;

	while ((n = DurableDequeue(durable_host_number, reqs, lengthof(reqs))) > 0)
	{
		for (i = 0; i < n; i++)
		{
			DurableMessageFree(reqs[i].message);
			publish_error(&reqs[i], ERRCODE_ADMIN_SHUTDOWN,
						  "durable host exited before the call started",
						  "The call was not run.", NULL, NULL);
		}
	}

	SpinLockAcquire(&host->mutex);
	host->pid = 0;
	host->generation++;
	SpinLockRelease(&host->mutex);
}

/*
 * take_batch
 *		Move up to durable.max_batch requests from the ring into batch[].
 */
static int
take_batch(void)
{
	DurableRequest reqs[DURABLE_BATCH_LIMIT];
	int			n;
	int			i;

	n = DurableDequeue(durable_host_number, reqs,
					   Min(durable_max_batch, DURABLE_BATCH_LIMIT));
	for (i = 0; i < n; i++)
	{
		DurableCall *call = &batch[i];
		DurableParts parts;

		memset(call, 0, sizeof(*call));
		call->req = reqs[i];
		DurableMessageLoad(reqs[i].message, &parts);
		call->class_name = (char *) parts.data[0];
		call->id = (char *) parts.data[1];
		call->method = (char *) parts.data[2];
		call->args = (Jsonb *) parts.data[3];
	}
	batch_size = n;
	if (n > 0)
		batch_state = BATCH_RUNNING;
	return n;
}

/*
 * run_transaction
 *		Run calls[0..n-1] in one transaction.  Returns false (with *error set)
 *		if the transaction failed as a whole, e.g. at commit.
 */
static bool
run_transaction(DurableCall *calls, int n, ErrorData **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool committed = false;

	PG_TRY();
	{
		bool		all_async = true;
		int			i;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		pgstat_report_activity(STATE_RUNNING, "durable batch");

		for (i = 0; i < n; i++)
		{
			DurableCall *call = &calls[i];

			call->skipped = !DurableReplySlotWaiting(call->req.caller, call->req.seq);
			if (call->skipped)
				continue;
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
	}
	PG_END_TRY();

	MemoryContextSwitchTo(cxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return committed;
}

static void
run_batch(void)
{
	DurableHostShared *host = DurableHost(durable_host_number);
	ErrorData  *error = NULL;
	uint64		calls = 0;
	uint64		errors = 0;
	int			i;

	if (!run_transaction(batch, batch_size, &error))
	{
		if (batch_size == 1)
		{
			batch[0].status = DURABLE_REPLY_ERROR;
			batch[0].error = error;
		}
		else
		{
			/* retry each call alone so one call cannot fail the others */
			for (i = 0; i < batch_size; i++)
			{
				error = NULL;
				if (!run_transaction(&batch[i], 1, &error))
				{
					batch[i].status = DURABLE_REPLY_ERROR;
					batch[i].error = error;
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
		publish_outcome(&batch[i]);
		DurableResidencyTouch(batch[i].class_name, batch[i].id);
	}
	pg_atomic_fetch_add_u64(&host->calls, calls);
	pg_atomic_fetch_add_u64(&host->errors, errors);
	pg_atomic_fetch_add_u64(&host->batches, 1);
	batch_size = 0;
	batch_state = BATCH_IDLE;
}

/*
 * DurableHostMain
 *		Entry point of a host worker; main_arg is its host number.
 */
void
DurableHostMain(Datum main_arg)
{
	sigjmp_buf	local_sigjmp_buf;
	DurableHostShared *host;
	MemoryContext HostContext;

	durable_host_number = DatumGetInt32(main_arg);
	host = DurableHost(durable_host_number);

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

	HostContext = AllocSetContextCreate(TopMemoryContext, "durable host",
										ALLOCSET_DEFAULT_SIZES);
	BatchContext = AllocSetContextCreate(HostContext, "durable batch",
										 ALLOCSET_DEFAULT_SIZES);
	batch = MemoryContextAllocZero(HostContext, sizeof(DurableCall) * DURABLE_BATCH_LIMIT);

	SpinLockAcquire(&host->mutex);
	host->pid = MyProcPid;
	host->procno = MyProc->pgprocno;
	SpinLockRelease(&host->mutex);

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

		MemoryContextReset(BatchContext);
		MemoryContextSwitchTo(BatchContext);
		if (take_batch() > 0)
		{
			run_batch();
			DurableResidencyMaintain(false);
			continue;
		}
		DurableResidencyMaintain(false);
		MemoryContextSwitchTo(HostContext);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
	}
}
