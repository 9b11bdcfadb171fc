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
 *	  src/host.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"

#include "portability/instr_time.h"

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

#define DURABLE_BATCH_LIMIT 1000	/* maximum of durable.max_batch */

int			durable_host_number = -1;
uint64		durable_current_chain = 0;

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
 * publish_error
 *		Answer a request with an error made of the given fields.
 */
static void
publish_error(const DurableRequest *req, int sqlerrcode, const char *message,
			  const char *detail, const char *hint, const char *context)
{
	DurableParts parts;
	const char *fields[5];

	if (req->caller < 0)
		return;
	fields[0] = unpack_sql_state(sqlerrcode);
	fields[1] = message;
	fields[2] = detail;
	fields[3] = hint;
	fields[4] = context;
	DurableMakeParts(&parts, fields, 5);
	DurableReplySlotPublish(req->caller, req->seq, DURABLE_REPLY_ERROR, &parts);
}

/*
 * publish_gateway_reply
 *		Answer a request of the gateway: the result of a socket's "call" frame
 *		or of an HTTP call, or the error of any socket-started call.
 */
static void
publish_gateway_reply(DurableCall *call)
{
	const char *data[6];
	DurableParts parts;
	bool		is_error = call->status == DURABLE_REPLY_ERROR;

	if (!is_error && call->frame_id == NULL && call->socket != 0)
		return;					/* $message, $close: nothing to answer */
	if (strcmp(call->method, "$close") == 0)
		return;					/* the socket is gone */

	data[0] = is_error ? "error" : "reply";
	data[1] = psprintf(INT64_FORMAT, call->socket);
	data[2] = call->token;
	data[3] = call->frame_id;
	if (is_error)
	{
		data[4] = unpack_sql_state(call->error->sqlerrcode);
		data[5] = call->error->message ? call->error->message : "unknown error";
	}
	else
	{
		data[4] = call->result ? JsonbToCString(NULL, &call->result->root,
												VARSIZE(call->result)) : "null";
		data[5] = NULL;
	}
	DurableMakeParts(&parts, data, 6);
	DurableGatewayPush(&parts);
}

/*
 * publish_connect
 *		Tell the gateway whether $connect accepted its socket.  Goes out before
 *		the messages the $connect call sent, so they arrive right after the open.
 */
static void
publish_connect(DurableCall *call)
{
	bool		accept = call->status == DURABLE_REPLY_OK && call->connect_accept;
	const char *data[6];
	DurableParts parts;

	data[0] = "connect";
	data[1] = psprintf(INT64_FORMAT, call->socket);
	data[2] = accept ? "t" : "f";
	data[3] = psprintf("%d", call->status == DURABLE_REPLY_OK ? call->connect_code : 1011);
	data[4] = call->status == DURABLE_REPLY_OK ? call->connect_reason :
		(call->error->message ? call->error->message : "");
	data[5] = accept ? call->connect_tags : "[]";
	DurableMakeParts(&parts, data, 6);
	parts.len[4] = pg_mbcliplen(data[4], parts.len[4], 123);
	DurableGatewayPush(&parts);
}

/*
 * publish_ready
 *		After the messages an accepting $connect sent: the gateway may now pass
 *		on the frames the socket sent meanwhile (answers to them come after).
 */
static void
publish_ready(DurableCall *call)
{
	DurableParts parts;
	const char *data[2];

	if (call->status != DURABLE_REPLY_OK || !call->connect_accept)
		return;
	data[0] = "ready";
	data[1] = psprintf(INT64_FORMAT, call->socket);
	DurableMakeParts(&parts, data, 2);
	DurableGatewayPush(&parts);
}

/*
 * record_latency
 *		Count a request's time from enqueue to answer in the host's histogram.
 */
static void
record_latency(DurableCall *call)
{
	DurableHostShared *host = DurableHost(durable_host_number);
	int64		us = GetCurrentTimestamp() - call->req.enqueued_at;
	int			b;

	if (call->req.enqueued_at == 0 || us < 0)
		return;
	for (b = 0; b < DURABLE_LATENCY_BUCKETS; b++)
		if ((double) us <= durable_latency_bounds_ms[b] * 1000.0)
			break;
	pg_atomic_fetch_add_u64(&host->latency[b], 1);
	pg_atomic_fetch_add_u64(&host->latency_sum_us, (uint64) us);
}

/*
 * publish_outcome
 *		After commit: release what one call produced, in this order: a socket's
 *		acceptance, the messages for sockets, the reply.  Must not throw.
 */
static void
publish_outcome(DurableCall *call)
{
	DurableParts parts;
	bool		from_gateway = call->source == DURABLE_SOURCE_REQUEST &&
		call->req.kind == DURABLE_REQUEST_GATEWAY;

	if (call->skipped)
		return;
	if (call->source == DURABLE_SOURCE_REQUEST)
		record_latency(call);
	if (from_gateway && strcmp(call->method, "$connect") == 0)
	{
		publish_connect(call);
		DurableOutboundPublish(call);
		publish_ready(call);
		return;
	}
	DurableOutboundPublish(call);
	if (from_gateway)
	{
		publish_gateway_reply(call);
		return;
	}
	if (call->source != DURABLE_SOURCE_REQUEST || call->req.caller < 0)
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
 * fail_call
 *		Give call an error made of the given fields and answer it.
 */
static void
fail_call(DurableCall *call, int sqlerrcode, const char *message, const char *detail)
{
	ErrorData  *e = palloc0(sizeof(ErrorData));

	e->sqlerrcode = sqlerrcode;
	e->message = pstrdup(message);
	e->detail = detail ? pstrdup(detail) : NULL;
	call->status = DURABLE_REPLY_ERROR;
	call->error = e;
	publish_outcome(call);
}

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
			fail_call(&batch[i], sqlerrcode, message, detail);
	batch_size = 0;
	batch_state = BATCH_IDLE;
}

/*
 * load_request
 *		Fill call from a ring request, copying its message into the current
 *		memory context (and freeing it in shared memory).
 */
static void
load_request(const DurableRequest *req, DurableCall *call)
{
	DurableParts parts;

	memset(call, 0, sizeof(*call));
	call->source = DURABLE_SOURCE_REQUEST;
	call->req = *req;
	DurableMessageLoad(req->message, &parts);
	call->class_name = (char *) parts.data[0];
	call->id = (char *) parts.data[1];
	call->method = (char *) parts.data[2];
	if (req->kind == DURABLE_REQUEST_GATEWAY)
	{
		call->args_text = (char *) parts.data[3];
		call->socket = parts.isnull[4] ? 0 : strtoi64(parts.data[4], NULL, 10);
		call->token = (char *) parts.data[5];
		call->frame_id = parts.isnull[6] ? NULL : (char *) parts.data[6];
	}
	else
		call->args = (Jsonb *) parts.data[3];
}

/*
 * take_mailbox
 *		Take the request in this host's mailbox, if any; with stop_waiting the
 *		host also stops waiting (no more calls are handed to it).
 */
static bool
take_mailbox(DurableRequest *req, bool stop_waiting)
{
	DurableHostShared *host = DurableHost(durable_host_number);
	bool		have;

	SpinLockAcquire(&host->mutex);
	have = host->mailbox_full;
	if (have)
		*req = host->mailbox;
	host->mailbox_full = false;
	if (stop_waiting)
	{
		host->waiting_for = 0;
		host->waiting_chain = 0;
	}
	SpinLockRelease(&host->mutex);
	return have;
}

/*
 * DurableHostServeMailbox
 *		While this host waits in a nested call, run the call of the same chain
 *		that another host handed to it (see router.c), nested in the waiting
 *		call, and answer it.
 */
void
DurableHostServeMailbox(void)
{
	DurableCall call;
	DurableRequest req;

	if (!take_mailbox(&req, false))
		return;
	load_request(&req, &call);
	call.nested = true;
	DurableInvoke(&call, CurrentMemoryContext);
	publish_outcome(&call);
}

/*
 * DurableHostRefuseMailbox
 *		This host stops waiting: answer a call still in its mailbox with an
 *		error instead of leaving its caller waiting.
 */
void
DurableHostRefuseMailbox(void)
{
	DurableRequest req;

	if (!take_mailbox(&req, true))
		return;
	DurableMessageFree(req.message);
	publish_error(&req, ERRCODE_T_R_DEADLOCK_DETECTED,
				  "durable call could not be served: its caller's chain ended",
				  "The call was not run.", NULL, NULL);
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
	DurableHostRefuseMailbox();

	while ((n = DurableDequeue(durable_host_number, reqs, lengthof(reqs))) > 0)
	{
		for (i = 0; i < n; i++)
		{
			DurableCall call;

			load_request(&reqs[i], &call);
			fail_call(&call, ERRCODE_ADMIN_SHUTDOWN,
					  "durable host exited before the call started",
					  "The call was not run.");
		}
	}

	SpinLockAcquire(&host->mutex);
	host->pid = 0;
	host->generation++;
	SpinLockRelease(&host->mutex);
}

/*
 * take_batch
 *		Move up to durable.max_batch requests from the ring into batch[]
 *		(half as many with leave_room).
 */
static int
take_batch(bool leave_room)
{
	DurableRequest reqs[DURABLE_BATCH_LIMIT];
	int			max = Min(durable_max_batch, DURABLE_BATCH_LIMIT);
	int			n;
	int			i;

	/* due alarms and sends get half of the batch when they want it */
	if (leave_room && max > 1)
		max -= max / 2;
	n = DurableDequeue(durable_host_number, reqs, max);
	for (i = 0; i < n; i++)
		load_request(&reqs[i], &batch[i]);
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

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		pgstat_report_activity(STATE_RUNNING, "durable batch");
		DurableOutboundReset();
		if (fetch_work)
		{
			int			room = Min(durable_max_batch, DURABLE_BATCH_LIMIT) - *n_calls;

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
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
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
	DurableHostShared *host = DurableHost(durable_host_number);
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
					publish_outcome(&batch[i]);
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
		publish_outcome(&batch[i]);
		DurableResidencyTouch(batch[i].class_name, batch[i].id);
	}
	if (batch_size == 0 && error != NULL)
		ereport(WARNING,
				(errmsg("pg_durable_objects host %d could not look for due alarms and sends: %s",
						durable_host_number, error->message)));
	pg_atomic_fetch_add_u64(&host->calls, calls);
	pg_atomic_fetch_add_u64(&host->errors, errors);
	if (calls > 0)
		pg_atomic_fetch_add_u64(&host->batches, 1);
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
 * After a batch of one or two calls ("lone" calls: one caller at a time, a
 * ping-pong), the host measures how long the ring stays empty until the next
 * request; the average of these gaps decides how long it watches the ring
 * before it sleeps next time (twice the average, at most HOST_POLL_MAX_US;
 * not at all when callers come further apart than HOST_POLL_GAP_LIMIT_US).
 * A caller that is slow because it slept itself still counts as close, so
 * that polling, once lost, comes back.  A watch that ended without a request
 * is not repeated for the next HOST_POLL_SKIP lone batches: callers whose
 * gaps are just longer than the watch would only burn CPU.
 */
#define HOST_POLL_MAX_US 250
#define HOST_POLL_GAP_LIMIT_US 1000	/* callers further apart: no polling */
#define HOST_GAP_SAMPLE_MAX_US 10000	/* an idle pause counts as this much */
#define HOST_POLL_SKIP 4			/* lone batches without polling after a miss */
static double gap_avg_us = 0;
static TimestampTz lone_end;
static bool lone_pending = false;
static int	poll_skip = 0;

static void
lone_batch_done(uint64 calls)
{
	lone_pending = calls > 0 && calls <= 2;
	if (lone_pending)
		lone_end = GetCurrentTimestamp();
}

/*
 * request_arrived
 *		A batch was taken after a lone one: the gap is measured to when its
 *		first request was enqueued, not to when the host noticed it, so that
 *		a host that slept (and was slow to wake) does not conclude that its
 *		callers are slow and stop polling for good.
 */
static void
request_arrived(const DurableRequest *first)
{
	if (!lone_pending || first->enqueued_at == 0)
		return;
	gap_avg_us = 0.8 * gap_avg_us +
		0.2 * (double) Min(Max(first->enqueued_at - lone_end, 0), HOST_GAP_SAMPLE_MAX_US);
	lone_pending = false;
}

/*
 * poll_ring
 *		After answering a lone call: watch the ring (and the latch) for a
 *		while before sleeping, so that a caller who calls again at once, or
 *		one that watches for its reply, is served without a wakeup.  Whether
 *		something arrived.
 */
static bool
poll_ring(void)
{
	double		budget_us = Max(2 * gap_avg_us, 20);
	DurableHostShared *host = DurableHost(durable_host_number);
	instr_time	start;
	instr_time	now;
	bool		found = false;

	if (!lone_pending || gap_avg_us > HOST_POLL_GAP_LIMIT_US)
		return false;
	if (poll_skip > 0)
	{
		poll_skip--;
		return false;
	}
	budget_us = Min(budget_us, HOST_POLL_MAX_US);
	host->polling = true;
	pg_memory_barrier();
	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		if (!DurableRingEmpty(durable_host_number) || ((volatile Latch *) MyLatch)->is_set)
		{
			found = true;
			break;
		}
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		if (INSTR_TIME_GET_MICROSEC(now) >= budget_us)
		{
			poll_skip = HOST_POLL_SKIP;
			break;
		}
		pg_spin_delay();
	}
	host->polling = false;
	return found;
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
	DurableHostShared *host = DurableHost(durable_host_number);
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&host->mutex);
	if (host->work_pending)
	{
		host->work_pending = false;
		work_dirty = true;
	}
	SpinLockRelease(&host->mutex);

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
	DurableHostShared *host;
	MemoryContext HostContext;
	bool		fetch_work;

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
	DurableInvokeInit();
	/* handlers get their owners' settings, not those of the role we connect as */
	run_alone(init_settings, NULL);

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
		DurableHostRefuseMailbox();
		durable_current_chain = 0;
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
			request_arrived(&batch[0].req);
		if (batch_size > 0 || fetch_work)
		{
			lone_batch_done(run_batch(fetch_work));
			DurableResidencyMaintain(false);
			continue;
		}
		DurableResidencyMaintain(false);
		MemoryContextSwitchTo(HostContext);

		/* one caller at a time (a ping-pong): stay awake a moment for the next */
		if (poll_ring())
			continue;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_timeout_ms(), PG_WAIT_EXTENSION);
	}
}
