/*-------------------------------------------------------------------------
 *
 * replies.c
 *	  Reply slots: where a waiting caller gets the reply to its call.
 *
 * Every process that may call an object (a backend, a host) has a reply
 * slot, found by its pgprocno.  A caller begins a call (a new sequence
 * number), hands the call to the host that runs its object (lanes.c) and
 * waits on its latch; the host
 * publishes the reply into the slot only after the call's transaction
 * committed, and only if the caller still waits for exactly that call, so a
 * cancelled caller's late reply is dropped instead of being read by its next
 * call or by the next backend that takes the same pgprocno.  The payload
 * lives in the shared message area.
 *
 * Locking rules: each slot's few words are under the slot's spinlock; the
 * payload is stored and freed outside it.
 *
 * IDENTIFICATION
 *	  src/shared/replies.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/replies.h"
#include "shared/lanes.h"

#include "portability/instr_time.h"

#include "access/twophase.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

/* a host that stays down this long will not answer */
#define HOST_DOWN_LIMIT_MS 10000

/*
 * How long a caller whose host was watching its ring (host.c, poll_ring)
 * watches its reply slot before it sleeps (µs): a back-to-back caller then
 * never waits for a process to be woken (see docs/internals.md, "Waiting").
 * After a miss, the next POLL_SKIP calls to that host sleep at once.
 */
#define POLL_US 60
#define POLL_SKIP 8

/*
 * A host that waits for a call may serve other calls meanwhile (its mailbox)
 * and wait for their calls in turn: its outer waits are parked, and a reply
 * or a start for one of them is taken while an inner wait goes on.
 */
#define PARKED_MAX 40			/* deeper than calls between objects may nest */

typedef struct ParkedWait
{
	uint64		seq;
	uint64		done_seq;
	int32		status;
	dsa_pointer reply;
} ParkedWait;

typedef struct ReplySlot
{
	slock_t		mutex;
	uint64		last_seq;		/* last sequence number handed out */
	uint64		waiting_seq;	/* call the owner waits for; 0 = none */
	uint64		done_seq;		/* call whose reply is in "reply" */
	uint64		started_seq;	/* call a host started running */
	int32		status;			/* DurableReplyStatus of that reply */
	dsa_pointer reply;			/* the stored DurableReplyMsg, or InvalidDsaPointer */
	int			nparked;		/* outer waits, innermost last */
	ParkedWait	parked[PARKED_MAX];
} ReplySlot;

typedef struct RepliesShared
{
	int			nslots;
	ReplySlot	slots[FLEXIBLE_ARRAY_MEMBER];
} RepliesShared;

static RepliesShared *shared = NULL;
static uint8 poll_skip[DURABLE_MAX_HOSTS];	/* calls left that do not poll, per host */

static int
slot_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static Size
shared_size(void)
{
	return add_size(offsetof(RepliesShared, slots), mul_size(slot_count(), sizeof(ReplySlot)));
}

/*
 * DurableRepliesShmemRequest / DurableRepliesShmemStartup
 *		shmem hooks: a slot per process that may wait for a call.
 */
void
DurableRepliesShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(shared_size()));
}

void
DurableRepliesShmemStartup(void)
{
	bool		found;
	int			i;

	shared = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pg_durable_objects replies", shared_size(), &found);
	if (!found)
	{
		shared->nslots = slot_count();
		for (i = 0; i < shared->nslots; i++)
		{
			memset(&shared->slots[i], 0, sizeof(ReplySlot));
			SpinLockInit(&shared->slots[i].mutex);
			shared->slots[i].reply = InvalidDsaPointer;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

static ReplySlot *
my_slot(void)
{
	return &shared->slots[MyProc->pgprocno];
}

/*
 * DurableReplySlotBegin
 *		Start waiting for a new call; returns its sequence number.  Drops any
 *		reply left over from a call this slot's previous user abandoned.
 *		*outer gets the call the slot waited for until now (0: none), which a
 *		host that serves calls while it waits waits for again afterwards
 *		(DurableReplySlotResume): nested waits end in LIFO order.  The outer
 *		wait is parked meanwhile: its reply may come during the inner one.
 */
uint64
DurableReplySlotBegin(uint64 *outer)
{
	ReplySlot *slot = my_slot();
	dsa_pointer stale = InvalidDsaPointer;
	uint64		seq;
	bool		too_deep = false;

	SpinLockAcquire(&slot->mutex);
	*outer = slot->waiting_seq;
	if (slot->waiting_seq == 0)
	{
		stale = slot->reply;
		slot->nparked = 0;
	}
	else if (slot->nparked < PARKED_MAX)
	{
		ParkedWait *p = &slot->parked[slot->nparked++];

		p->seq = slot->waiting_seq;
		p->done_seq = slot->done_seq;
		p->status = slot->status;
		p->reply = slot->reply;
	}
	else
		too_deep = true;
	if (!too_deep)
	{
		slot->reply = InvalidDsaPointer;
		seq = ++slot->last_seq;
		slot->waiting_seq = seq;
		slot->done_seq = 0;
		slot->status = DURABLE_REPLY_NONE;
	}
	SpinLockRelease(&slot->mutex);

	if (too_deep)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("durable calls nest deeper than %d waits in one process", PARKED_MAX)));
	DurableMessageFree(stale);
	return seq;
}

/*
 * DurableReplySlotResume
 *		A nested wait ended: wait for the outer call again.
 */
void
DurableReplySlotResume(uint64 outer)
{
	ReplySlot *slot = my_slot();

	if (outer == 0)
		return;
	SpinLockAcquire(&slot->mutex);
	slot->waiting_seq = outer;
	slot->done_seq = 0;
	slot->status = DURABLE_REPLY_NONE;
	slot->reply = InvalidDsaPointer;
	if (slot->nparked > 0 && slot->parked[slot->nparked - 1].seq == outer)
	{
		ParkedWait *p = &slot->parked[--slot->nparked];

		slot->done_seq = p->done_seq;
		slot->status = p->status;
		slot->reply = p->reply;
	}
	SpinLockRelease(&slot->mutex);
}

/* the parked outer wait for seq that has no reply yet, or NULL (mutex held) */
static ParkedWait *
parked_waiting(ReplySlot *slot, uint64 seq)
{
	int			i;

	for (i = 0; i < slot->nparked; i++)
		if (slot->parked[i].seq == seq && slot->parked[i].done_seq != seq)
			return &slot->parked[i];
	return NULL;
}

/*
 * DurableReplySlotStart
 *		A host is about to run call seq of the owner of slot procno: whether
 *		the owner still waits for it.  Hosts skip calls whose caller already
 *		gave up; a caller that waited too long for its call to start gives up
 *		only on a call no host started.
 */
bool
DurableReplySlotStart(int procno, uint64 seq)
{
	ReplySlot *slot = &shared->slots[procno];
	bool		waiting;

	SpinLockAcquire(&slot->mutex);
	waiting = (slot->waiting_seq == seq && slot->done_seq != seq);
	if (waiting)
		slot->started_seq = seq;
	else
		waiting = parked_waiting(slot, seq) != NULL;
	SpinLockRelease(&slot->mutex);
	return waiting;
}

/*
 * give_up_unstarted
 *		Stop waiting for call seq if no host started it: true if so (a host
 *		that comes to it later skips it).
 */
static bool
give_up_unstarted(uint64 seq)
{
	ReplySlot *slot = my_slot();
	bool		gave_up = false;

	SpinLockAcquire(&slot->mutex);
	if (slot->waiting_seq == seq && slot->started_seq != seq && slot->done_seq != seq)
	{
		slot->waiting_seq = 0;
		gave_up = true;
	}
	SpinLockRelease(&slot->mutex);
	return gave_up;
}

/*
 * DurableReplySlotPublish
 *		Hand a reply to the caller waiting in slot procno for call seq, and wake
 *		it.  Never throws: if shared memory is exhausted the caller gets the
 *		status without payload.  Returns false if the caller no longer waits.
 */
bool
DurableReplySlotPublish(int procno, uint64 seq, const DurableReplyMsg *reply)
{
	ReplySlot  *slot = &shared->slots[procno];
	DurableReplyStatus status = reply->status;
	dsa_pointer dp = DurableReplyMsgStore(reply);
	bool		delivered = false;

	/* out of shared memory: the status still arrives, without its payload */

	SpinLockAcquire(&slot->mutex);
	if (slot->waiting_seq == seq && slot->done_seq != seq)
	{
		slot->done_seq = seq;
		slot->status = status;
		slot->reply = dp;
		delivered = true;
	}
	else
	{
		ParkedWait *p = parked_waiting(slot, seq);

		if (p != NULL)
		{
			p->done_seq = seq;
			p->status = status;
			p->reply = dp;
			delivered = true;
		}
	}
	SpinLockRelease(&slot->mutex);

	if (delivered)
		DurableWakeProc(procno);
	else
		DurableMessageFree(dp);
	return delivered;
}

/*
 * slot_take
 *		If the reply to call seq arrived, load it into reply (current memory
 *		context), end the wait and return its status; else DURABLE_REPLY_NONE.
 */
static DurableReplyStatus
slot_take(uint64 seq, DurableReplyMsg *reply)
{
	ReplySlot *slot = my_slot();
	DurableReplyStatus status = DURABLE_REPLY_NONE;
	dsa_pointer dp = InvalidDsaPointer;

	SpinLockAcquire(&slot->mutex);
	if (slot->done_seq == seq)
	{
		status = slot->status;
		dp = slot->reply;
		slot->reply = InvalidDsaPointer;
		slot->waiting_seq = 0;
	}
	SpinLockRelease(&slot->mutex);

	if (status != DURABLE_REPLY_NONE)
		DurableReplyMsgLoad(status, dp, reply);
	return status;
}

/*
 * slot_ready
 *		Whether the reply to call seq has arrived, without taking the slot's
 *		lock: for polling.  slot_take takes it.
 */
static bool
slot_ready(uint64 seq)
{
	volatile ReplySlot *slot = my_slot();

	return slot->done_seq == seq;
}

/*
 * DurableReplySlotAbandon
 *		The caller stops waiting for call seq (error, cancel): a host that has
 *		not started it yet skips it, and a late reply is dropped.
 */
void
DurableReplySlotAbandon(uint64 seq)
{
	ReplySlot *slot = my_slot();
	dsa_pointer dp = InvalidDsaPointer;

	SpinLockAcquire(&slot->mutex);
	if (slot->waiting_seq == seq)
	{
		slot->waiting_seq = 0;
		dp = slot->reply;
		slot->reply = InvalidDsaPointer;
	}
	SpinLockRelease(&slot->mutex);
	DurableMessageFree(dp);
}

/*
 * DurableWaitForReply
 *		Sleep on our latch until the reply to call seq (on host hostno, of
 *		generation generation) arrives, and return it.  With poll (the host
 *		was awake and idle) first watch the reply slot for POLL_US.  Ends with
 *		an ERROR on cancel or statement_timeout (through
 *		CHECK_FOR_INTERRUPTS), when the host exits without answering, and
 *		with start_limit_ms > 0 when no host started the call that long
 *		(53400).  while_waiting, if given, runs after every wakeup (a host
 *		serves its mailbox there).
 */
static DurableReplyStatus
DurableWaitForReply(int hostno, uint64 seq, uint32 generation, bool poll,
					int start_limit_ms, DurableReplyMsg *reply,
					void (*while_waiting) (void))
{
	TimestampTz down_since = 0;
	TimestampTz started_at = GetCurrentTimestamp();

	/*
	 * The host was awake and idle: the reply may come before a sleep would
	 * end.  Calls that take longer (a WAL flush, a slow handler) make polling
	 * waste CPU: after a miss, the next POLL_SKIP calls to that host sleep at
	 * once.
	 */
	if (poll && poll_skip[hostno] > 0)
		poll_skip[hostno]--;
	else if (poll)
	{
		instr_time	start;
		instr_time	now;

		INSTR_TIME_SET_CURRENT(start);
		for (;;)
		{
			if (slot_ready(seq))
				break;
			INSTR_TIME_SET_CURRENT(now);
			INSTR_TIME_SUBTRACT(now, start);
			if (INSTR_TIME_GET_MICROSEC(now) >= POLL_US)
			{
				poll_skip[hostno] = POLL_SKIP;
				break;
			}
			pg_spin_delay();
		}
	}

	for (;;)
	{
		DurableReplyStatus status = slot_take(seq, reply);
		uint32		now_generation;
		pid_t		pid;
		long		timeout = 1000L;

		if (status != DURABLE_REPLY_NONE)
			return status;

		DurableHostProcess(hostno, &pid, &now_generation);

		/* a host starts or restarts within seconds; one that stays down may never come */
		if (pid != 0)
			down_since = 0;
		else if (down_since == 0)
			down_since = GetCurrentTimestamp();
		else if (TimestampDifferenceExceeds(down_since, GetCurrentTimestamp(),
											HOST_DOWN_LIMIT_MS))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("durable host %d is not running", hostno),
					 errdetail("The call was not started."),
					 errhint("See the server log. Hosts need free background worker slots (max_worker_processes).")));

		if (now_generation != generation)
		{
			/* the host's exit callback publishes before bumping: look once more */
			status = slot_take(seq, reply);
			if (status != DURABLE_REPLY_NONE)
				return status;
			ereport(ERROR,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("durable host %d exited before answering", hostno),
					 errdetail("The outcome of the call is unknown.")));
		}

		if (start_limit_ms > 0)
		{
			long		left = start_limit_ms -
				(long) ((GetCurrentTimestamp() - started_at) / 1000);

			if (left <= 0)
			{
				if (give_up_unstarted(seq))
					ereport(ERROR,
							(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
							 errmsg("durable call could not start within durable.call_timeout (%d ms)",
									start_limit_ms),
							 errdetail("Its host was busy with other calls all that time; the call was not run."),
							 errhint("Raise durable.max_hosts (and max_worker_processes), or make the calls ahead of it faster.")));
				start_limit_ms = 0;	/* it started: it ends within its own limit */
			}
			else
				timeout = Min(timeout, left);
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (while_waiting)
			while_waiting();
	}
}

/*
 * submit
 *		Hand req to the host that runs its object (with in_chain, to the
 *		mailbox of a waiting host that holds it, waiting for the mailbox to
 *		be free), waiting up to start_limit_ms (else durable.call_timeout)
 *		for a host slot if every one is taken.  While it waits, while_waiting
 *		serves the caller's own mailbox.  ERROR 53400 if the call cannot be
 *		queued.
 */
static void
submit(const DurableTarget *target, DurableRequest *req, bool in_chain, int start_limit_ms,
	   void (*while_waiting) (void), int *hostno, uint32 *generation, bool *was_polling)
{
	TimestampTz since = GetCurrentTimestamp();

	for (;;)
	{
		if (in_chain)
		{
			DurableMailboxResult r = DurableSubmitToWaitingHost(req, hostno, generation);

			if (r == DURABLE_MAILBOX_HANDED)
				return;
			if (r == DURABLE_MAILBOX_FULL)
			{
				/* serve our own mailbox meanwhile: its host may be waiting for us */
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 1L, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
				if (while_waiting)
					while_waiting();
				continue;
			}
		}
		switch (DurableSubmit(target->db, target->owner, target->shard, req, hostno, generation,
							  was_polling))
		{
			case DURABLE_SUBMIT_OK:
				return;
			case DURABLE_SUBMIT_FULL:
				ereport(ERROR,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("the queue of the durable object's host is full"),
						 errdetail("The call was not run.")));
				break;
			case DURABLE_SUBMIT_NO_HOST:
				/* the scheduler asks an idle host of another owner to make room */
				if (TimestampDifferenceExceeds(since, GetCurrentTimestamp(),
											   start_limit_ms > 0 ? start_limit_ms :
											   durable_call_timeout > 0 ? durable_call_timeout :
											   HOST_DOWN_LIMIT_MS))
					ereport(ERROR,
							(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
							 errmsg("no durable host is free for the call"),
							 errdetail("All durable.max_hosts (%d) hosts are in use by other class owners; the call was not run.",
									   durable_max_hosts),
							 errhint("Raise durable.max_hosts (and max_worker_processes).")));
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 10L, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
				if (while_waiting)
					while_waiting();
				break;
		}
	}
}

/*
 * DurableCallObject
 *		Call an object: store msg, hand the request to the host that runs the
 *		object (target), and wait for the reply (the caller raises it).
 *		in_chain: a call between objects in chain chain (see submit);
 *		while_waiting runs after each wakeup (see DurableWaitForReply); poll:
 *		watch the reply slot before sleeping if the host is idle and awake;
 *		start_limit_ms: give up with 53400 on a call that no host started for
 *		that long.  On any error the request is withdrawn (a host that has not
 *		started it skips it).  A wait nested in another (a host serving a call
 *		while it waits in its chain) ends by waiting for the outer call again.
 */
DurableReplyStatus
DurableCallObject(const DurableTarget *target, DurableRequestKind kind, const DurableCallMsg *msg,
				  uint64 chain, bool in_chain, void (*while_waiting) (void), bool poll,
				  int start_limit_ms, DurableReplyMsg *reply)
{
	DurableRequest req;
	uint32		generation = 0;
	int			hostno = -1;
	uint64		outer_seq;
	DurableReplyStatus status = DURABLE_REPLY_NONE;
	bool		was_polling = false;

	memset(&req, 0, sizeof(req));
	req.seq = DurableReplySlotBegin(&outer_seq);
	req.caller = MyProc->pgprocno;
	req.kind = kind;
	req.chain = chain;
	req.object = target->object;
	req.message = DurableCallMsgStore(kind, msg);
	if (!DsaPointerIsValid(req.message))
	{
		DurableReplySlotAbandon(req.seq);
		DurableReplySlotResume(outer_seq);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of shared memory for a durable call")));
	}

	PG_TRY();
	{
		submit(target, &req, in_chain, start_limit_ms, while_waiting, &hostno, &generation,
			   &was_polling);
		req.message = InvalidDsaPointer;	/* the host owns it now */
		status = DurableWaitForReply(hostno, req.seq, generation, poll && was_polling,
									 start_limit_ms, reply, while_waiting);
	}
	PG_CATCH();
	{
		DurableMessageFree(req.message);
		DurableReplySlotAbandon(req.seq);
		DurableReplySlotResume(outer_seq);
		PG_RE_THROW();
	}
	PG_END_TRY();
	DurableReplySlotResume(outer_seq);
	return status;
}

/*
 * DurableReplyResult
 *		The result of a call whose reply arrived (NULL and *isnull for SQL
 *		NULL), or its error raised here with the handler's SQLSTATE, message,
 *		detail, hint and context, plus a line naming the call.
 */
Jsonb *
DurableReplyResult(DurableReplyStatus status, const DurableReplyMsg *reply,
				   const char *class_name, const char *id, const char *method, bool *isnull)
{
	const char *state = reply->sqlstate;
	int			sqlerrcode = ERRCODE_INTERNAL_ERROR;

	*isnull = false;
	if (status == DURABLE_REPLY_ERROR)
	{
		if (reply->lost)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("durable call failed, and its error could not be returned"),
					 errdetail("The host ran out of shared memory for the reply.")));
		if (state && strlen(state) == 5)
			sqlerrcode = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
		ereport(ERROR,
				(errcode(sqlerrcode),
				 errmsg_internal("%s", reply->message),
				 reply->detail ? errdetail_internal("%s", reply->detail) : 0,
				 reply->hint ? errhint("%s", reply->hint) : 0,
				 reply->context ? errcontext("%s", reply->context) : 0,
				 errcontext("durable call to %s(%s) method %s", class_name, id, method)));
	}
	if (reply->lost)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("durable call committed, but its result could not be returned"),
				 errdetail("The host ran out of shared memory for the reply.")));
	*isnull = (reply->result == NULL);
	return reply->result;
}
