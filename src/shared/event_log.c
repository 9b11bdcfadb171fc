/*-------------------------------------------------------------------------
 *
 * event_log.c
 *	  The retained events of objects: reading durable._events.
 *
 * Every event an object sends (broadcast, socket_send) gets the next number
 * of the object's stream and a row of durable._events in the call's own
 * transaction (host/events.c writes them).  A class keeps the newest
 * retain.events of them, and with retain.seconds only those that young:
 * an event is *retained* when seq > last - events and at >= now - seconds,
 * where last is the object's newest seq.  Rows beyond that are deleted
 * from time to time, never the newest (it carries the stream's position,
 * and has no payload when it was beyond the retention when written: such a
 * row is never retained, whatever the class says later), so every reader
 * applies the window itself, here.
 *
 * IDENTIFICATION
 *	  src/shared/event_log.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/event_log.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datum.h"

enum
{
	PLAN_LAST,
	PLAN_OLDEST,
	PLAN_READ,
	PLAN_COUNT
};

static const DurableStatement statements[PLAN_COUNT] =
{
	[PLAN_LAST] = {
		"SELECT pg_catalog.max(seq) FROM durable._events "
		" WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2",
		2, {TEXTOID, TEXTOID}
	},
	[PLAN_OLDEST] = {
		"SELECT pg_catalog.min(seq) FROM durable._events "
		" WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "
		"   AND seq OPERATOR(pg_catalog.>) $3 AND at OPERATOR(pg_catalog.>=) $4 "
		"   AND (data IS NOT NULL OR bin IS NOT NULL)",
		4, {TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID}
	},
	[PLAN_READ] = {
		"SELECT seq, data, bin, tag, socket, at FROM durable._events "
		" WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "
		"   AND seq OPERATOR(pg_catalog.>) $3 AND at OPERATOR(pg_catalog.>=) $4 "
		"   AND (data IS NOT NULL OR bin IS NOT NULL) "
		"   AND (NOT $5 OR socket IS NULL) "
		" ORDER BY seq",
		5, {TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, BOOLOID}
	},
};

static SPIPlanPtr plans[PLAN_COUNT];

/* the oldest time a retained event of class cls may have (-infinity: any) */
TimestampTz
DurableEventCutoff(const DurableClass *cls)
{
	if (cls->retain_seconds <= 0)
		return DT_NOBEGIN;
	return GetCurrentTimestamp() - (int64) cls->retain_seconds * USECS_PER_SEC;
}

/* the events retained after since have a seq greater than this */
int64
DurableEventAfter(const DurableClass *cls, int64 last, int64 since)
{
	return Max(since, last - cls->retain_events);
}

/* whether event e is retained in a stream whose newest event is last */
bool
DurableEventRetained(const DurableClass *cls, int64 last, const DurableEvent *e)
{
	return e->seq > last - cls->retain_events && e->at >= DurableEventCutoff(cls);
}

/* the newest seq committed for object (class_name, id); 0 if it never sent one */
int64
DurableEventLast(const char *class_name, const char *id)
{
	DurableSpiState spi;
	Datum		values[2];
	Datum		d;
	bool		isnull;

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_LAST], &plans[PLAN_LAST], values, NULL, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	DurableSpiEnd(&spi);
	return isnull ? 0 : DatumGetInt64(d);
}

/* the oldest committed seq greater than after, made at cutoff or later; 0 if none */
int64
DurableEventOldest(const char *class_name, const char *id, int64 after, TimestampTz cutoff)
{
	DurableSpiState spi;
	Datum		values[4];
	Datum		d;
	bool		isnull;

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = Int64GetDatum(after);
	values[3] = TimestampTzGetDatum(cutoff);
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_OLDEST], &plans[PLAN_OLDEST], values, NULL, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	DurableSpiEnd(&spi);
	return isnull ? 0 : DatumGetInt64(d);
}

/* a copy of a varlena column in the current memory context, or NULL */
static void *
copy_column(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	MemoryContext old;
	void	   *copy;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	copy = PG_DETOAST_DATUM_COPY(d);
	MemoryContextSwitchTo(old);
	return copy;
}

/*
 * DurableEventRead
 *		The committed events of object (class_name, id) with seq > after, made
 *		at cutoff or later (only broadcasts if broadcasts_only), oldest first:
 *		a List of DurableEvent in the current memory context.
 */
List *
DurableEventRead(const char *class_name, const char *id, int64 after, TimestampTz cutoff,
				 bool broadcasts_only)
{
	MemoryContext cxt = CurrentMemoryContext;
	DurableSpiState spi;
	Datum		values[5];
	List	   *events = NIL;
	uint64		row;

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = Int64GetDatum(after);
	values[3] = TimestampTzGetDatum(cutoff);
	values[4] = BoolGetDatum(broadcasts_only);
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_READ], &plans[PLAN_READ], values, NULL, SPI_OK_SELECT);
	for (row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tup = SPI_tuptable->vals[row];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		DurableEvent *e = palloc0(sizeof(DurableEvent));
		text	   *tag;
		bool		isnull;
		Datum		d;

		MemoryContextSwitchTo(old);
		e->seq = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		e->data = copy_column(tup, desc, 2, cxt);
		e->bin = copy_column(tup, desc, 3, cxt);
		tag = copy_column(tup, desc, 4, cxt);
		if (tag != NULL)
		{
			old = MemoryContextSwitchTo(cxt);
			e->tag = text_to_cstring(tag);
			MemoryContextSwitchTo(old);
		}
		d = SPI_getbinval(tup, desc, 5, &isnull);
		e->socket = isnull ? 0 : DatumGetInt64(d);
		e->at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull));
		old = MemoryContextSwitchTo(cxt);
		events = lappend(events, e);
		MemoryContextSwitchTo(old);
	}
	DurableSpiEnd(&spi);
	return events;
}
