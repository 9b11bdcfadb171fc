/*-------------------------------------------------------------------------
 *
 * storage.c
 *	  The storage functions of an object: get, put, delete, list, delete_all.
 *
 * Called from handlers while a host runs a call (invoke.c sets the current
 * object); anywhere else they raise ERROR 55000.  They read and write
 * durable._storage through prepared plans kept for the life of the host,
 * as the owner of the table, inside the call's subtransaction: a failing
 * call's writes vanish with it.  Keys and values are always parameters,
 * never SQL text.
 *
 * IDENTIFICATION
 *	  src/storage.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"

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
	PLAN_PUT_MANY,
	PLAN_DELETE,
	PLAN_DELETE_MANY,
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
	[PLAN_PUT_MANY] = {
		"INSERT INTO durable._storage (class, id, key, value) "
		"SELECT $1, $2, e.key, e.value FROM pg_catalog.jsonb_each($3) e "
		"ON CONFLICT (class, id, key) DO UPDATE SET value = EXCLUDED.value",
		3, {TEXTOID, TEXTOID, JSONBOID}
	},
	[PLAN_DELETE] = {
		"DELETE FROM durable._storage" OBJECT_SQL "AND key OPERATOR(pg_catalog.=) $3",
		3, {TEXTOID, TEXTOID, TEXTOID}
	},
	[PLAN_DELETE_MANY] = {
		"DELETE FROM durable._storage" OBJECT_SQL "AND key OPERATOR(pg_catalog.=) ANY ($3)",
		3, {TEXTOID, TEXTOID, TEXTARRAYOID}
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
 * run_statement
 *		Execute statement which for the current object with extra parameters
 *		(from $3 on).  Leaves SPI connected; the caller ends with
 *		DurableSpiEnd after copying what it needs.
 */
static void
run_statement(int which, const char *function, DurableSpiState *spi,
			  Datum *extra, const char *extra_nulls, int expected)
{
	const char *class_name;
	const char *id;
	Datum		values[6];
	char		nulls[6];
	int			nargs = statements[which].nargs;
	int			i;

	DurableCurrentObject(function, &class_name, &id);
	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	nulls[0] = nulls[1] = ' ';
	for (i = 2; i < nargs; i++)
	{
		values[i] = extra[i - 2];
		nulls[i] = extra_nulls ? extra_nulls[i - 2] : ' ';
	}
	DurableSpiBegin(spi);
	DurableSpiRun(&statements[which], &plans[which], values, nulls, expected);
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
	Datum		extra[1];
	Datum		result;
	bool		isnull;

	extra[0] = key_arg(fcinfo, 0);
	run_statement(PLAN_GET, "durable.get()", &spi, extra, NULL, SPI_OK_SELECT);
	result = first_value(&isnull);
	DurableSpiEnd(&spi);
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
	run_statement(PLAN_GET_MANY, "durable.get()", &spi, extra, NULL, SPI_OK_SELECT);
	result = first_value(&isnull);
	DurableSpiEnd(&spi);
	PG_RETURN_DATUM(result);
}

static void
check_value(Jsonb *value)
{
	DurableCheckMessageSize(VARSIZE(value), "storage value");
}

/* durable.put(key text, value jsonb) RETURNS void */
Datum
durable_put(PG_FUNCTION_ARGS)
{
	DurableSpiState spi;
	Datum		extra[2];

	extra[0] = key_arg(fcinfo, 0);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("storage value must not be null"),
				 errhint("Use durable.delete() to remove a key; JSON null ('null'::jsonb) is a value.")));
	check_value(PG_GETARG_JSONB_P(1));
	extra[1] = PointerGetDatum(PG_GETARG_JSONB_P(1));
	run_statement(PLAN_PUT, "durable.put()", &spi, extra, NULL, SPI_OK_INSERT);
	DurableSpiEnd(&spi);
	PG_RETURN_VOID();
}

/* durable.put(entries jsonb) RETURNS void */
Datum
durable_put_many(PG_FUNCTION_ARGS)
{
	DurableSpiState spi;
	Datum		extra[1];
	Jsonb	   *entries;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			level = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("storage entries must not be null")));
	entries = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_OBJECT(entries))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("storage entries must be a JSON object")));

	/* check every top-level key and value before writing any */
	it = JsonbIteratorInit(&entries->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			level++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			level--;
		else if (tok == WJB_KEY && level == 1)
			check_key_length(v.val.string.len);
		else if (tok == WJB_VALUE && level == 1)
			DurableCheckMessageSize(v.type == jbvBinary ? v.val.binary.len :
									v.type == jbvString ? v.val.string.len :
									v.type == jbvNumeric ? VARSIZE(v.val.numeric) : 0,
									"storage value");
	}

	extra[0] = PointerGetDatum(entries);
	run_statement(PLAN_PUT_MANY, "durable.put()", &spi, extra, NULL, SPI_OK_INSERT);
	DurableSpiEnd(&spi);
	PG_RETURN_VOID();
}

/* durable.delete(key text) RETURNS boolean */
Datum
durable_delete(PG_FUNCTION_ARGS)
{
	DurableSpiState spi;
	Datum		extra[1];
	bool		existed;

	extra[0] = key_arg(fcinfo, 0);
	run_statement(PLAN_DELETE, "durable.delete()", &spi, extra, NULL, SPI_OK_DELETE);
	existed = SPI_processed > 0;
	DurableSpiEnd(&spi);
	PG_RETURN_BOOL(existed);
}

/* durable.delete(keys text[]) RETURNS integer */
Datum
durable_delete_many(PG_FUNCTION_ARGS)
{
	DurableSpiState spi;
	Datum		extra[1];
	int32		count;

	extra[0] = keys_arg(fcinfo, 0);
	run_statement(PLAN_DELETE_MANY, "durable.delete()", &spi, extra, NULL, SPI_OK_DELETE);
	count = (int32) SPI_processed;
	DurableSpiEnd(&spi);
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
	run_statement(reverse ? PLAN_LIST_REVERSE : PLAN_LIST, "durable.list()", &spi,
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

	run_statement(PLAN_DELETE_ALL, "durable.delete_all()", &spi, NULL, NULL, SPI_OK_DELETE);
	DurableSpiEnd(&spi);
	PG_RETURN_VOID();
}
