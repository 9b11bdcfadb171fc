/*-------------------------------------------------------------------------
 *
 * history.c
 *	  durable.storage_at() and durable.restore(): an object's storage as it
 *	  was at a time, read, or put back.
 *
 * Both work for objects of classes with the option history (host/history.c
 * keeps their changes), for times within it, and only for the class owner
 * (a role with its privileges) or a superuser: the same rule as the view
 * durable.storage.  Whoever may call the objects may not read or rewind
 * their past.
 *
 * storage_at reads in the caller's snapshot: the storage as committed, with
 * every key changed after the time given its value before that change
 * (absent: not listed).  restore sends the object a $restore request
 * through the path of durable.call (host/restore.c does the rest, as one
 * call of the object) and returns how many keys it changed.  Neither can
 * be called from a handler: restore would make the host wait for its own
 * object, and a handler has its own storage to read.
 *
 * IDENTIFICATION
 *	  src/sql/history.c
 *
 *-------------------------------------------------------------------------
 */
#include "sql/sql.h"
#include "host/host.h"
#include "shared/objects.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(durable_storage_at);
PG_FUNCTION_INFO_V1(durable_restore);

static SPIPlanPtr at_plan = NULL;

/*
 * history_args
 *		Check the (class, id, at) arguments and who asks: fills *cls and
 *		returns at.  function names the caller, for the messages.
 */
static TimestampTz
history_args(FunctionCallInfo fcinfo, const char *function, DurableClass *cls, char **id)
{
	char	   *class_name;
	TimestampTz at;

	DurableCheckReady();
	if (DurableInHost())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s cannot be called inside an object handler", function)));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("class, object id and time must not be null")));
	class_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	*id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	at = PG_GETARG_TIMESTAMPTZ(2);
	DurableCheckClassName(class_name);
	DurableCheckId(*id);
	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs a finite time", function)));
	DurableClassLookup(class_name, cls, false);
	DurableCheckClassOwner(class_name, cls->owner);
	DurableHistoryCheckAt(cls, at);
	return at;
}

/*
 * durable_storage_at
 *		durable.storage_at(class text, id text, at timestamptz)
 *		RETURNS TABLE (key text, value jsonb)
 */
Datum
durable_storage_at(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			types[3] = {TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	DurableClass cls;
	DurableSpiState spi;
	char	   *id;
	TimestampTz at = history_args(fcinfo, "durable.storage_at()", &cls, &id);
	uint64		row;

	InitMaterializedSRF(fcinfo, 0);
	values[0] = CStringGetTextDatum(cls.name);
	values[1] = CStringGetTextDatum(id);
	values[2] = TimestampTzGetDatum(at);
	DurableSpiBegin(&spi);
	/* a key's first change after at has its value at at; keys unchanged since are as now */
	DurableSpiExecute(DurableSpiPlan(&at_plan,
									 "SELECT k.key, k.value FROM ("
									 " SELECT s.key, s.value FROM durable._storage s "
									 "  WHERE s.class OPERATOR(pg_catalog.=) $1 AND s.id OPERATOR(pg_catalog.=) $2 "
									 "    AND NOT EXISTS (SELECT FROM durable._history h "
									 "                     WHERE h.class OPERATOR(pg_catalog.=) $1 "
									 "                       AND h.id OPERATOR(pg_catalog.=) $2 "
									 "                       AND h.at OPERATOR(pg_catalog.>) $3 "
									 "                       AND h.key OPERATOR(pg_catalog.=) s.key) "
									 " UNION ALL "
									 " SELECT t.key, t.old FROM "
									 "  (SELECT DISTINCT ON (h.key) h.key, h.old FROM durable._history h "
									 "    WHERE h.class OPERATOR(pg_catalog.=) $1 AND h.id OPERATOR(pg_catalog.=) $2 "
									 "      AND h.at OPERATOR(pg_catalog.>) $3 AND h.key IS NOT NULL "
									 "    ORDER BY h.key, h.seq) t "
									 "  WHERE t.old IS NOT NULL) k "
									 "ORDER BY k.key",
									 3, types),
					  values, NULL, true, SPI_OK_SELECT);
	for (row = 0; row < SPI_processed; row++)
	{
		Datum		out[2];
		bool		isnull[2];

		out[0] = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull[0]);
		out[1] = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 2, &isnull[1]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, isnull);
	}
	DurableSpiEnd(&spi);
	return (Datum) 0;
}

/*
 * durable_restore
 *		durable.restore(class text, id text, at timestamptz) RETURNS integer
 */
Datum
durable_restore(PG_FUNCTION_ARGS)
{
	DurableClass cls;
	char	   *id;
	TimestampTz at = history_args(fcinfo, "durable.restore()", &cls, &id);
	Jsonb	   *result;
	bool		isnull;
	char		args[64];

	DurableClassCheckRunnable(&cls);
	snprintf(args, sizeof(args), "{\"at\": " INT64_FORMAT "}", (int64) at);
	result = DurableCallFromSession(&cls, id, "$restore",
									DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																	   CStringGetDatum(args))),
									&isnull);
	if (isnull)
		PG_RETURN_INT32(0);
	PG_RETURN_INT32(DatumGetInt32(DirectFunctionCall1(numeric_int4,
													  DirectFunctionCall1(jsonb_numeric,
																		  JsonbPGetDatum(result)))));
}
