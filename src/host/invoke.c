/*-------------------------------------------------------------------------
 *
 * invoke.c
 *	  Run one call of an object inside the host's batch transaction.
 *
 * host.c calls DurableInvoke once per call of a batch.  Each call runs in its
 * own subtransaction with a fresh snapshot, in the sandbox of sandbox.c (as
 * the class owner, with the owner's settings, leaving nothing behind),
 * limited by durable.call_timeout (lock waits included).  A handler cannot
 * catch the time limit away: once it fired, every subtransaction the handler
 * rolls back raises the cancel again, and the call fails with 57014 however
 * it returns.  A failing call rolls back its subtransaction only; its error
 * is copied out for the caller.  While the handler runs, the "current
 * object" is set so that the storage functions (storage.c) know whose keys
 * they touch.  A call that comes from an alarm or a send first
 * claims its row (work.c) in the same subtransaction, so its effects and
 * the row's removal commit together; a failed one is rescheduled.
 *
 * A handler may call another object that this host may run now (calls.c):
 * that call runs inline, nested in the calling one, in a subtransaction and
 * a sandbox of its own; calling back into an object that is already running
 * is a cycle and ends in ERROR 40P01 (running.c).  While a top-level call
 * runs, the host is marked busy with its object (hosts.c), which is how the
 * scheduler sees a host stuck in a long call.
 *
 * A preemptable call (host.c: one after calls of other objects in its batch,
 * which wait for the batch's commit) is cancelled the same uncatchable way
 * at durable.busy_threshold, unless it called another host meanwhile; it is
 * rolled back with no error (call->preempted), and host.c runs it again
 * alone once the batch without it committed.
 *
 * Before any other call of an object whose state is older than its class's
 * version (versions.c), the object runs $migrate {"from", "to"} as a call
 * of its own: its own subtransaction, sandbox and time limit, in the same
 * batch, the object held throughout (so nothing runs in between).  If it
 * fails, the call that triggered it fails with its error and nothing is
 * recorded, so the next call tries again.  An inline call migrates its
 * object the same way, inside the calling call.  A request for method
 * $migrate (only durable.migrate_all sends one) migrates the object if it
 * is due and answers whether it did; one for $restore (only
 * durable.restore sends one) runs restore.c instead of a handler.
 *
 * IDENTIFICATION
 *	  src/host/invoke.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/lanes.h"
#include "shared/objects.h"
#include "shared/placement.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

/* durable.call_timeout of the running top-level call */
static TimeoutId call_timer = MAX_TIMEOUTS;
static TimeoutId preempt_timer = MAX_TIMEOUTS;	/* durable.busy_threshold of a preemptable call */
static volatile sig_atomic_t call_timed_out = false;
static volatile sig_atomic_t call_preempted = false;
static bool current_preemptable = false;	/* the running top-level call may be preempted */

/*
 * run_handler
 *		Call the handler of cls for object (class_name, id) in the sandbox of
 *		its owner (sandbox.c), the object set as current.  On error the
 *		enclosing (sub)transaction restores user and settings; the current
 *		object is restored here.
 */
static Datum
run_handler(DurableClass *cls, const char *id, const char *method, Jsonb *args,
			int64 socket, bool *isnull)
{
	FmgrInfo	flinfo;
	LOCAL_FCINFO(fcinfo, 3);
	Datum		result;
	DurableSandbox sandbox;
	bool		nested = DurableRunningDepth() > 0;
	uint64		object = DurableObjectKey(cls->name, id);

	DurableSandboxEnter(cls->owner, nested, &sandbox);
	DurableRunningPush(cls->name, id, method, cls->owner, socket);
	/* a top-level call's object is its host's busy object (hosts.c) */
	if (nested)
		DurableSetRunning(object, true);

	PG_TRY();
	{
		fmgr_info(cls->handler, &flinfo);
		InitFunctionCallInfoData(*fcinfo, &flinfo, 3, InvalidOid, NULL, NULL);
		fcinfo->args[0].value = CStringGetTextDatum(id);
		fcinfo->args[0].isnull = false;
		fcinfo->args[1].value = CStringGetTextDatum(method);
		fcinfo->args[1].isnull = false;
		fcinfo->args[2].value = JsonbPGetDatum(args);
		fcinfo->args[2].isnull = false;
		result = FunctionCallInvoke(fcinfo);
		*isnull = fcinfo->isnull;
	}
	PG_CATCH();
	{
		if (nested)
			DurableSetRunning(object, false);
		DurableRunningPop();
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (nested)
		DurableSetRunning(object, false);
	DurableRunningPop();
	DurableSandboxLeave(&sandbox);
	return result;
}

/*
 * lookup_runnable
 *		The class of a call this host is about to run: it must exist, have a
 *		handler its owner owns, and belong to this host's owner (a class that
 *		changed owner after the call was queued: 40001, call again).  With
 *		the tables distributed by Citus, the object must live on this node
 *		(placement.c): no two nodes run one object.
 */
static void
lookup_runnable(const char *class_name, const char *id, DurableClass *cls)
{
	/* a class (re)defined before this call was sent is the one it runs as */
	AcceptInvalidationMessages();
	DurableClassLookup(class_name, cls, false);
	DurableClassCheckRunnable(cls);
	if (cls->owner != durable_host_owner)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("durable class \"%s\" changed owner while the call waited", class_name),
				 errdetail("The call was not run."),
				 errhint("Call it again.")));
	DurableCheckObjectHere(class_name, id);
}

/*
 * inline_run
 *		The handler run of DurableInvokeInline, in a subtransaction of its own;
 *		migrate_to > 0: it is $migrate, and the object's version is recorded.
 */
static Jsonb *
inline_run(DurableClass *cls, const char *id, const char *method, Jsonb *args,
		   int32 migrate_to, bool *isnull)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	Jsonb	   *volatile result = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		Datum		d = run_handler(cls, id, method, args, 0, isnull);

		if (!*isnull)
		{
			Jsonb	   *jb = DatumGetJsonbP(d);

			result = MemoryContextAlloc(oldcxt, VARSIZE(jb));
			memcpy(result, jb, VARSIZE(jb));
		}
		if (migrate_to > 0)
			DurableVersionSet(cls, id, DurableObjectKey(cls->name, id), migrate_to);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ReThrowError(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return result;
}

/*
 * DurableInvokeInline
 *		Run a call of another object this host now holds (calls.c) right
 *		now, inside the running call (a durable.call from a handler), in a
 *		subtransaction of its own: its writes commit with the calling call;
 *		its error is raised in the caller after its subtransaction rolled
 *		back.  An object due for $migrate runs it first, the same way (its
 *		error is the call's).  cache_valid: see DurableCacheBeginCall.
 */
Jsonb *
DurableInvokeInline(const char *class_name, const char *id, const char *method,
					Jsonb *args, bool cache_valid, bool *isnull)
{
	DurableClass cls;
	uint64		object = DurableObjectKey(class_name, id);
	int32		from;

	lookup_runnable(class_name, id, &cls);
	DurableCacheBeginCall(object, cache_valid);
	if (strcmp(method, "$migrate") != 0 && DurableVersionCheck(&cls, id, object, &from))
	{
		bool		migrate_isnull;

		(void) inline_run(&cls, id, "$migrate", DurableVersionArgs(from, cls.version),
						  cls.version, &migrate_isnull);
	}
	return inline_run(&cls, id, method, args, 0, isnull);
}

/*
 * preempt_timer_fired
 *		Timeout handler of durable.busy_threshold for a preemptable call (in a
 *		signal handler): the call has made other objects of its batch wait
 *		long enough; cancel it, to be rolled back and run alone after the
 *		batch commits (see DurableInvoke).  Not once it called another host:
 *		that call may have committed, and must not run twice.
 */
static void
preempt_timer_fired(void)
{
	if (durable_call_crossed)
		return;
	call_preempted = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/*
 * DurableInvokeBeforeCross
 *		The running call is about to call an object on another host and wait
 *		for it.  If it is preemptable (other objects of its batch wait for it)
 *		and has not crossed yet, it is preempted now: rolled back and run
 *		again alone, so that while it waits it holds only the objects of its
 *		own chain of calls (a waiting host never makes another chain wait for
 *		a batch-mate, which no wait record would show).
 */
void
DurableInvokeBeforeCross(void)
{
	if (current_preemptable && !durable_call_crossed)
	{
		call_preempted = true;
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("durable call preempted before it calls another host")));
	}
	durable_call_crossed = true;
}

/*
 * call_timer_fired
 *		Timeout handler of durable.call_timeout (in a signal handler): cancel
 *		what runs, as a statement timeout would, and remember why.
 */
static void
call_timer_fired(void)
{
	call_timed_out = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/*
 * cancel_again
 *		Once the time limit fired, a handler that catches the cancel (an
 *		EXCEPTION block rolls back its subtransaction) gets it again at its
 *		next interrupt check, until the call ends.
 */
static void
cancel_again(SubXactEvent event, SubTransactionId mySubid,
			 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && (call_timed_out || call_preempted) &&
		DurableRunningDepth() > 0)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
}

/*
 * DurableInvokeInit
 *		At host start: register the call timer.
 */
void
DurableInvokeInit(void)
{
	call_timer = RegisterTimeout(USER_TIMEOUT, call_timer_fired);
	preempt_timer = RegisterTimeout(USER_TIMEOUT, preempt_timer_fired);
	RegisterSubXactCallback(cancel_again, NULL);
}

/* start the call's time limit, and with preemptable its preemption timer */
static void
start_call_timer(bool preemptable)
{
	call_timed_out = false;
	call_preempted = false;
	durable_call_crossed = false;
	current_preemptable = preemptable;
	if (durable_call_timeout > 0)
		enable_timeout_after(call_timer, durable_call_timeout);
	if (preemptable && (durable_call_timeout == 0 || durable_busy_threshold < durable_call_timeout))
		enable_timeout_after(preempt_timer, durable_busy_threshold);
}

/*
 * stop_call_timer
 *		Stop the timers; whether the time limit fired, and in *preempted
 *		whether the preemption did (a cancel they left pending is dropped).
 */
static bool
stop_call_timer(bool *preempted)
{
	bool		fired;

	disable_timeout(call_timer, false);
	disable_timeout(preempt_timer, false);
	current_preemptable = false;
	fired = call_timed_out;
	*preempted = call_preempted && !fired;
	if (fired || call_preempted)
		QueryCancelPending = false;
	call_timed_out = false;
	call_preempted = false;
	return fired;
}

/*
 * run_call
 *		The handler run of DurableInvoke: args of gateway requests parsed, the
 *		socket bookkeeping of $connect and $close around the handler, the
 *		call's chain set while it runs.
 */
static Datum
run_call(DurableCall *call, DurableClass *cls, uint64 outer_chain, bool *isnull)
{
	Datum		result;

	if (call->args_text != NULL)
		call->args = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														CStringGetDatum(call->args_text)));
	if (!DurableSocketBeforeCall(call))
	{
		call->skipped = true;
		*isnull = true;
		return (Datum) 0;
	}
	DurableChainSet(call->req.chain);
	result = run_handler(cls, call->id, call->method, call->args, call->socket, isnull);
	DurableChainSet(outer_chain);
	DurableSocketAfterCall(call, *isnull ? NULL : DatumGetJsonbP(result));
	return result;
}

/*
 * claim_and_run
 *		Claim the call's alarm or send (a call from a request has nothing to
 *		claim) and run it; a claim that finds its row gone skips the call.
 *		Both run under the call's time limit: the claim may wait for a row
 *		lock.
 */
static Datum
claim_and_run(DurableCall *call, DurableClass *cls, uint64 outer_chain, bool *isnull)
{
	*isnull = true;
	if (!DurableWorkClaim(call))
	{
		call->skipped = true;
		return (Datum) 0;
	}
	return run_call(call, cls, outer_chain, isnull);
}

/*
 * run_migrate
 *		The handler run of a $migrate: the one DurableInvoke runs before a
 *		call (call->migrating: from the object's version to the class's), or
 *		one that durable.migrate_all asked for, which runs only if the object
 *		is due and answers true if it ran, else false.  The object's new
 *		version is recorded in the same subtransaction.
 */
static Datum
run_migrate(DurableCall *call, DurableClass *cls, uint64 outer_chain, bool *isnull)
{
	Datum		result;

	if (!call->migrating &&
		!DurableVersionCheck(cls, call->id, call->object, &call->migrate_from))
	{
		*isnull = false;
		return DirectFunctionCall1(jsonb_in, CStringGetDatum("false"));
	}
	if (cls->version <= call->migrate_from)
	{
		/* the class was dropped and created again meanwhile: nothing to do */
		*isnull = true;
		return (Datum) 0;
	}
	call->migrate_to = cls->version;
	call->args = DurableVersionArgs(call->migrate_from, call->migrate_to);
	DurableChainSet(call->req.chain);
	result = run_handler(cls, call->id, "$migrate", call->args, 0, isnull);
	DurableChainSet(outer_chain);
	DurableVersionSet(cls, call->id, call->object, call->migrate_to);
	if (call->migrating)
		return result;
	*isnull = false;
	return DirectFunctionCall1(jsonb_in, CStringGetDatum("true"));
}

/*
 * is_restore
 *		Whether call is a durable.restore() (restore.c): method $restore in
 *		a request from a session, the only source that can send it.
 */
static bool
is_restore(const DurableCall *call)
{
	return call->source == DURABLE_SOURCE_REQUEST && call->req.kind == DURABLE_REQUEST_CALL &&
		call->args_text == NULL && strcmp(call->method, "$restore") == 0;
}

/*
 * invoke_once
 *		Run call in a subtransaction of the current transaction and record its
 *		outcome in call (result or error), allocated in resultcxt.  If the
 *		object must run $migrate first, nothing runs: call->migrate_first.
 */
static void
invoke_once(DurableCall *call, MemoryContext resultcxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	uint64		outer_chain = DurableChain();
	volatile bool timed_out = false;
	volatile bool stopped = false;
	volatile bool preempted = false;
	bool		p = false;

	call->preempted = false;
	/* with Citus: a shard that moved makes the cache forget (placement.c) */
	PushActiveSnapshot(GetTransactionSnapshot());
	(void) DurableDistributed();
	PopActiveSnapshot();
	DurableCacheBeginCall(call->object, call->cache_valid);
	if (!call->nested)
		DurableHostSetBusy(durable_host_number, call->object);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);

	PG_TRY();
	{
		DurableClass cls;
		Datum		result;
		bool		isnull;

		/* a nested call runs under the time limit of its outermost call */
		if (!call->nested)
			start_call_timer(call->preemptable);
		/* a class (re)defined before this call was sent: its snapshot sees it */
		AcceptInvalidationMessages();
		PushActiveSnapshot(GetTransactionSnapshot());
		/* only a collision of object keys could bring a call of another database */
		if (call->source == DURABLE_SOURCE_REQUEST && call->req.db != durable_db)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("durable call reached a host of another database"),
					 errdetail("The call was not run."),
					 errhint("Call it again.")));
		lookup_runnable(call->class_name, call->id, &cls);
		call->async_commit = cls.async_commit;

		if (call->migrating || strcmp(call->method, "$migrate") == 0)
			result = run_migrate(call, &cls, outer_chain, &isnull);
		else if (is_restore(call))
		{
			/* no handler, no version check: the version goes back too */
			result = DurableRestoreRun(&cls, call->id, call->object, call->args);
			isnull = false;
			call->async_commit = false;
		}
		else if (DurableVersionCheck(&cls, call->id, call->object, &call->migrate_from))
		{
			/* nothing ran: the object runs $migrate first, as a call of its own */
			call->migrate_first = true;
			result = (Datum) 0;
			isnull = true;
		}
		else
			result = claim_and_run(call, &cls, outer_chain, &isnull);
		stopped = true;
		/* a preemption that came too late to cancel anything is forgotten */
		if (!call->nested && (timed_out = stop_call_timer(&p)))
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("canceling statement due to durable.call_timeout")));
		if (!call->skipped)
		{
			call->result = NULL;
			if (!isnull)
			{
				Jsonb	   *jb = DatumGetJsonbP(result);

				/* only a result someone receives is limited */
				if (call->source == DURABLE_SOURCE_REQUEST)
					DurableCheckMessageSize(VARSIZE(jb), "call result");
				call->result = MemoryContextAlloc(resultcxt, VARSIZE(jb));
				memcpy(call->result, jb, VARSIZE(jb));
			}
		}
		/* what $connect decided is read after commit: keep it with the result */
		if (call->connect_tags)
			call->connect_tags = MemoryContextStrdup(resultcxt, call->connect_tags);
		if (call->connect_reason)
			call->connect_reason = MemoryContextStrdup(resultcxt, call->connect_reason);
		PopActiveSnapshot();
		ReleaseCurrentSubTransaction();
		call->status = DURABLE_REPLY_OK;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		DurableChainSet(outer_chain);
		if (!call->nested && !stopped)
		{
			timed_out = stop_call_timer(&p);
			preempted = p;
		}

		MemoryContextSwitchTo(resultcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();

		if (preempted && !timed_out)
		{
			/* preempted: nothing happened; the host runs the call again, alone */
			FreeErrorData(edata);
			call->preempted = true;
		}
		else
		{
			/* whatever the handler raised after the limit fired, the call timed out */
			if (timed_out)
			{
				edata->sqlerrcode = ERRCODE_QUERY_CANCELED;
				edata->message = psprintf("durable call exceeded durable.call_timeout (%d ms)",
										  durable_call_timeout);
				edata->detail = pstrdup("Its writes were rolled back.");
				edata->hint = pstrdup("Make the handler faster, or raise durable.call_timeout.");
			}
			call->status = DURABLE_REPLY_ERROR;
			call->error = edata;
		}
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (!call->preempted)
		{
			DurableWorkFailed(call);
			DurableSocketAfterFailure(call);
		}
	}
	PG_END_TRY();

	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	if (!call->nested)
	{
		DurableSandboxEndCall();
		DurableHostSetIdle(durable_host_number);
	}
}

/*
 * DurableInvoke
 *		Run call in a subtransaction of the current transaction and record its
 *		outcome in call (result or error), allocated in resultcxt.  An object
 *		whose state is older than its class first runs $migrate, as a call of
 *		its own; if that fails, call fails with its error (an alarm or send
 *		is rescheduled as for any failure) and did not run.
 */
void
DurableInvoke(DurableCall *call, MemoryContext resultcxt)
{
	int			rounds;

	call->migrate_first = false;
	call->migrating = false;
	/* a class bumped again meanwhile needs another round; never loop forever */
	for (rounds = 0;; rounds++)
	{
		DurableCall m;

		invoke_once(call, resultcxt);
		if (!call->migrate_first)
			return;
		call->migrate_first = false;
		if (rounds >= 3)
		{
			call->status = DURABLE_REPLY_ERROR;
			call->error = MemoryContextAllocZero(resultcxt, sizeof(ErrorData));
			call->error->sqlerrcode = ERRCODE_T_R_SERIALIZATION_FAILURE;
			call->error->message = MemoryContextStrdup(resultcxt,
													   "durable class version changed while the object migrated");
			break;
		}

		/* the $migrate call: the same object, held, in the same batch */
		m = *call;
		m.source = DURABLE_SOURCE_REQUEST;
		m.req.kind = DURABLE_REQUEST_CALL;
		m.req.db = (int16) durable_db;
		m.req.caller = -1;
		m.method = "$migrate";
		m.args = NULL;
		m.args_text = NULL;
		m.socket = 0;
		m.token = 0;
		m.frame_id = NULL;
		m.result = NULL;
		m.error = NULL;
		m.skipped = false;
		m.connect_tags = NULL;
		m.connect_reason = NULL;
		m.migrating = true;
		invoke_once(&m, resultcxt);
		if (m.preempted)
		{
			call->preempted = true;
			return;
		}
		if (m.status == DURABLE_REPLY_ERROR)
		{
			MemoryContext old = MemoryContextSwitchTo(resultcxt);

			call->status = DURABLE_REPLY_ERROR;
			call->error = m.error;
			call->error->context = psprintf("durable $migrate of object \"%s\" of class \"%s\" from version %d%s%s",
											call->id, call->class_name, m.migrate_from,
											m.error->context ? "\n" : "",
											m.error->context ? m.error->context : "");
			MemoryContextSwitchTo(old);
			break;
		}
	}
	DurableWorkFailed(call);
	DurableSocketAfterFailure(call);
}
