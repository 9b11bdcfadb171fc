/*-------------------------------------------------------------------------
 *
 * restore.c
 *	  durable.restore(), as the object's host runs it: a call of the object
 *	  that puts its storage back as it was at a time of its history.
 *
 * sql/history.c checks who asks and sends the object a request for method
 * $restore with args {"at": microseconds since 2000-01-01}; only a ring
 * request of kind DURABLE_REQUEST_CALL gets here (invoke.c), which nothing
 * but that function can send with a "$" method (durable.call, durable.send
 * and the gateway refuse them).  So the restore is one call of the object,
 * in its lane: no other call of it runs meanwhile (G1), it runs in the
 * call's subtransaction (all keys or none), its reply comes after the
 * batch committed, always synchronously (durable before it returns), and
 * no handler runs, so nothing is sent to sockets.
 *
 * How: the value of a key at time T is the old value of its first change
 * after T, or, if it did not change since, its value now.  So only keys
 * changed after T are written: put back to that old value, or deleted if
 * it was absent (keys created after T go).  Each write is itself a change
 * with a history row (method $restore), so a restore can be undone by
 * restoring to a moment before it.  The object's state version goes back
 * the same way (versions.c), so an object put back before a migration runs
 * $migrate again at its next call.  The storage cache writes what it holds
 * first and forgets the object after.
 *
 * IDENTIFICATION
 *	  src/host/restore.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

enum
{
	PLAN_KEYS,
	PLAN_VERSION,
	PLAN_COUNT
};

static const DurableStatement statements[PLAN_COUNT] =
{
	/* class, id, T, now: the keys changed since T back to their value at T */
	[PLAN_KEYS] = {
		"WITH t AS (SELECT DISTINCT ON (h.key) h.key, h.old FROM durable._history h "
		"            WHERE h.class OPERATOR(pg_catalog.=) $1 AND h.id OPERATOR(pg_catalog.=) $2 "
		"              AND h.at OPERATOR(pg_catalog.>) $3 AND h.key IS NOT NULL "
		"            ORDER BY h.key, h.seq), "
		"     x AS (SELECT t.key, t.old, s.value AS cur FROM t "
		"             LEFT JOIN durable._storage s ON s.class OPERATOR(pg_catalog.=) $1 "
		"              AND s.id OPERATOR(pg_catalog.=) $2 AND s.key OPERATOR(pg_catalog.=) t.key "
		"            WHERE t.old IS DISTINCT FROM s.value), "
		"     d AS (DELETE FROM durable._storage s USING x "
		"            WHERE s.class OPERATOR(pg_catalog.=) $1 AND s.id OPERATOR(pg_catalog.=) $2 "
		"              AND s.key OPERATOR(pg_catalog.=) x.key AND x.old IS NULL), "
		"     u AS (INSERT INTO durable._storage (class, id, key, value) "
		"           SELECT $1, $2, x.key, x.old FROM x WHERE x.old IS NOT NULL "
		"           ON CONFLICT (class, id, key) DO UPDATE SET value = EXCLUDED.value) "
		"INSERT INTO durable._history (class, id, key, old, new, at, method) "
		"SELECT $1, $2, x.key, x.cur, x.old, $4, '$restore' FROM x",
		4, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
	},
	/* class, id, T: the object's version at T, if it changed since */
	[PLAN_VERSION] = {
		"SELECT h.old::pg_catalog.int4 FROM durable._history h "
		" WHERE h.class OPERATOR(pg_catalog.=) $1 AND h.id OPERATOR(pg_catalog.=) $2 "
		"   AND h.at OPERATOR(pg_catalog.>) $3 AND h.key IS NULL "
		" ORDER BY h.seq LIMIT 1",
		3, {TEXTOID, TEXTOID, TIMESTAMPTZOID}
	},
};

static SPIPlanPtr plans[PLAN_COUNT];

/* "at" of a $restore request's args */
static TimestampTz
restore_time(Jsonb *args)
{
	JsonbValue *v = args ? getKeyJsonValueFromContainer(&args->root, "at", 2, NULL) : NULL;

	if (v == NULL || v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a $restore request needs \"at\"")));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
}

/*
 * DurableRestoreRun
 *		The $restore call of object (cls, id), key object: put its storage
 *		and version back as they were at args' "at".  Returns the result,
 *		how many keys changed (a jsonb number).  In the call's
 *		subtransaction, with a snapshot.
 */
Datum
DurableRestoreRun(const DurableClass *cls, const char *id, uint64 object, Jsonb *args)
{
	TimestampTz at = restore_time(args);
	DurableSpiState spi;
	Datum		values[4];
	uint64		changed;
	bool		has_change;
	bool		isnull = true;
	int32		version = 0;

	DurableHistoryCheckAt(cls, at);
	/* the writes of earlier calls of the batch are part of the history too */
	(void) DurableCacheFlush();
	values[0] = CStringGetTextDatum(cls->name);
	values[1] = CStringGetTextDatum(id);
	values[2] = TimestampTzGetDatum(at);
	values[3] = TimestampTzGetDatum(GetCurrentTimestamp());
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_KEYS], &plans[PLAN_KEYS], values, NULL, SPI_OK_INSERT);
	changed = SPI_processed;
	DurableSpiRun(&statements[PLAN_VERSION], &plans[PLAN_VERSION], values, NULL, SPI_OK_SELECT);
	has_change = SPI_processed == 1;
	if (has_change)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		version = isnull ? 0 : DatumGetInt32(d);
	}
	DurableSpiEnd(&spi);
	if (has_change)
		DurableVersionRestore(cls, id, object, !isnull, version);
	DurableCacheForgetObject(cls->name, id);
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(psprintf(UINT64_FORMAT, changed)));
}
