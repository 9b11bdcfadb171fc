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
 * whose keys they touch.
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

static const char *current_class = NULL;
static const char *current_id = NULL;

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
 * DurableCurrentObject
 *		The object whose handler is running.  ERROR 55000 outside a handler;
 *		function names the SQL function asking, for the message.
 */
void
DurableCurrentObject(const char *function, const char **class_name, const char **id)
{
	if (current_class == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s can only be called inside an object handler", function),
				 errhint("Call the object with durable.call() and use %s in its handler.",
						 function)));
	*class_name = current_class;
	*id = current_id;
}

static Datum
run_handler(DurableCall *call, DurableClass *cls, bool *isnull)
{
	FmgrInfo	flinfo;
	LOCAL_FCINFO(fcinfo, 3);
	Datum		result;

	fmgr_info(cls->handler, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 3, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(call->id);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = CStringGetTextDatum(call->method);
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].value = JsonbPGetDatum(call->args);
	fcinfo->args[2].isnull = false;
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
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

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);

	PG_TRY();
	{
		DurableClass cls;
		Oid			save_user;
		int			save_sec;
		int			nestlevel;
		Datum		result;
		bool		isnull;

		PushActiveSnapshot(GetTransactionSnapshot());
		DurableClassLookup(call->class_name, &cls, false);
		if (!OidIsValid(cls.handler))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("the handler of durable class \"%s\" no longer exists",
							call->class_name)));
		call->async_commit = cls.async_commit;

		GetUserIdAndSecContext(&save_user, &save_sec);
		SetUserIdAndSecContext(cls.owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
		nestlevel = NewGUCNestLevel();
		current_class = call->class_name;
		current_id = call->id;
		if (durable_call_timeout > 0)
			enable_timeout_after(STATEMENT_TIMEOUT, durable_call_timeout);

		result = run_handler(call, &cls, &isnull);

		disable_timeout(STATEMENT_TIMEOUT, false);
		current_class = NULL;
		current_id = NULL;

		call->result = NULL;
		if (!isnull)
		{
			Jsonb	   *jb = DatumGetJsonbP(result);

			DurableCheckMessageSize(VARSIZE(jb), "call result");
			call->result = MemoryContextAlloc(resultcxt, VARSIZE(jb));
			memcpy(call->result, jb, VARSIZE(jb));
		}
		PopActiveSnapshot();
		AtEOXact_GUC(true, nestlevel);
		SetUserIdAndSecContext(save_user, save_sec);

		ReleaseCurrentSubTransaction();
		call->status = DURABLE_REPLY_OK;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		disable_timeout(STATEMENT_TIMEOUT, false);
		current_class = NULL;
		current_id = NULL;

		MemoryContextSwitchTo(resultcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();

		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && durable_call_timeout > 0 &&
			TimestampDifferenceExceeds(started, GetCurrentTimestamp(), durable_call_timeout))
		{
			edata->message = psprintf("durable call exceeded durable.call_timeout (%d ms)",
									  durable_call_timeout);
			edata->detail = pstrdup("Its writes were rolled back.");
			edata->hint = pstrdup("Make the handler faster, or raise durable.call_timeout.");
		}
		call->status = DURABLE_REPLY_ERROR;
		call->error = edata;
	}
	PG_END_TRY();

	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
}
