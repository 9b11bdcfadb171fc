/*-------------------------------------------------------------------------
 *
 * classes.c
 *	  durable.define_class() and durable.drop_class().
 *
 * A class binds a name to a handler function (id text, method text, args
 * jsonb) RETURNS jsonb.  Its owner is the handler's owner when it is defined,
 * stored in durable._classes: only a role that owns the handler may define a
 * class with it, and redefining or dropping a class takes the privileges of
 * its stored owner (superusers may do anything).  Calls run only while the
 * handler still belongs to that owner (catalog.c), so a function of the same
 * name made by someone else never takes a class over.  Both
 * functions write durable._classes as the extension owner (catalog.c) and
 * tell every process to drop its cached copy at commit.
 *
 * Definitions of one name are serialised: both functions first take a
 * transaction-level lock on the name, then read the class's row FOR UPDATE
 * in a fresh snapshot, and only then check who owns it; a second definition
 * waits for the first transaction to end and sees what it did.  (Under
 * REPEATABLE READ the snapshot cannot see it: the write then fails with
 * 40001 instead.)  A role may own at most durable.max_classes_per_role
 * classes (54000 beyond; superusers are not limited), counted under a lock
 * on the owner.
 *
 * A class's option version (default 1) may only grow: its objects run
 * $migrate when they fall behind (host/versions.c).  The version a class
 * was created with is kept as its base version: the version of its objects
 * that have state but no row in durable._versions.
 *
 * A class's option history (an interval) keeps its objects' storage
 * changes (host/history.c); history_since records from when its history is
 * complete: the moment it was turned on, moved up by a redefinition to no
 * earlier than the old interval reached back.  Turning it off leaves the
 * rows to the hosts' pruning.  drop_class counts history as data, and
 * deletes it: a class of the same name defined later, maybe by another
 * role, must never see it.
 *
 * IDENTIFICATION
 *	  src/sql/classes.c
 *
 *-------------------------------------------------------------------------
 */
#include "sql/sql.h"
#include "shared/catalog.h"
#include "shared/objects.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(durable_define_class);
PG_FUNCTION_INFO_V1(durable_drop_class);

/* field4 of our advisory lock tags (pg_advisory_lock() uses 1 and 2) */
#define LOCK_CLASS_NAME		0x4443	/* "DC": one class name */
#define LOCK_CLASS_OWNER	0x444F	/* "DO": the classes of one owner */

static SPIPlanPtr upsert_plan = NULL;
static SPIPlanPtr update_plan = NULL;
static SPIPlanPtr has_data_plan = NULL;
static SPIPlanPtr drop_plan = NULL;
static SPIPlanPtr owner_plan = NULL;
static SPIPlanPtr count_plan = NULL;

/* lock (field2, field3) in our lock space field4 until the transaction ends */
static void
lock_xact(uint32 field2, uint32 field3, uint16 field4)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, field2, field3, field4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * lock_and_read_owner
 *		Serialise with every other definition of class name, then read its
 *		row FOR UPDATE in a new snapshot.  False if the class does not exist;
 *		else *owner is its owner (InvalidOid for a 0.1 class whose handler was
 *		already gone when the extension was updated).
 */
static bool
lock_and_read_owner(const char *name, Oid *owner, int32 *version)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	DurableSpiState spi;
	bool		exists;
	bool		isnull;

	/* 64 bits of two independent hashes: no name can be made to share another's lock */
	lock_xact(hash_bytes((const unsigned char *) name, strlen(name)),
			  (uint32) hash_bytes_extended((const unsigned char *) name, strlen(name),
										   LOCK_CLASS_NAME),
			  LOCK_CLASS_NAME);
	values[0] = CStringGetTextDatum(name);
	DurableSpiBegin(&spi);
	/* not read-only: a new snapshot sees what the transaction we waited for did */
	DurableSpiExecute(DurableSpiPlan(&owner_plan,
									 "SELECT owner::pg_catalog.oid, "
									 "       coalesce((options OPERATOR(pg_catalog.->>) 'version')::pg_catalog.int4, 1) "
									 "  FROM durable._classes "
									 " WHERE name OPERATOR(pg_catalog.=) $1 FOR UPDATE",
									 1, types),
					  values, NULL, false, SPI_OK_SELECT);
	exists = SPI_processed == 1;
	*owner = InvalidOid;
	*version = 1;
	if (exists)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			*owner = DatumGetObjectId(d);
		*version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											   2, &isnull));
	}
	DurableSpiEnd(&spi);
	return exists;
}

/*
 * check_class_quota
 *		Before owner gets a new class: ERROR 54000 if it already owns
 *		durable.max_classes_per_role (0: no limit).  Superusers are not limited.
 */
static void
check_class_quota(Oid owner)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	DurableSpiState spi;
	int64		owned;
	bool		isnull;

	if (durable_max_classes_per_role <= 0 || superuser() || superuser_arg(owner))
		return;
	lock_xact(owner, 0, LOCK_CLASS_OWNER);
	values[0] = ObjectIdGetDatum(owner);
	DurableSpiBegin(&spi);
	DurableSpiExecute(DurableSpiPlan(&count_plan,
									 "SELECT pg_catalog.count(*) FROM durable._classes "
									 " WHERE owner OPERATOR(pg_catalog.=) $1::pg_catalog.regrole",
									 1, types),
					  values, NULL, false, SPI_OK_SELECT);
	owned = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										&isnull));
	DurableSpiEnd(&spi);
	if (owned >= durable_max_classes_per_role)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("role \"%s\" owns %lld durable classes, the most it may own",
						GetUserNameFromId(owner, false), (long long) owned),
				 errdetail("durable.max_classes_per_role is %d.", durable_max_classes_per_role),
				 errhint("Drop classes the role no longer needs, or ask an administrator to raise durable.max_classes_per_role.")));
}

/*
 * check_handler
 *		ERROR unless proc is a plain function (text, text, jsonb) RETURNS jsonb.
 *		Returns its owner.
 */
static Oid
check_handler(Oid proc)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(proc));
	Form_pg_proc form;
	Oid			owner;
	bool		ok;
	bool		temporary;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", proc)));
	form = (Form_pg_proc) GETSTRUCT(tuple);
	owner = form->proowner;
	temporary = isAnyTempNamespace(form->pronamespace);
	ok = form->prokind == PROKIND_FUNCTION && !form->proretset &&
		form->prorettype == JSONBOID && form->pronargs == 3 &&
		form->proargtypes.values[0] == TEXTOID &&
		form->proargtypes.values[1] == TEXTOID &&
		form->proargtypes.values[2] == JSONBOID;
	ReleaseSysCache(tuple);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("function %s cannot be a class handler", format_procedure(proc)),
				 errdetail("A handler is a function (id text, method text, args jsonb) RETURNS jsonb.")));
	if (temporary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("a temporary function cannot be a class handler"),
				 errdetail("A temporary function ends with its session; a class outlives it.")));
	return owner;
}

static bool
option_is(JsonbValue *v, enum jbvType type)
{
	return v->type == type;
}

/* an integer JSON value from min to max (written without a fraction or exponent) */
static bool
int_in(JsonbValue *v, int64 min, int64 max)
{
	char	   *digits;
	int64		n;
	int			i;

	if (v->type != jbvNumeric)
		return false;
	digits = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	for (i = 0; digits[i] != '\0'; i++)
		if (!(isdigit((unsigned char) digits[i]) || (i == 0 && digits[i] == '-')) || i > 18)
			return false;
	n = strtoll(digits, NULL, 10);
	return i > 0 && n >= min && n <= max;
}

/* retain: {"events": n, "seconds": s}, each optional, nothing else */
static bool
retain_ok(Jsonb *retain)
{
	JsonbValue *events = getKeyJsonValueFromContainer(&retain->root, "events", 6, NULL);
	JsonbValue *seconds = getKeyJsonValueFromContainer(&retain->root, "seconds", 7, NULL);

	return (events == NULL || int_in(events, 0, DURABLE_RETAIN_EVENTS_MAX)) &&
		(seconds == NULL || int_in(seconds, 1, PG_INT32_MAX)) &&
		JsonContainerSize(&retain->root) == (events != NULL) + (seconds != NULL);
}

/*
 * history_ok
 *		Whether v is the text of a positive interval of at most
 *		DURABLE_HISTORY_MAX_YEARS years.  Parsed in a subtransaction, so
 *		that text that is no interval is our error (22023), not the
 *		parser's.
 */
static bool
history_ok(JsonbValue *v)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	char	   *text;
	Interval   *volatile span = NULL;
	Interval	zero = {0};
	Interval	most = {0};

	if (v->type != jbvString)
		return false;
	text = pnstrdup(v->val.string.val, v->val.string.len);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		span = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(text),
													 ObjectIdGetDatum(InvalidOid),
													 Int32GetDatum(-1)));
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		span = NULL;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	most.month = DURABLE_HISTORY_MAX_YEARS * MONTHS_PER_YEAR;
	return span != NULL &&
		DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(span),
										  IntervalPGetDatum(&zero))) > 0 &&
		DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(span),
										  IntervalPGetDatum(&most))) <= 0;
}

/*
 * check_options
 *		ERROR 22023 unless options is an object of known options with values
 *		of the right type.
 */
static void
check_options(Jsonb *options)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("class options must be a JSON object")));

	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *name;
		bool		ok;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (strcmp(name, "websocket") == 0 || strcmp(name, "http") == 0)
			ok = option_is(&v, jbvBool);
		else if (strcmp(name, "durability") == 0)
			ok = option_is(&v, jbvString) &&
				((v.val.string.len == 4 && strncmp(v.val.string.val, "sync", 4) == 0) ||
				 (v.val.string.len == 5 && strncmp(v.val.string.val, "async", 5) == 0));
		else if (strcmp(name, "auto_response") == 0)
		{
			Jsonb	   *ar;
			JsonbValue *req,
					   *resp;

			ok = option_is(&v, jbvBinary) && JsonContainerIsObject(v.val.binary.data);
			if (ok)
			{
				ar = JsonbValueToJsonb(&v);
				req = getKeyJsonValueFromContainer(&ar->root, "request", 7, NULL);
				resp = getKeyJsonValueFromContainer(&ar->root, "response", 8, NULL);
				ok = req && resp && req->type == jbvString && resp->type == jbvString &&
					JsonContainerSize(&ar->root) == 2 &&
					req->val.string.len <= DURABLE_MAX_AUTO_RESPONSE &&
					resp->val.string.len <= DURABLE_MAX_AUTO_RESPONSE;
			}
		}
		else if (strcmp(name, "version") == 0)
			ok = int_in(&v, 1, PG_INT32_MAX);
		else if (strcmp(name, "retain") == 0)
			ok = option_is(&v, jbvBinary) && JsonContainerIsObject(v.val.binary.data) &&
				retain_ok(JsonbValueToJsonb(&v));
		else if (strcmp(name, "history") == 0)
			ok = history_ok(&v);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown class option \"%s\"", name),
					 errhint("Valid options are websocket, http, durability, auto_response, retain, version and history.")));
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for class option \"%s\"", name),
					 errdetail("websocket and http take true or false, durability takes \"sync\" or \"async\", auto_response takes {\"request\": text, \"response\": text} of at most " CppAsString2(DURABLE_MAX_AUTO_RESPONSE) " bytes each, retain takes {\"events\": 0 to " CppAsString2(DURABLE_RETAIN_EVENTS_MAX) ", \"seconds\": 1 to 2147483647}, both optional, version takes an integer from 1 to 2147483647, history takes an interval as text (\"7 days\"), more than 0 and at most " CppAsString2(DURABLE_HISTORY_MAX_YEARS) " years.")));
	}
}

/*
 * DurableCheckClassOwner
 *		ERROR 42501 unless the current role may change existing class name,
 *		owned by owner (InvalidOid: its handler is gone, superusers only).
 */
void
DurableCheckClassOwner(const char *name, Oid owner)
{
	if (superuser())
		return;
	if (!OidIsValid(owner) || !has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of durable class \"%s\"", name),
				 errdetail("The owner of a class is the role that owned its handler function when the class was defined.")));
}

/*
 * durable_define_class
 *		durable.define_class(name text, handler regproc, options jsonb) RETURNS void
 */
Datum
durable_define_class(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			handler;
	Jsonb	   *options;
	Oid			owner;
	Oid			handler_owner;
	int32		old_version;
	int32		version;
	JsonbValue *v;
	DurableSpiState spi;
	Datum		values[6];
	Oid			types[6] = {TEXTOID, TEXTOID, JSONBOID, OIDOID, INT4OID, TIMESTAMPTZOID};

	DurableCheckReady();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("class name, handler and options must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	handler = PG_GETARG_OID(1);
	options = PG_GETARG_JSONB_P(2);

	DurableCheckClassName(name);
	handler_owner = check_handler(handler);
	check_options(options);
	if (!DurableProcOwnercheck(handler, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of function %s", format_procedure(handler)),
				 errdetail("The owner of a class is the owner of its handler function.")));
	v = getKeyJsonValueFromContainer(&options->root, "version", 7, NULL);
	version = v ? DatumGetInt32(DirectFunctionCall1(numeric_int4,
													NumericGetDatum(v->val.numeric))) : 1;
	if (lock_and_read_owner(name, &owner, &old_version))
	{
		DurableCheckClassOwner(name, owner);
		if (version < old_version)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("durable class \"%s\" is at version %d and cannot go back to version %d",
							name, old_version, version),
					 errdetail("Its objects' state may already have been migrated to version %d.",
							   old_version),
					 errhint("Define it with version %d or higher.", old_version)));
	}
	else
		owner = InvalidOid;
	/* a new class, or one that changes hands, counts against its new owner */
	if (owner != handler_owner)
		check_class_quota(handler_owner);

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(format_procedure_qualified(handler));
	values[2] = JsonbPGetDatum(options);
	values[3] = ObjectIdGetDatum(handler_owner);
	values[4] = Int32GetDatum(version);
	/* the clock as a value: Citus refuses volatile functions in writes of _classes */
	values[5] = TimestampTzGetDatum(GetCurrentTimestamp());
	DurableSpiBegin(&spi);
	/*
	 * a class keeps the version it was created with as its base (versions.c);
	 * its history is complete from when it was turned on, and no further
	 * back than the interval it had until now (older rows may be pruned)
	 */
	/*
	 * An insert, else an update of the row (no ON CONFLICT DO UPDATE: Citus
	 * refuses anything but immutable functions there, and _classes is its
	 * reference table once durable.distribute() ran).  The name's lock is
	 * held, so nothing comes between the two.
	 */
	DurableSpiExecute(DurableSpiPlan(&upsert_plan,
									 "INSERT INTO durable._classes (name, handler, options, owner, base_version, history_since) "
									 "VALUES ($1, $2, $3, $4::pg_catalog.regrole, $5, "
									 "        CASE WHEN $3 OPERATOR(pg_catalog.?) 'history' THEN $6 END) "
									 "ON CONFLICT (name) DO NOTHING",
									 6, types),
					  values, NULL, false, SPI_OK_INSERT);
	if (SPI_processed == 0)
		DurableSpiExecute(DurableSpiPlan(&update_plan,
										 "UPDATE durable._classes c "
										 "   SET handler = $2, options = $3, owner = $4::pg_catalog.regrole, "
										 "       updated_at = pg_catalog.now(), "
										 "       history_since = CASE "
										 "         WHEN NOT $3 OPERATOR(pg_catalog.?) 'history' THEN NULL "
										 "         WHEN c.options OPERATOR(pg_catalog.?) 'history' "
										 "         THEN GREATEST(c.history_since, $6 "
										 "              OPERATOR(pg_catalog.-) (c.options OPERATOR(pg_catalog.->>) 'history')::pg_catalog.interval) "
										 "         ELSE $6 END "
										 " WHERE c.name OPERATOR(pg_catalog.=) $1",
										 6, types),
						  values, NULL, false, SPI_OK_UPDATE);
	DurableSpiEnd(&spi);
	DurableClassesInvalidate();
	DurableClassesChangedAtCommit();
	PG_RETURN_VOID();
}

/*
 * durable_drop_class
 *		durable.drop_class(name text, drop_data boolean) RETURNS void
 */
Datum
durable_drop_class(PG_FUNCTION_ARGS)
{
	char	   *name;
	bool		drop_data;
	Oid			owner;
	int32		version;
	DurableSpiState spi;
	Datum		values[1];
	Oid			types[1] = {TEXTOID};
	bool		has_data;
	bool		isnull;

	DurableCheckReady();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("class name and drop_data must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	drop_data = PG_GETARG_BOOL(1);
	DurableCheckClassName(name);
	if (!lock_and_read_owner(name, &owner, &version))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("durable class \"%s\" does not exist", name),
				 errhint("Create it with durable.define_class().")));
	DurableCheckClassOwner(name, owner);

	values[0] = CStringGetTextDatum(name);
	DurableSpiBegin(&spi);
	DurableSpiExecute(DurableSpiPlan(&has_data_plan,
									 "SELECT EXISTS (SELECT 1 FROM durable._storage "
									 "                WHERE class OPERATOR(pg_catalog.=) $1) "
									 "    OR EXISTS (SELECT 1 FROM durable._history "
									 "                WHERE class OPERATOR(pg_catalog.=) $1)",
									 1, types),
					  values, NULL, true, SPI_OK_SELECT);
	has_data = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  1, &isnull));
	if (has_data && !drop_data)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("durable class \"%s\" still has objects with storage or history", name),
				 errhint("Use durable.drop_class('%s', drop_data => true) to delete them too.",
						 name)));
	DurableSpiExecute(DurableSpiPlan(&drop_plan,
									 "WITH s AS (DELETE FROM durable._storage "
									 "            WHERE class OPERATOR(pg_catalog.=) $1), "
									 "     r AS (DELETE FROM durable._residency "
									 "            WHERE class OPERATOR(pg_catalog.=) $1), "
									 "     a AS (DELETE FROM durable._alarms "
									 "            WHERE class OPERATOR(pg_catalog.=) $1), "
									 "     o AS (DELETE FROM durable._outbox "
									 "            WHERE class OPERATOR(pg_catalog.=) $1), "
									 "     e AS (DELETE FROM durable._events "
									 "            WHERE class OPERATOR(pg_catalog.=) $1), "
									 "     v AS (DELETE FROM durable._versions "
									 "            WHERE class OPERATOR(pg_catalog.=) $1), "
									 "     h AS (DELETE FROM durable._history "
									 "            WHERE class OPERATOR(pg_catalog.=) $1) "
									 "DELETE FROM durable._classes WHERE name OPERATOR(pg_catalog.=) $1",
									 1, types),
					  values, NULL, false, SPI_OK_DELETE);
	DurableSpiEnd(&spi);
	DurableClassesInvalidate();
	DurableClassesChangedAtCommit();
	PG_RETURN_VOID();
}
