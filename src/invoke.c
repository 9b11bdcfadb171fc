/*-------------------------------------------------------------------------
 *
 * invoke.c
 *	  Run one call of an object inside the host's batch transaction.
 *
 * host.c calls DurableInvoke once per call of a batch.  Each call runs in its
 * own subtransaction, as the class owner (like SECURITY DEFINER), with its
 * own GUC nesting level and a fresh snapshot, limited by durable.call_timeout
 * (lock waits included).  A failing call rolls back its subtransaction only;
 * its error is copied out for the caller.  While the handler runs, the
 * "current object" is set so that the storage functions (storage.c) know
 * whose keys they touch.  A call that comes from an alarm or a send first
 * claims its row (work.c) in the same subtransaction, so its effects and
 * the row's removal commit together; a failed one is rescheduled.
 *
 * A handler may call another object of the same host (router.c): that call
 * runs inline, nested in the calling one; calling back into an object that
 * is already running is a cycle and ends in ERROR 40P01.
 *
 * IDENTIFICATION
 *	  src/invoke.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

/* the objects whose handlers run now on this host, innermost last */
#define MAX_NESTING 32
static const char *running_class[MAX_NESTING];
static const char *running_id[MAX_NESTING];
static int64 running_socket[MAX_NESTING];
static int	nrunning = 0;

/*
 * DurableInHost
 *		True in a host worker process.
 */
bool
DurableInHost(void)
{
	return durable_host_number >= 0;
}

/*
 * DurableCurrentSocket
 *		The socket whose frame started the running call, 0 if none (or if the
 *		running handler is a nested call of another object).
 */
int64
DurableCurrentSocket(void)
{
	return nrunning > 0 ? running_socket[nrunning - 1] : 0;
}

/*
 * DurableCurrentObject
 *		The object whose handler is running.  ERROR 55000 outside a handler;
 *		function names the SQL function asking, for the message.
 */
void
DurableCurrentObject(const char *function, const char **class_name, const char **id)
{
	if (nrunning == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s can only be called inside an object handler", function),
				 errhint("Call the object with durable.call() and use %s in its handler.",
						 function)));
	*class_name = running_class[nrunning - 1];
	*id = running_id[nrunning - 1];
}

/*
 * run_handler
 *		Call the handler of cls for object (class_name, id) as the class owner,
 *		with its own GUC nesting level, the object set as current.  On error
 *		the enclosing (sub)transaction restores user and settings; the current
 *		object is restored here.
 */
static Datum
run_handler(DurableClass *cls, const char *id, const char *method, Jsonb *args,
			int64 socket, bool *isnull)
{
	FmgrInfo	flinfo;
	LOCAL_FCINFO(fcinfo, 3);
	Datum		result;
	Oid			save_user;
	int			save_sec;
	int			nestlevel;
	int			i;

	for (i = 0; i < nrunning; i++)
		if (strcmp(running_class[i], cls->name) == 0 && strcmp(running_id[i], id) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
					 errmsg("deadlock detected: object %s(%s) is already running a call",
							cls->name, id),
					 errdetail("A cycle of synchronous calls came back to an object that waits for its own call."),
					 errhint("Use durable.send() for one direction of the conversation.")));
	if (nrunning >= MAX_NESTING)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("calls between objects nest deeper than %d", MAX_NESTING)));

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(cls->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	nestlevel = NewGUCNestLevel();
	running_class[nrunning] = cls->name;
	running_id[nrunning] = id;
	running_socket[nrunning] = socket;
	nrunning++;

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
		nrunning--;
		PG_RE_THROW();
	}
	PG_END_TRY();

	nrunning--;
	/* settings a handler changed, even with plain SET, end with its call */
	AtEOXact_GUC(false, nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	return result;
}

static void
lookup_runnable(const char *class_name, DurableClass *cls)
{
	DurableClassLookup(class_name, cls, false);
	if (!OidIsValid(cls->handler))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the handler of durable class \"%s\" no longer exists", class_name)));
}

/*
 * DurableInvokeNested
 *		Run a call of another object of this host right now, inside the
 *		running call (a durable.call from a handler).  Its writes belong to
 *		the calling call's subtransaction.
 */
Jsonb *
DurableInvokeNested(const char *class_name, const char *id, const char *method,
					Jsonb *args, bool *isnull)
{
	DurableClass cls;
	Datum		result;

	lookup_runnable(class_name, &cls);
	result = run_handler(&cls, id, method, args, 0, isnull);
	if (*isnull)
		return NULL;
	return DatumGetJsonbP(result);
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
	durable_current_chain = call->req.chain;
	result = run_handler(cls, call->id, call->method, call->args, call->socket, isnull);
	durable_current_chain = outer_chain;
	DurableSocketAfterCall(call, *isnull ? NULL : DatumGetJsonbP(result));
	return result;
}

/*
 * DurableInvoke
 *		Run call in a subtransaction of the current transaction and record its
 *		outcome in call (result or error), allocated in resultcxt.
 */
void
DurableInvoke(DurableCall *call, MemoryContext resultcxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	TimestampTz started = GetCurrentTimestamp();
	uint64		outer_chain = durable_current_chain;

	DurableCacheBeginCall();
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);

	PG_TRY();
	{
		DurableClass cls;
		Datum		result;
		bool		isnull;

		PushActiveSnapshot(GetTransactionSnapshot());
		lookup_runnable(call->class_name, &cls);
		call->async_commit = cls.async_commit;

		if (!DurableWorkClaim(call))
			call->skipped = true;
		else
		{
			/* a nested call runs under the time limit of its outermost call */
			if (durable_call_timeout > 0 && !call->nested)
				enable_timeout_after(STATEMENT_TIMEOUT, durable_call_timeout);
			result = run_call(call, &cls, outer_chain, &isnull);
			if (!call->nested)
				disable_timeout(STATEMENT_TIMEOUT, false);

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

		durable_current_chain = outer_chain;
		if (!call->nested)
			disable_timeout(STATEMENT_TIMEOUT, false);

		MemoryContextSwitchTo(resultcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();

		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && durable_call_timeout > 0 && !call->nested &&
			TimestampDifferenceExceeds(started, GetCurrentTimestamp(), durable_call_timeout))
		{
			edata->message = psprintf("durable call exceeded durable.call_timeout (%d ms)",
									  durable_call_timeout);
			edata->detail = pstrdup("Its writes were rolled back.");
			edata->hint = pstrdup("Make the handler faster, or raise durable.call_timeout.");
		}
		call->status = DURABLE_REPLY_ERROR;
		call->error = edata;
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		DurableWorkFailed(call);
		DurableSocketAfterFailure(call);
	}
	PG_END_TRY();

	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
}
