/*-------------------------------------------------------------------------
 *
 * storage.c
 *	  The storage functions of an object: get, put, delete, list, delete_all.
 *
 * Called from handlers while a host runs a call (invoke.c sets the current
 * object); anywhere else they raise ERROR 55000.  get, put and delete go
 * through the host's storage cache (storage_cache.c), which answers reads
 * of known keys from memory and writes changes at commit; list, get of
 * several keys and delete_all read durable._storage itself after the cache
 * wrote what it holds.  Statements use prepared plans kept for the life of
 * the host, run as the owner of the table, inside the call's
 * subtransaction: a failing call's writes vanish with it (the cache undoes
 * its changes with the subtransaction).  The objects of a class that keeps
 * a history write through history.c instead, which records each change.  Keys and values are always
 * parameters, never SQL text.
 *
 * IDENTIFICATION
 *	  src/host/storage.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/objects.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(durable_get);
PG_FUNCTION_INFO_V1(durable_get_many);
PG_FUNCTION_INFO_V1(durable_put);
PG_FUNCTION_INFO_V1(durable_put_many);
PG_FUNCTION_INFO_V1(durable_delete);
PG_FUNCTION_INFO_V1(durable_delete_many);
PG_FUNCTION_INFO_V1(durable_list);
PG_FUNCTION_INFO_V1(durable_delete_all);

enum
{
	PLAN_GET,
	PLAN_GET_MANY,
	PLAN_PUT,
	PLAN_LIST,
	PLAN_LIST_REVERSE,
	PLAN_DELETE_ALL,
	PLAN_COUNT
};

#define LIST_SQL(order) \
	"SELECT s.key, s.value FROM durable._storage s " \
	" WHERE s.class OPERATOR(pg_catalog.=) $1 AND s.id OPERATOR(pg_catalog.=) $2 " \
	"   AND ($3::pg_catalog.text IS NULL OR s.key OPERATOR(pg_catalog.>=) $3) " \
	"   AND ($4::pg_catalog.text IS NULL OR s.key OPERATOR(pg_catalog.<) $4) " \
	"   AND ($5::pg_catalog.text IS NULL OR pg_catalog.starts_with(s.key, $5)) " \
	" ORDER BY s.key " order " LIMIT $6"

#define OBJECT_SQL \
	" WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "

/* the statements; $1 = class and $2 = id in all of them */
static const DurableStatement statements[PLAN_COUNT] =
{
	[PLAN_GET] = {
		"SELECT value FROM durable._storage" OBJECT_SQL
		"AND key OPERATOR(pg_catalog.=) $3",
		3, {TEXTOID, TEXTOID, TEXTOID}
	},
	[PLAN_GET_MANY] = {
		"SELECT coalesce(pg_catalog.jsonb_object_agg(key, value), '{}') "
		"  FROM durable._storage" OBJECT_SQL
		"AND key OPERATOR(pg_catalog.=) ANY ($3)",
		3, {TEXTOID, TEXTOID, TEXTARRAYOID}
	},
	[PLAN_PUT] = {
		"INSERT INTO durable._storage (class, id, key, value) VALUES ($1, $2, $3, $4) "
		"ON CONFLICT (class, id, key) DO UPDATE SET value = EXCLUDED.value",
		4, {TEXTOID, TEXTOID, TEXTOID, JSONBOID}
	},
	[PLAN_LIST] = {
		LIST_SQL("ASC"), 6, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID}
	},
	[PLAN_LIST_REVERSE] = {
		LIST_SQL("DESC"), 6, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID}
	},
	[PLAN_DELETE_ALL] = {
		"DELETE FROM durable._storage" OBJECT_SQL,
		2, {TEXTOID, TEXTOID}
	},
};

static SPIPlanPtr plans[PLAN_COUNT];

/*
 * run_statement_snapshot
 *		Execute statement which for object (class_name, id) with extra
 *		parameters (from $3 on); read_only: in the snapshot of the calling
 *		statement, else in a new one.  Leaves SPI connected; the caller ends
 *		with DurableSpiEnd after copying what it needs.
 */
static void
run_statement_snapshot(int which, const char *class_name, const char *id, DurableSpiState *spi,
					   Datum *extra, const char *extra_nulls, int expected, bool read_only)
{
	Datum		values[6];
	char		nulls[6];
	int			nargs = statements[which].nargs;
	int			i;

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	nulls[0] = nulls[1] = ' ';
	for (i = 2; i < nargs; i++)
	{
		values[i] = extra[i - 2];
		nulls[i] = extra_nulls ? extra_nulls[i - 2] : ' ';
	}
	DurableSpiBegin(spi);
	DurableSpiExecute(DurableSpiPlan(&plans[which], statements[which].sql,
									 statements[which].nargs,
									 (Oid *) statements[which].argtypes),
					  values, nulls, read_only, expected);
}

/* run_statement_snapshot, reads in the snapshot of the calling statement */
static void
run_statement(int which, const char *class_name, const char *id, DurableSpiState *spi,
			  Datum *extra, const char *extra_nulls, int expected)
{
	run_statement_snapshot(which, class_name, id, spi, extra, extra_nulls, expected,
						   expected == SPI_OK_SELECT);
}

/*
 * run_on_table
 *		run_statement for the current object, for a statement that reads or
 *		writes the table as a whole: the changes the cache holds are written
 *		first, and then seen (a new snapshot) by the statement.
 */
static void
run_on_table(int which, const char *function, DurableSpiState *spi,
			 Datum *extra, const char *extra_nulls, int expected)
{
	const char *class_name;
	const char *id;

	DurableCurrentObject(function, &class_name, &id);
	if (DurableCacheFlush())
		run_statement_snapshot(which, class_name, id, spi, extra, extra_nulls, expected, false);
	else
		run_statement(which, class_name, id, spi, extra, extra_nulls, expected);
}

static void
check_key_length(size_t len)
{
	if (len < 1 || len > DURABLE_MAX_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("storage key must have 1 to %d bytes, not %zu",
						DURABLE_MAX_KEY_BYTES, len)));
}

static Datum
key_arg(FunctionCallInfo fcinfo, int argno)
{
	text	   *key;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("storage key must not be null")));
	key = PG_GETARG_TEXT_PP(argno);
	check_key_length(VARSIZE_ANY_EXHDR(key));
	return PointerGetDatum(key);
}

static Datum
keys_arg(FunctionCallInfo fcinfo, int argno)
{
	ArrayType  *keys;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("storage keys must not be null")));
	keys = PG_GETARG_ARRAYTYPE_P(argno);
	deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("storage keys must not contain null")));
		check_key_length(VARSIZE_ANY_EXHDR(DatumGetPointer(elems[i])));
	}
	return PointerGetDatum(keys);
}

/* the first column of the first row, copied out of SPI, or NULL */
static Datum
first_value(bool *isnull)
{
	Datum		d;

	*isnull = true;
	if (SPI_processed == 0)
		return (Datum) 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
	return *isnull ? (Datum) 0 : SPI_datumTransfer(d, false, -1);
}

/* durable.get(key text) RETURNS jsonb */
Datum
durable_get(PG_FUNCTION_ARGS)
{
	DurableSpiState spi;
	const char *class_name;
	const char *id;
	Datum		extra[1];
	Datum		result;
	bool		isnull;
	Jsonb	   *cached;

	extra[0] = key_arg(fcinfo, 0);
	DurableCurrentObject("durable.get()", &class_name, &id);
	if (DurableCacheGet(class_name, id, DatumGetTextPP(extra[0]), &cached))
	{
		if (cached == NULL)
			PG_RETURN_NULL();
		PG_RETURN_JSONB_P(cached);
	}
	run_statement(PLAN_GET, class_name, id, &spi, extra, NULL, SPI_OK_SELECT);
	result = first_value(&isnull);
	DurableSpiEnd(&spi);
	DurableCacheFill(class_name, id, DatumGetTextPP(extra[0]),
					 isnull ? NULL : DatumGetJsonbP(result));
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/* durable.get(keys text[]) RETURNS jsonb */
Datum
durable_get_many(PG_FUNCTION_ARGS)
{
	DurableSpiState spi;
	Datum		extra[1];
	Datum		result;
	bool		isnull;

	extra[0] = keys_arg(fcinfo, 0);
	run_on_table(PLAN_GET_MANY, "durable.get()", &spi, extra, NULL, SPI_OK_SELECT);
	result = first_value(&isnull);
	DurableSpiEnd(&spi);
	PG_RETURN_DATUM(result);
}

static void
check_value(Jsonb *value)
{
	DurableCheckMessageSize(VARSIZE(value), "storage value");
}

/* write value under key of the current object: held by the cache or written through */
static void
put_one(const char *class_name, const char *id, text *key, Jsonb *value)
{
	DurableSpiState spi;
	Datum		extra[2];

	if (DurableCachePut(class_name, id, key, value))
		return;
	if (DurableHistoryKept(class_name))
		DurableHistoryPut(class_name, id, key, value);
	else
	{
		extra[0] = PointerGetDatum(key);
		extra[1] = JsonbPGetDatum(value);
		run_statement(PLAN_PUT, class_name, id, &spi, extra, NULL, SPI_OK_INSERT);
		DurableSpiEnd(&spi);
	}
	DurableCacheForget(class_name, id, key);
}

/* delete key of the current object; whether it existed */
static bool
delete_one(const char *class_name, const char *id, text *key)
{
	int			known = DurableCacheDelete(class_name, id, key);
	bool		existed;

	if (known >= 0)
		return known > 0;
	existed = DurableStorageDeleteKey(class_name, id, key, DurableCurrentMethod());
	DurableCacheFill(class_name, id, key, NULL);
	return existed;
}

/* durable.put(key text, value jsonb) RETURNS void */
Datum
durable_put(PG_FUNCTION_ARGS)
{
	const char *class_name;
	const char *id;
	text	   *key = DatumGetTextPP(key_arg(fcinfo, 0));
	Jsonb	   *value;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("storage value must not be null"),
				 errhint("Use durable.delete() to remove a key; JSON null ('null'::jsonb) is a value.")));
	value = PG_GETARG_JSONB_P(1);
	check_value(value);
	DurableCurrentObject("durable.put()", &class_name, &id);
	put_one(class_name, id, key, value);
	PG_RETURN_VOID();
}

/* durable.put(entries jsonb) RETURNS void */
Datum
durable_put_many(PG_FUNCTION_ARGS)
{
	const char *class_name;
	const char *id;
	Jsonb	   *entries;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			level = 0;
	text	   *key = NULL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("storage entries must not be null")));
	entries = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_OBJECT(entries))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("storage entries must be a JSON object")));
	DurableCurrentObject("durable.put()", &class_name, &id);

	/*
	 * Check and write each top-level entry (an object has each key once).  A
	 * bad one raises an error after some were written: the call's (or the
	 * handler's EXCEPTION block's) subtransaction then takes them all back.
	 */
	it = JsonbIteratorInit(&entries->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			level++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			level--;
		else if (tok == WJB_KEY && level == 1)
		{
			check_key_length(v.val.string.len);
			key = cstring_to_text_with_len(v.val.string.val, v.val.string.len);
		}
		else if (tok == WJB_VALUE && level == 1)
		{
			Jsonb	   *value = JsonbValueToJsonb(&v);

			check_value(value);
			put_one(class_name, id, key, value);
		}
	}
	PG_RETURN_VOID();
}

/* durable.delete(key text) RETURNS boolean */
Datum
durable_delete(PG_FUNCTION_ARGS)
{
	const char *class_name;
	const char *id;
	text	   *key = DatumGetTextPP(key_arg(fcinfo, 0));

	DurableCurrentObject("durable.delete()", &class_name, &id);
	PG_RETURN_BOOL(delete_one(class_name, id, key));
}

/* durable.delete(keys text[]) RETURNS integer */
Datum
durable_delete_many(PG_FUNCTION_ARGS)
{
	const char *class_name;
	const char *id;
	ArrayType  *keys = DatumGetArrayTypeP(keys_arg(fcinfo, 0));
	Datum	   *elems;
	int			n;
	int			i;
	int32		count = 0;

	DurableCurrentObject("durable.delete()", &class_name, &id);
	deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
	/* a key named twice counts once: the second time it is gone */
	for (i = 0; i < n; i++)
		if (delete_one(class_name, id, DatumGetTextPP(elems[i])))
			count++;
	PG_RETURN_INT32(count);
}

/*
 * durable.list(prefix, start_key, end_key, max_keys, reverse)
 *		RETURNS TABLE (key text, value jsonb)
 */
Datum
durable_list(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DurableSpiState spi;
	Datum		extra[4];
	char		nulls[4];
	bool		reverse = !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
	int			i;
	uint64		row;

	/* parameters $3.. are start_key, end_key, prefix, max_keys */
	for (i = 0; i < 3; i++)
	{
		int			argno = (i + 1) % 3;

		nulls[i] = PG_ARGISNULL(argno) ? 'n' : ' ';
		extra[i] = PG_ARGISNULL(argno) ? (Datum) 0 : PG_GETARG_DATUM(argno);
	}
	/* a prefix is also a lower bound, so the index can skip to it */
	if (!PG_ARGISNULL(0) &&
		(PG_ARGISNULL(1) ||
		 DatumGetInt32(DirectFunctionCall2Coll(bttextcmp, C_COLLATION_OID,
											   PG_GETARG_DATUM(1), PG_GETARG_DATUM(0))) < 0))
	{
		nulls[0] = ' ';
		extra[0] = PG_GETARG_DATUM(0);
	}
	if (!PG_ARGISNULL(3) && PG_GETARG_INT32(3) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_keys must not be negative")));
	nulls[3] = PG_ARGISNULL(3) ? 'n' : ' ';
	extra[3] = PG_ARGISNULL(3) ? (Datum) 0 : Int64GetDatum(PG_GETARG_INT32(3));

	InitMaterializedSRF(fcinfo, 0);
	run_on_table(reverse ? PLAN_LIST_REVERSE : PLAN_LIST, "durable.list()", &spi,
				  extra, nulls, SPI_OK_SELECT);
	for (row = 0; row < SPI_processed; row++)
	{
		Datum		values[2];
		bool		isnull[2];

		values[0] = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull[0]);
		values[1] = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 2, &isnull[1]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
	}
	DurableSpiEnd(&spi);
	return (Datum) 0;
}

/* durable.delete_all() RETURNS void */
Datum
durable_delete_all(PG_FUNCTION_ARGS)
{
	DurableSpiState spi;
	const char *class_name;
	const char *id;

	DurableCurrentObject("durable.delete_all()", &class_name, &id);
	if (DurableHistoryKept(class_name))
	{
		(void) DurableCacheFlush();
		DurableHistoryDeleteAll(class_name, id);
	}
	else
	{
		run_on_table(PLAN_DELETE_ALL, "durable.delete_all()", &spi, NULL, NULL, SPI_OK_DELETE);
		DurableSpiEnd(&spi);
	}
	DurableCacheForgetObject(class_name, id);
	PG_RETURN_VOID();
}
