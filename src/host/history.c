/*-------------------------------------------------------------------------
 *
 * history.c
 *	  The history of the storage of objects whose class keeps one (class
 *	  option history): written with each change, pruned in the background.
 *
 * A class with the option history has every change of its objects'
 * storage kept in durable._history: the key, its value before and after
 * (NULL: absent), when, and the method of the call that made it.  The
 * host's storage statements take another form for such classes (the cache
 * asks DurableHistoryKept): the write and its history rows are one
 * statement, the old value read in the same snapshot as the write, in the
 * transaction of the change, so a call that rolls back leaves no history
 * and a committed change always has its row.  A class without history runs
 * the statements it ran before; what it pays is a lookup in the class cache
 * per statement (per class, at a batch's flush).  Rows with key NULL record
 * the object's state version (versions.c), so a restore can put it back.
 *
 * The cache writes the keys a batch changed once, at its commit: a key
 * changed by several calls of one batch gets one row, attributed to the
 * last of them (no other transaction could see the values in between).
 * A value written through at once (over 8 kB, a key the cache did not
 * know, delete_all) gets its row at once.
 *
 * Pruning: each home host of an owner deletes, every PRUNE_INTERVAL_MS, up
 * to PRUNE_ROWS rows of its owner's classes that are older than their
 * class's history (all rows of classes whose history was turned off), in a
 * short transaction of its own, and sooner again while it finds that many.
 * Rows another host is deleting are skipped (SKIP LOCKED), so two homes
 * never wait for each other; any one of them running is enough.
 *
 * IDENTIFICATION
 *	  src/host/history.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#define PRUNE_ROWS 1000			/* rows deleted at most per step */
#define PRUNE_INTERVAL_MS 10000 /* between steps */
#define PRUNE_AGAIN_MS 200		/* between steps while there is more */

enum
{
	PLAN_UPSERT,
	PLAN_DELETE,
	PLAN_DELETE_ALL,
	PLAN_VERSION,
	PLAN_PRUNE,
	PLAN_HORIZON,
	PLAN_COUNT
};

#define HISTORY_INSERT \
	"INSERT INTO durable._history (class, id, key, old, new, at, method) "

static const DurableStatement statements[PLAN_COUNT] =
{
	/* class, id, key, value, method arrays; the time */
	[PLAN_UPSERT] = {
		"WITH n AS (SELECT u.class COLLATE \"C\" AS class, u.id COLLATE \"C\" AS id, "
		"                  u.key COLLATE \"C\" AS key, u.value, u.method "
		"             FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
		"                             pg_catalog.unnest($3), pg_catalog.unnest($4), "
		"                             pg_catalog.unnest($5)) AS u(class, id, key, value, method)), "
		"     o AS (SELECT s.class, s.id, s.key, s.value FROM durable._storage s, n "
		"            WHERE s.class OPERATOR(pg_catalog.=) n.class "
		"              AND s.id OPERATOR(pg_catalog.=) n.id AND s.key OPERATOR(pg_catalog.=) n.key), "
		"     w AS (INSERT INTO durable._storage (class, id, key, value) "
		"           SELECT n.class, n.id, n.key, n.value FROM n "
		"           ON CONFLICT (class, id, key) DO UPDATE SET value = EXCLUDED.value) "
		HISTORY_INSERT
		"SELECT n.class, n.id, n.key, o.value, n.value, $6, n.method "
		"  FROM n LEFT JOIN o ON o.class OPERATOR(pg_catalog.=) n.class "
		"   AND o.id OPERATOR(pg_catalog.=) n.id AND o.key OPERATOR(pg_catalog.=) n.key "
		" WHERE o.value IS DISTINCT FROM n.value",
		6, {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID}
	},
	/* class, id, key, time, method */
	[PLAN_DELETE] = {
		"WITH d AS (DELETE FROM durable._storage "
		"            WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "
		"              AND key OPERATOR(pg_catalog.=) $3 "
		"           RETURNING class, id, key, value) "
		HISTORY_INSERT
		"SELECT d.class, d.id, d.key, d.value, NULL, $4, $5 FROM d",
		5, {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID}
	},
	/* class, id, time, method */
	[PLAN_DELETE_ALL] = {
		"WITH d AS (DELETE FROM durable._storage "
		"            WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "
		"           RETURNING class, id, key, value) "
		HISTORY_INSERT
		"SELECT d.class, d.id, d.key, d.value, NULL, $3, $4 FROM d",
		4, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID}
	},
	/* class, id, the new version (NULL: no row), time, method; before the row changes */
	[PLAN_VERSION] = {
		"WITH o AS (SELECT pg_catalog.to_jsonb(v.version) AS old FROM durable._versions v "
		"            WHERE v.class OPERATOR(pg_catalog.=) $1 AND v.id OPERATOR(pg_catalog.=) $2) "
		HISTORY_INSERT
		"SELECT $1, $2, NULL, o.old, pg_catalog.to_jsonb($3), $4, $5 "
		"  FROM (SELECT) x LEFT JOIN o ON true "
		" WHERE o.old IS DISTINCT FROM pg_catalog.to_jsonb($3)",
		5, {TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID}
	},
	/* the owner */
	[PLAN_PRUNE] = {
		"WITH c AS (SELECT c.name, "
		"                  CASE WHEN c.options OPERATOR(pg_catalog.?) 'history' "
		"                       THEN pg_catalog.now() OPERATOR(pg_catalog.-) "
		"                            (c.options OPERATOR(pg_catalog.->>) 'history')::pg_catalog.interval "
		"                       ELSE 'infinity'::pg_catalog.timestamptz END AS cutoff "
		"             FROM durable._classes c "
		"            WHERE c.owner OPERATOR(pg_catalog.=) $1::pg_catalog.regrole), "
		"     p AS (SELECT h.t FROM c, LATERAL "
		"             (SELECT h.ctid AS t FROM durable._history h "
		"               WHERE h.class OPERATOR(pg_catalog.=) c.name "
		"                 AND h.at OPERATOR(pg_catalog.<) c.cutoff "
		"               LIMIT " CppAsString2(PRUNE_ROWS) " FOR UPDATE SKIP LOCKED) h "
		"            LIMIT " CppAsString2(PRUNE_ROWS) ") "
		"DELETE FROM durable._history "
		" WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT p.t FROM p))",
		1, {OIDOID}
	},
	/* class: how far back its history is complete */
	[PLAN_HORIZON] = {
		"SELECT GREATEST(c.history_since, pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) "
		"                           (c.options OPERATOR(pg_catalog.->>) 'history')::pg_catalog.interval), "
		"       c.options OPERATOR(pg_catalog.->>) 'history' "
		"  FROM durable._classes c WHERE c.name OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	},
};

static SPIPlanPtr plans[PLAN_COUNT];
static TimestampTz next_prune = 0;

/*
 * DurableHistoryKept
 *		Whether the objects of class_name keep a history of their storage.
 */
bool
DurableHistoryKept(const char *class_name)
{
	DurableClass cls;

	return DurableClassLookup(class_name, &cls, true) && cls.history;
}

/*
 * DurableHistoryCheckAt
 *		ERROR unless the history of class cls reaches back to time at: 55000
 *		if it keeps none, 22023 if at is before the oldest moment it can
 *		show (the time history was turned on, or the interval ago; read
 *		with the clock, so rows a prune deleted are never needed).
 */
void
DurableHistoryCheckAt(const DurableClass *cls, TimestampTz at)
{
	DurableSpiState spi;
	Datum		values[1];
	TimestampTz horizon = DT_NOBEGIN;
	char	   *span = NULL;
	bool		isnull = true;

	if (!cls->history)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("durable class \"%s\" keeps no history", cls->name),
				 errhint("Define the class with the option history, such as '{\"history\": \"7 days\"}'.")));
	values[0] = CStringGetTextDatum(cls->name);
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_HORIZON], &plans[PLAN_HORIZON], values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			horizon = DatumGetTimestampTz(d);
		span = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		span = span ? pstrdup(span) : NULL;
	}
	DurableSpiEnd(&spi);
	if (span == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("durable class \"%s\" keeps no history", cls->name)));
	if (at < horizon)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the history of durable class \"%s\" reaches back to %s, not to %s",
						cls->name, timestamptz_to_str(horizon), timestamptz_to_str(at)),
				 errdetail("The class keeps changes for %s; the oldest moment it can show is %s.",
						   span, timestamptz_to_str(horizon))));
}

/* run statement which, expecting SPI result code expected; how many rows it did */
static uint64
run(int which, Datum *values, const char *nulls, int expected)
{
	DurableSpiState spi;
	uint64		n;

	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[which], &plans[which], values, nulls, expected);
	n = SPI_processed;
	DurableSpiEnd(&spi);
	return n;
}

/* the method a change is recorded with: the running call's */
static Datum
method_datum(const char *method)
{
	return CStringGetTextDatum(method ? method : "?");
}

/*
 * DurableHistoryUpsert
 *		Write n values (arrays of class, id, key, value, method, in
 *		columns[0..4]) into durable._storage, and a history row for each
 *		that changed.
 */
void
DurableHistoryUpsert(Datum *columns[5], int n)
{
	static const Oid types[5] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID};
	Datum		values[6];
	int			i;

	for (i = 0; i < 5; i++)
		values[i] = PointerGetDatum(construct_array(columns[i], n, types[i], -1, false,
													TYPALIGN_INT));
	values[5] = TimestampTzGetDatum(GetCurrentTimestamp());
	(void) run(PLAN_UPSERT, values, NULL, SPI_OK_INSERT);
}

/*
 * DurableHistoryPut
 *		DurableHistoryUpsert of one value, by the running call.
 */
void
DurableHistoryPut(const char *class_name, const char *id, text *key, Jsonb *value)
{
	Datum		c[1] = {CStringGetTextDatum(class_name)};
	Datum		i[1] = {CStringGetTextDatum(id)};
	Datum		k[1] = {PointerGetDatum(key)};
	Datum		v[1] = {JsonbPGetDatum(value)};
	Datum		m[1] = {method_datum(DurableCurrentMethod())};
	Datum	   *columns[5] = {c, i, k, v, m};

	DurableHistoryUpsert(columns, 1);
}

/*
 * DurableHistoryDelete
 *		Delete key of object (class_name, id), recording its old value as a
 *		change by method; whether it existed.
 */
bool
DurableHistoryDelete(const char *class_name, const char *id, text *key, const char *method)
{
	Datum		values[5];

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = PointerGetDatum(key);
	values[3] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[4] = method_datum(method);
	return run(PLAN_DELETE, values, NULL, SPI_OK_INSERT) > 0;
}

/*
 * DurableHistoryDeleteAll
 *		Delete every key of object (class_name, id) as the running call,
 *		recording each.  Reads in a new snapshot (after held writes).
 */
void
DurableHistoryDeleteAll(const char *class_name, const char *id)
{
	Datum		values[4];

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[3] = method_datum(DurableCurrentMethod());
	(void) run(PLAN_DELETE_ALL, values, NULL, SPI_OK_INSERT);
}

/*
 * DurableHistoryVersion
 *		The state version of object (class_name, id) is about to become
 *		version (has_version false: no row, see versions.c): record the
 *		change, made by method.
 */
void
DurableHistoryVersion(const char *class_name, const char *id, bool has_version,
					  int32 version, const char *method)
{
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = Int32GetDatum(version);
	nulls[2] = has_version ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[4] = method_datum(method);
	(void) run(PLAN_VERSION, values, nulls, SPI_OK_INSERT);
}

/*
 * DurableHistoryPrune
 *		Between batches, on a home host: delete up to
 *		PRUNE_ROWS rows of history its owner's classes no longer keep, every
 *		PRUNE_INTERVAL_MS (every PRUNE_AGAIN_MS while there are more).  Runs
 *		its own transaction; must be called outside one.  An error (a lock
 *		someone holds) is logged and the next step tries again.
 */
static void
prune(void *arg)
{
	Datum		values[1] = {ObjectIdGetDatum(durable_host_owner)};

	/* an outdated or dropped extension (no history table to prune) is not present */
	if (DurableExtensionPresent())
		*(uint64 *) arg = run(PLAN_PRUNE, values, NULL, SPI_OK_DELETE);
}

void
DurableHistoryPrune(void)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		pruned = 0;

	if (durable_host_home < 0 || now < next_prune)
		return;
	DurableRunAlone("durable history prune", prune, &pruned);
	next_prune = now + (TimestampTz) (pruned >= PRUNE_ROWS ? PRUNE_AGAIN_MS : PRUNE_INTERVAL_MS) * 1000;
	pgstat_report_stat(false);
}
