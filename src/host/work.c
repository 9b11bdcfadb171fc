/*-------------------------------------------------------------------------
 *
 * work.c
 *	  Host side of alarms and sends: find what is due, claim it, retry it.
 *
 * Alarms (durable._alarms) and committed sends (durable._outbox) are rows.
 * A home host runs the rows of its owner's objects whose shard %
 * durable.hosts is its home number, holding each object as it takes its row
 * (an object another host runs now is left for the next look):
 * host.c asks DurableWorkFetch for the due ones when its timer says so or
 * when it was woken for new sends, and runs them as calls in its batch.
 * Each such call first deletes its row in the call's own subtransaction
 * (DurableWorkClaim), so the handler's effects and the removal commit
 * together: an alarm or a send takes effect exactly once.  A failing one is
 * rescheduled with exponential backoff (DurableWorkFailed), and after
 * durable.max_attempts it moves to durable._dead_letters with its error.
 *
 * Sends to one object are taken in send order; while the oldest pending
 * send of an object waits for a retry, the later ones wait behind it.
 *
 * The rows are read FOR UPDATE SKIP LOCKED: the batch holds them until it
 * commits, so claiming and rescheduling never wait, and a row someone else
 * holds (a drop_class in an open transaction) is left alone instead of
 * stalling the host; it is looked at again on the next round.
 *
 * With the tables distributed by Citus (durable.distribute()), a look reads
 * only this node's shards of them, as local tables (shared/placement.c):
 * each node runs the alarms and sends of its own objects.
 *
 * IDENTIFICATION
 *	  src/host/work.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/objects.h"
#include "shared/placement.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/snapmgr.h"

static bool touched = false;

enum
{
	PLAN_CLAIM_SEND,
	PLAN_CLAIM_ALARM,
	PLAN_RETRY_SEND,
	PLAN_RETRY_ALARM,
	PLAN_DEAD_SEND,
	PLAN_DEAD_ALARM,
	PLAN_DUE_ALARMS,
	PLAN_NEXT_ALARM,
	PLAN_PENDING_SENDS,
	PLAN_COUNT
};

#define ERROR_JSON "pg_catalog.jsonb_build_object('code', $2::pg_catalog.text, 'message', $3::pg_catalog.text)"
#define ALARM_KEY \
	" WHERE class OPERATOR(pg_catalog.=) $4 AND id OPERATOR(pg_catalog.=) $5 " \
	"   AND name OPERATOR(pg_catalog.=) $6 AND at OPERATOR(pg_catalog.=) $7"
#define MINE " (shard OPERATOR(pg_catalog.%) $1) OPERATOR(pg_catalog.=) $2 " \
	" AND class OPERATOR(pg_catalog.=) ANY (SELECT c.name FROM durable._classes c " \
	"     WHERE c.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $4) "

static const DurableStatement statements[PLAN_COUNT] =
{
	/* sends name their object too: with Citus, the id finds the shard (placement.c) */
	[PLAN_CLAIM_SEND] = {
		"DELETE FROM durable._outbox WHERE seq OPERATOR(pg_catalog.=) $1 "
		"   AND id OPERATOR(pg_catalog.=) $2",
		2, {INT8OID, TEXTOID}
	},
	[PLAN_CLAIM_ALARM] = {
		"DELETE FROM durable._alarms WHERE class OPERATOR(pg_catalog.=) $1 "
		"   AND id OPERATOR(pg_catalog.=) $2 AND name OPERATOR(pg_catalog.=) $3 "
		"   AND at OPERATOR(pg_catalog.=) $4",
		4, {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}
	},
	[PLAN_RETRY_SEND] = {
		"UPDATE durable._outbox SET attempt = attempt OPERATOR(pg_catalog.+) 1, "
		"       not_before = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $4, "
		"       last_error = " ERROR_JSON
		" WHERE seq OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $5",
		5, {INT8OID, TEXTOID, TEXTOID, INTERVALOID, TEXTOID}
	},
	[PLAN_RETRY_ALARM] = {
		"UPDATE durable._alarms SET attempt = attempt OPERATOR(pg_catalog.+) 1, "
		"       at = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $1, "
		"       last_error = " ERROR_JSON ALARM_KEY,
		7, {INTERVALOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}
	},
	[PLAN_DEAD_SEND] = {
		"WITH d AS (DELETE FROM durable._outbox WHERE seq OPERATOR(pg_catalog.=) $1 "
		"             AND id OPERATOR(pg_catalog.=) $5 "
		"           RETURNING class, id, method, args, attempt) "
		"INSERT INTO durable._dead_letters (kind, class, id, method, args, attempts, last_error) "
		"SELECT 'send', d.class, d.id, d.method, d.args, d.attempt OPERATOR(pg_catalog.+) 1, "
		ERROR_JSON " FROM d",
		5, {INT8OID, TEXTOID, TEXTOID, INTERVALOID, TEXTOID}
	},
	[PLAN_DEAD_ALARM] = {
		"WITH d AS (DELETE FROM durable._alarms" ALARM_KEY
		"           RETURNING class, id, name, scheduled_at, attempt) "
		"INSERT INTO durable._dead_letters (kind, class, id, method, args, attempts, last_error) "
		"SELECT 'alarm', d.class, d.id, '$alarm', "
		"       pg_catalog.jsonb_build_object('name', d.name, 'scheduled_at', d.scheduled_at), "
		"       d.attempt OPERATOR(pg_catalog.+) 1, " ERROR_JSON " FROM d",
		7, {INTERVALOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}
	},
	[PLAN_DUE_ALARMS] = {
		"SELECT class, id, name, at, attempt, "
		"       pg_catalog.jsonb_build_object('name', name, 'scheduled_at', scheduled_at, "
		"                                     'attempt', attempt OPERATOR(pg_catalog.+) 1) "
		"  FROM durable._alarms "
		" WHERE at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp() AND" MINE
		" ORDER BY at LIMIT $3 FOR UPDATE SKIP LOCKED",
		4, {INT4OID, INT4OID, INT4OID, OIDOID}
	},
	[PLAN_NEXT_ALARM] = {
		"SELECT at FROM durable._alarms WHERE" MINE
		" ORDER BY at LIMIT $3 FOR UPDATE SKIP LOCKED",
		4, {INT4OID, INT4OID, INT4OID, OIDOID}
	},
	[PLAN_PENDING_SENDS] = {
		"SELECT seq, class, id, method, args, attempt, "
		"       not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp(), not_before "
		"  FROM durable._outbox WHERE" MINE " ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED",
		4, {INT4OID, INT4OID, INT4OID, OIDOID}
	},
};

static SPIPlanPtr plans[PLAN_COUNT];

/* run statement which; never read-only: the SELECTs lock the rows they return */
static void
execute(int which, Datum *values, int expected)
{
	const DurableStatement *stmt = &statements[which];

	DurableSpiExecute(DurableSpiPlan(&plans[which], stmt->sql, stmt->nargs,
									 (Oid *) stmt->argtypes),
					  values, NULL, false, expected);
}

/*
 * look
 *		Run the scan which (due alarms, the next alarm, pending sends): when
 *		the tables are distributed, over this node's shards only
 *		(placement.c).  False if it ran nothing (no shard here).
 */
static bool
look(int which, Datum *values)
{
	const DurableStatement *stmt = &statements[which];
	char	   *local;
	int			rc;

	if (!DurableLocalStatement(stmt->sql,
							   which == PLAN_PENDING_SENDS ? "durable._outbox" : "durable._alarms",
							   which == PLAN_DUE_ALARMS ? 4 : 1, "$3", &local))
	{
		execute(which, values, SPI_OK_SELECT);
		return true;
	}
	if (local == NULL)
		return false;
	rc = SPI_execute_with_args(local, stmt->nargs, (Oid *) stmt->argtypes, values, NULL,
							   false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	return true;
}

/*
 * DurableWorkClaim
 *		In the call's subtransaction: delete the alarm or send row the call
 *		comes from.  False if it is gone (deleted or replaced meanwhile): the
 *		call must not run.  Calls from requests always run.
 */
bool
DurableWorkClaim(DurableCall *call)
{
	DurableSpiState spi;
	Datum		values[4];
	bool		claimed;

	if (call->source == DURABLE_SOURCE_REQUEST)
		return true;

	DurableSpiBegin(&spi);
	if (call->source == DURABLE_SOURCE_SEND)
	{
		values[0] = Int64GetDatum(call->outbox_seq);
		values[1] = CStringGetTextDatum(call->id);
		execute(PLAN_CLAIM_SEND, values, SPI_OK_DELETE);
	}
	else
	{
		values[0] = CStringGetTextDatum(call->class_name);
		values[1] = CStringGetTextDatum(call->id);
		values[2] = CStringGetTextDatum(call->alarm_name);
		values[3] = TimestampTzGetDatum(call->alarm_at);
		execute(PLAN_CLAIM_ALARM, values, SPI_OK_DELETE);
	}
	claimed = SPI_processed == 1;
	DurableSpiEnd(&spi);
	return claimed;
}

/*
 * DurableWorkFailed
 *		After a failed alarm or send call rolled back (its row is back):
 *		reschedule it with exponential backoff, or after durable.max_attempts
 *		move it to the dead letters.  Runs in the host's batch transaction.
 */
void
DurableWorkFailed(DurableCall *call)
{
	DurableSpiState spi;
	Datum		values[7];
	bool		dead = call->attempt + 1 >= durable_max_attempts;
	int64		delay_ms;
	Interval   *delay = palloc0(sizeof(Interval));
	ErrorData  *e = call->error;

	if (call->source == DURABLE_SOURCE_REQUEST || call->skipped)
		return;

	/* 1, 2, 4, 8 ... times durable.retry_delay, at most an hour */
	delay_ms = (int64) durable_retry_delay << Min(call->attempt, 20);
	delay->time = Min(delay_ms, (int64) 3600 * 1000) * 1000;

	PushActiveSnapshot(GetTransactionSnapshot());
	DurableSpiBegin(&spi);
	values[1] = CStringGetTextDatum(unpack_sql_state(e->sqlerrcode));
	values[2] = CStringGetTextDatum(e->message ? e->message : "unknown error");
	if (call->source == DURABLE_SOURCE_SEND)
	{
		values[0] = Int64GetDatum(call->outbox_seq);
		values[3] = IntervalPGetDatum(delay);
		values[4] = CStringGetTextDatum(call->id);
		execute(dead ? PLAN_DEAD_SEND : PLAN_RETRY_SEND, values,
				dead ? SPI_OK_INSERT : SPI_OK_UPDATE);
	}
	else
	{
		values[0] = IntervalPGetDatum(delay);
		values[3] = CStringGetTextDatum(call->class_name);
		values[4] = CStringGetTextDatum(call->id);
		values[5] = CStringGetTextDatum(call->alarm_name);
		values[6] = TimestampTzGetDatum(call->alarm_at);
		execute(dead ? PLAN_DEAD_ALARM : PLAN_RETRY_ALARM, values,
				dead ? SPI_OK_INSERT : SPI_OK_UPDATE);
	}
	DurableSpiEnd(&spi);
	PopActiveSnapshot();
	touched = true;
}

static char *
text_value(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col);
}

static Jsonb *
jsonb_value(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	Jsonb	   *jb = DatumGetJsonbP(d);
	Jsonb	   *copy = MemoryContextAlloc(cxt, VARSIZE(jb));

	memcpy(copy, jb, VARSIZE(jb));
	return copy;
}

/* an alarm or send whose object another host holds is tried again this soon */
#define HELD_ELSEWHERE_RETRY_MS 20


typedef struct BlockedObject
{
	char		key[DURABLE_MAX_CLASS_BYTES + 1 + DURABLE_MAX_ID_BYTES + 1];
} BlockedObject;

/*
 * DurableWorkFetch
 *		In a transaction: fill calls[0..max-1] with this host's due alarms and
 *		sends, oldest first; return how many.  *next_wake gets the time the
 *		next not-yet-due item becomes due (0 if none is pending).
 */
int
DurableWorkFetch(DurableCall *calls, int max, TimestampTz *next_wake)
{
	MemoryContext cxt = CurrentMemoryContext;
	DurableSpiState spi;
	Datum		values[4];
	int			n = 0;
	uint64		i;
	HTAB	   *blocked;
	bool		held_elsewhere = false;
	bool		ran;
	HASHCTL		ctl;
	bool		isnull;

	*next_wake = 0;
	if (!DurableExtensionPresent() || max <= 0)
		return 0;

	values[0] = Int32GetDatum(durable_hosts);
	values[1] = Int32GetDatum(durable_host_home);
	values[2] = Int32GetDatum(max);
	values[3] = ObjectIdGetDatum(durable_host_owner);

	PushActiveSnapshot(GetTransactionSnapshot());
	DurableSpiBegin(&spi);

	/* due alarms */
	ran = look(PLAN_DUE_ALARMS, values);
	for (i = 0; ran && i < SPI_processed && n < max; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		DurableCall *call = &calls[n++];
		MemoryContext spicxt = MemoryContextSwitchTo(cxt);

		memset(call, 0, sizeof(*call));
		call->source = DURABLE_SOURCE_ALARM;
		call->req.caller = -1;
		call->class_name = text_value(tup, desc, 1);
		call->id = text_value(tup, desc, 2);
		call->alarm_name = text_value(tup, desc, 3);
		call->alarm_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
		call->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		call->method = pstrdup("$alarm");
		call->args = jsonb_value(tup, desc, 6, cxt);
		MemoryContextSwitchTo(spicxt);
		call->object = DurableObjectKey(call->class_name, call->id);
		if (!DurableHostHoldObject(call->object, &call->cache_valid))
		{
			n--;
			held_elsewhere = true;
		}
	}

	/* pending sends, in send order; an object waiting for a retry blocks its later sends */
	ctl.keysize = sizeof(BlockedObject);
	ctl.entrysize = sizeof(BlockedObject);
	ctl.hcxt = CurrentMemoryContext;
	blocked = hash_create("durable blocked objects", 64, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	values[2] = Int32GetDatum(Max(max - n, 0) + 1000);
	ran = look(PLAN_PENDING_SENDS, values);
	for (i = 0; ran && i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		BlockedObject key;
		char	   *class_name = text_value(tup, desc, 2);
		char	   *id = text_value(tup, desc, 3);
		bool		due = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		bool		found;
		bool		cache_valid = false;

		memset(&key, 0, sizeof(key));
		strlcpy(key.key, class_name, DURABLE_MAX_CLASS_BYTES + 1);
		strlcpy(key.key + strlen(key.key) + 1, id, DURABLE_MAX_ID_BYTES + 1);
		hash_search(blocked, &key, HASH_FIND, &found);
		if (found)
			continue;
		if (due && n < max &&
			!DurableHostHoldObject(DurableObjectKey(class_name, id), &cache_valid))
		{
			/* another host runs the object now: its later sends wait too */
			hash_search(blocked, &key, HASH_ENTER, NULL);
			held_elsewhere = true;
			continue;
		}
		if (!due || n >= max)
		{
			TimestampTz nb = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull));

			hash_search(blocked, &key, HASH_ENTER, NULL);
			if (*next_wake == 0 || nb < *next_wake)
				*next_wake = nb;
			continue;
		}
		{
			DurableCall *call = &calls[n++];
			MemoryContext spicxt = MemoryContextSwitchTo(cxt);

			memset(call, 0, sizeof(*call));
			call->source = DURABLE_SOURCE_SEND;
			call->req.caller = -1;
			call->outbox_seq = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			call->class_name = pstrdup(class_name);
			call->id = pstrdup(id);
			call->method = text_value(tup, desc, 4);
			call->args = jsonb_value(tup, desc, 5, cxt);
			call->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
			call->object = DurableObjectKey(class_name, id);
			call->cache_valid = cache_valid;
			MemoryContextSwitchTo(spicxt);
		}
	}

	/* what another host holds now is looked at again soon */
	if (held_elsewhere)
	{
		TimestampTz soon = GetCurrentTimestamp() + HELD_ELSEWHERE_RETRY_MS * 1000;

		if (*next_wake == 0 || soon < *next_wake)
			*next_wake = soon;
	}

	/* the next alarm not taken now */
	if (n == 0)
	{
		values[2] = Int32GetDatum(1);
		if (look(PLAN_NEXT_ALARM, values) && SPI_processed > 0)
		{
			TimestampTz at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
															  SPI_tuptable->tupdesc, 1,
															  &isnull));

			if (*next_wake == 0 || at < *next_wake)
				*next_wake = at;
		}
	}

	DurableSpiEnd(&spi);
	PopActiveSnapshot();
	MemoryContextSwitchTo(cxt);
	return n;
}

/*
 * DurableWorkTouched
 *		A handler of this host changed alarms: look again after the batch.
 */
void
DurableWorkTouched(void)
{
	touched = true;
}

/*
 * DurableWorkTouchedReset
 *		Whether alarms or retries changed since the last call.
 */
bool
DurableWorkTouchedReset(void)
{
	bool		was = touched;

	touched = false;
	return was;
}
