/*-------------------------------------------------------------------------
 *
 * call.c
 *	  durable.call(), durable.send() and durable.new_id().
 *
 * A call is validated and checked (class exists, EXECUTE on its handler),
 * then handed to the host that runs the object (one of its class owner's
 * hosts, shared/lanes.c), and the caller waits on its latch until the host
 * publishes the reply, which it does only after the call's transaction
 * committed (shared/replies.c).  The wait ends with an error if the caller
 * is cancelled (the host then skips the call if it has not started it), if
 * the host exits, or if no host started the call within
 * durable.call_timeout (53400).  Inside a handler, durable.call reaches other
 * objects through the host (host/calls.c).
 *
 * send() validates like call() (unknown class, privileges and sizes fail at
 * send time) and inserts a row into durable._outbox inside the caller's
 * transaction: it exists only if the caller commits, which wakes the
 * object's home host (at_commit.c).  Running, retrying and dead-lettering are the host's
 * (host/work.c).
 *
 * IDENTIFICATION
 *	  src/sql/call.c
 *
 *-------------------------------------------------------------------------
 */
#include "sql/sql.h"
#include "host/host.h"
#include "shared/catalog.h"
#include "shared/objects.h"
#include "shared/replies.h"

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/regproc.h"

PG_FUNCTION_INFO_V1(durable_call);
PG_FUNCTION_INFO_V1(durable_send);
PG_FUNCTION_INFO_V1(durable_new_id);

static SPIPlanPtr insert_plan = NULL;

/*
 * DurableCheckReady
 *		ERROR (with a hint) unless the library is preloaded and this is one of
 *		the databases the hosts serve; sets durable_db.
 */
void
DurableCheckReady(void)
{
	static Oid	checked_db = InvalidOid;
	char	   *dbname;
	int			db;

	if (!DurableShmemReady())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_durable_objects is not loaded through shared_preload_libraries"),
				 errhint("Add pg_durable_objects to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("durable objects do not run during recovery"),
				 errhint("Call objects on the primary server.")));
	if (checked_db == MyDatabaseId)
		return;
	dbname = get_database_name(MyDatabaseId);
	db = dbname ? DurableDatabaseNumber(dbname) : -1;
	if (db < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("durable objects run in database \"%s\", not in \"%s\"",
						durable_database, dbname ? dbname : "?"),
				 errhint("Connect to a database of durable.database, or add \"%s\" to durable.database in postgresql.conf and restart the server.",
						 dbname ? dbname : "?")));
	durable_db = db;
	checked_db = MyDatabaseId;
}

static void
check_not_null(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/*
 * check_call_args
 *		Validate the (class, id, method, args) arguments of durable.call and
 *		durable.send, check the class exists and that the current role may
 *		call it (EXECUTE on its handler).
 */
static void
check_call_args(FunctionCallInfo fcinfo, char **class_name, char **id,
				char **method, Jsonb **args, DurableClass *cls)
{
	DurableCheckReady();
	check_not_null(fcinfo, 0, "class");
	check_not_null(fcinfo, 1, "object id");
	check_not_null(fcinfo, 2, "method");
	check_not_null(fcinfo, 3, "args");
	*class_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	*id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	*method = text_to_cstring(PG_GETARG_TEXT_PP(2));
	*args = PG_GETARG_JSONB_P(3);

	DurableCheckClassName(*class_name);
	DurableCheckId(*id);
	DurableCheckMethod(*method);
	DurableCheckMessageSize(VARSIZE(*args), "call argument");

	DurableCheckCallable(*class_name, cls);
}

/*
 * DurableCheckCallable
 *		Look class_name up into *cls: ERROR unless it exists, can run, and the
 *		current role has EXECUTE on its handler (who may call its objects).
 */
void
DurableCheckCallable(const char *class_name, DurableClass *cls)
{
	AclResult	aclresult;

	DurableClassLookup(class_name, cls, false);
	DurableClassCheckRunnable(cls);
	aclresult = DurableProcAclcheck(cls->handler, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to call objects of class \"%s\"", class_name),
				 errhint("A role needs EXECUTE on the class handler %s.",
						 format_procedure(cls->handler))));
}

/*
 * DurableCallFromSession
 *		From a session (not a host): run method on object (cls, id) on its
 *		host and wait for the outcome; its result (*isnull for SQL NULL), or
 *		its error raised here.  method is not checked: durable.call checks
 *		it, migrate_all and restore send their own "$" methods.
 */
Jsonb *
DurableCallFromSession(const DurableClass *cls, const char *id, const char *method,
					   Jsonb *args, bool *isnull)
{
	DurableTarget target;
	DurableCallMsg msg;
	DurableReplyMsg reply;
	DurableReplyStatus status;

	target.db = durable_db;
	target.owner = cls->owner;
	target.shard = DurableObjectShard(cls->name, id);
	target.object = DurableObjectKey(cls->name, id);
	memset(&msg, 0, sizeof(msg));
	msg.class_name = cls->name;
	msg.id = id;
	msg.method = method;
	msg.args = args;
	status = DurableCallObject(&target, DURABLE_REQUEST_CALL, &msg, 0, false, NULL, true,
							   durable_call_timeout, &reply);
	return DurableReplyResult(status, &reply, cls->name, id, method, isnull);
}

/*
 * durable_call
 *		durable.call(class text, id text, method text, args jsonb) RETURNS jsonb
 *
 * From a session: route to the object's host and wait.  Inside a handler
 * (a call between objects): through the host (host/calls.c).
 */
Datum
durable_call(PG_FUNCTION_ARGS)
{
	char	   *class_name;
	char	   *id;
	char	   *method;
	Jsonb	   *args;
	Jsonb	   *result;
	bool		isnull;
	DurableClass cls;

	check_call_args(fcinfo, &class_name, &id, &method, &args, &cls);
	if (DurableInHost())
		result = DurableHostCall(class_name, id, method, args, cls.owner, &isnull);
	else
		result = DurableCallFromSession(&cls, id, method, args, &isnull);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}

/*
 * durable_send
 *		durable.send(class text, id text, method text, args jsonb) RETURNS void
 */
Datum
durable_send(PG_FUNCTION_ARGS)
{
	char	   *class_name;
	char	   *id;
	char	   *method;
	Jsonb	   *args;
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT8OID};
	Datum		values[5];
	DurableSpiState spi;
	uint32		shard;
	DurableClass cls;

	check_call_args(fcinfo, &class_name, &id, &method, &args, &cls);
	shard = DurableObjectShard(class_name, id);

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = CStringGetTextDatum(method);
	values[3] = JsonbPGetDatum(args);
	values[4] = Int64GetDatum((int64) shard);
	DurableSpiBegin(&spi);
	DurableSpiExecute(DurableSpiPlan(&insert_plan,
									 "INSERT INTO durable._outbox (class, id, method, args, shard) "
									 "VALUES ($1, $2, $3, $4, $5)",
									 5, types),
					  values, NULL, false, SPI_OK_INSERT);
	DurableSpiEnd(&spi);

	DurableWakeHostAtCommit(cls.owner, (int) (shard % (uint32) durable_hosts));
	PG_RETURN_VOID();
}

/*
 * durable_new_id
 *		durable.new_id() RETURNS text: 128 random bits as 32 hex characters.
 */
Datum
durable_new_id(PG_FUNCTION_ARGS)
{
	uint8		bytes[16];
	char		hex[33];
	int			i;

	if (!pg_strong_random(bytes, sizeof(bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random object id")));
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}
