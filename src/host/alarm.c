/*-------------------------------------------------------------------------
 *
 * alarm.c
 *	  durable.set_alarm(), get_alarm(), delete_alarm(): an object's alarms.
 *
 * Called from handlers only (the current object is set by invoke.c).  An
 * alarm is a row of durable._alarms written in the call's subtransaction, so
 * setting one commits with the call.  The host that owns the object runs
 * "$alarm" when it falls due (work.c, host.c); setting or deleting an alarm
 * tells this host to look at its next wake-up time again after the batch.
 *
 * IDENTIFICATION
 *	  src/host/alarm.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/objects.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(durable_set_alarm);
PG_FUNCTION_INFO_V1(durable_get_alarm);
PG_FUNCTION_INFO_V1(durable_delete_alarm);

static SPIPlanPtr set_plan = NULL;
static SPIPlanPtr get_plan = NULL;
static SPIPlanPtr delete_plan = NULL;

#define ALARM_OF_OBJECT \
	" WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 " \
	"   AND name OPERATOR(pg_catalog.=) $3"

/*
 * alarm_begin
 *		Common start of the alarm functions: the current object, the alarm
 *		name (NULL: 22004, empty: 22023), and SPI as the table owner.
 */
static void
alarm_begin(FunctionCallInfo fcinfo, int name_arg, const char *function,
			Datum *values, DurableSpiState *spi)
{
	const char *class_name;
	const char *id;
	text	   *name;

	DurableCurrentObject(function, &class_name, &id);
	if (PG_ARGISNULL(name_arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("alarm name must not be null")));
	name = PG_GETARG_TEXT_PP(name_arg);
	if (VARSIZE_ANY_EXHDR(name) < 1 || VARSIZE_ANY_EXHDR(name) > DURABLE_MAX_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alarm name must have 1 to %d bytes", DURABLE_MAX_KEY_BYTES)));
	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = PointerGetDatum(name);
	DurableSpiBegin(spi);
}

/*
 * durable_set_alarm
 *		durable.set_alarm(at timestamptz, name text) RETURNS void
 *		A time in the past fires as soon as the call commits.
 */
Datum
durable_set_alarm(PG_FUNCTION_ARGS)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID};
	Datum		values[5];
	DurableSpiState spi;
	TimestampTz at;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("alarm time must not be null"),
				 errhint("Use durable.delete_alarm() to cancel an alarm.")));
	at = PG_GETARG_TIMESTAMPTZ(0);
	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alarm time must be finite")));
	alarm_begin(fcinfo, 1, "durable.set_alarm()", values, &spi);
	values[3] = TimestampTzGetDatum(at);
	values[4] = Int64GetDatum((int64) DurableObjectShard(TextDatumGetCString(values[0]),
														 TextDatumGetCString(values[1])));
	DurableSpiExecute(DurableSpiPlan(&set_plan,
									 "INSERT INTO durable._alarms (class, id, name, at, scheduled_at, shard) "
									 "VALUES ($1, $2, $3, $4, $4, $5) "
									 "ON CONFLICT (class, id, name) DO UPDATE "
									 "   SET at = EXCLUDED.at, scheduled_at = EXCLUDED.at, "
									 "       attempt = 0, last_error = NULL",
									 5, types),
					  values, NULL, false, SPI_OK_INSERT);
	DurableSpiEnd(&spi);
	DurableWorkTouched();
	PG_RETURN_VOID();
}

/*
 * durable_get_alarm
 *		durable.get_alarm(name text) RETURNS timestamptz: when it fires next.
 */
Datum
durable_get_alarm(PG_FUNCTION_ARGS)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	DurableSpiState spi;
	bool		isnull = true;
	Datum		at = (Datum) 0;

	alarm_begin(fcinfo, 0, "durable.get_alarm()", values, &spi);
	DurableSpiExecute(DurableSpiPlan(&get_plan,
									 "SELECT at FROM durable._alarms" ALARM_OF_OBJECT,
									 3, types),
					  values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed > 0)
		at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	DurableSpiEnd(&spi);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(at);
}

/*
 * durable_delete_alarm
 *		durable.delete_alarm(name text) RETURNS boolean: true if it was set.
 */
Datum
durable_delete_alarm(PG_FUNCTION_ARGS)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	DurableSpiState spi;
	bool		existed;

	alarm_begin(fcinfo, 0, "durable.delete_alarm()", values, &spi);
	DurableSpiExecute(DurableSpiPlan(&delete_plan,
									 "DELETE FROM durable._alarms" ALARM_OF_OBJECT,
									 3, types),
					  values, NULL, false, SPI_OK_DELETE);
	existed = SPI_processed > 0;
	DurableSpiEnd(&spi);
	DurableWorkTouched();
	PG_RETURN_BOOL(existed);
}
