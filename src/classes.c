/*-------------------------------------------------------------------------
 *
 * classes.c
 *	  durable.define_class() and durable.drop_class().
 *
 * A class binds a name to a handler function (id text, method text, args
 * jsonb) RETURNS jsonb.  Its owner is the handler's owner: only a role that
 * owns the handler may define a class with it, and redefining or dropping a
 * class takes membership in its owner (superusers may do anything).  Both
 * functions write durable._classes as the extension owner (catalog.c) and
 * tell every process to drop its cached copy at commit.
 *
 * IDENTIFICATION
 *	  src/classes.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(durable_define_class);
PG_FUNCTION_INFO_V1(durable_drop_class);

static SPIPlanPtr upsert_plan = NULL;
static SPIPlanPtr has_data_plan = NULL;
static SPIPlanPtr drop_plan = NULL;

/*
 * check_handler
 *		ERROR unless proc is a plain function (text, text, jsonb) RETURNS jsonb.
 */
static void
check_handler(Oid proc)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(proc));
	Form_pg_proc form;
	bool		ok;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", proc)));
	form = (Form_pg_proc) GETSTRUCT(tuple);
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
}

static bool
option_is(JsonbValue *v, enum jbvType type)
{
	return v->type == type;
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
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown class option \"%s\"", name),
					 errhint("Valid options are websocket, http, durability and auto_response.")));
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for class option \"%s\"", name),
					 errdetail("websocket and http take true or false, durability takes \"sync\" or \"async\", auto_response takes {\"request\": text, \"response\": text} of at most " CppAsString2(DURABLE_MAX_AUTO_RESPONSE) " bytes each.")));
	}
}

/*
 * check_class_owner
 *		ERROR 42501 unless the current role may change existing class cls.
 */
static void
check_class_owner(const DurableClass *cls)
{
	if (superuser())
		return;
	if (!OidIsValid(cls->owner) || !has_privs_of_role(GetUserId(), cls->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of durable class \"%s\"", cls->name),
				 errdetail("The owner of a class is the owner of its handler function.")));
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
	DurableClass existing;
	DurableSpiState spi;
	Datum		values[3];
	Oid			types[3] = {TEXTOID, TEXTOID, JSONBOID};

	DurableCheckReady();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("class name, handler and options must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	handler = PG_GETARG_OID(1);
	options = PG_GETARG_JSONB_P(2);

	DurableCheckClassName(name);
	check_handler(handler);
	check_options(options);
	if (!DurableProcOwnercheck(handler, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of function %s", format_procedure(handler)),
				 errdetail("The owner of a class is the owner of its handler function.")));
	if (DurableClassLookup(name, &existing, true))
		check_class_owner(&existing);

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(format_procedure_qualified(handler));
	values[2] = JsonbPGetDatum(options);
	DurableSpiBegin(&spi);
	DurableSpiExecute(DurableSpiPlan(&upsert_plan,
									 "INSERT INTO durable._classes (name, handler, options) "
									 "VALUES ($1, $2, $3) "
									 "ON CONFLICT (name) DO UPDATE "
									 "   SET handler = EXCLUDED.handler, options = EXCLUDED.options, "
									 "       updated_at = pg_catalog.now()",
									 3, types),
					  values, NULL, false, SPI_OK_INSERT);
	DurableSpiEnd(&spi);
	DurableClassesChanged();
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
	DurableClass cls;
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
	DurableClassLookup(name, &cls, false);
	check_class_owner(&cls);

	values[0] = CStringGetTextDatum(name);
	DurableSpiBegin(&spi);
	DurableSpiExecute(DurableSpiPlan(&has_data_plan,
									 "SELECT EXISTS (SELECT FROM durable._storage "
									 "                WHERE class OPERATOR(pg_catalog.=) $1)",
									 1, types),
					  values, NULL, true, SPI_OK_SELECT);
	has_data = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  1, &isnull));
	if (has_data && !drop_data)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("durable class \"%s\" still has objects with storage", name),
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
									 "            WHERE class OPERATOR(pg_catalog.=) $1) "
									 "DELETE FROM durable._classes WHERE name OPERATOR(pg_catalog.=) $1",
									 1, types),
					  values, NULL, false, SPI_OK_DELETE);
	DurableSpiEnd(&spi);
	DurableClassesChanged();
	PG_RETURN_VOID();
}
