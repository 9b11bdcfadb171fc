/*-------------------------------------------------------------------------
 *
 * events.c
 *	  The event streams of objects, host side: numbers, rows, replay.
 *
 * Each event a call sends (sockets.c: broadcast, socket_send) takes the
 * next number of its object's stream here, in the call's transaction: the
 * stream starts from the newest row of durable._events (shared/event_log.c)
 * the first time the transaction numbers an event of the object, and the
 * event is kept in memory, tagged with its subtransaction.  A subtransaction
 * that rolls back takes its events and their numbers back (outbound.c drops
 * their messages likewise); just before the transaction commits, the events
 * left are written in one INSERT (those already beyond the retention are
 * not, but for the newest of each object, without its payload: it carries
 * the position), and objects whose stream crossed a step of their retention
 * lose the rows beyond it (never the newest).  So an event
 * exists, numbered, exactly when the call that made it committed, and the
 * numbers of an object only grow, across restarts, crashes and hibernation.
 *
 * Replay: a socket that resumes (?since=N, in $connect's args) gets, after
 * $connect accepted it and before anything $connect sent, a gap message when
 * events after N are no longer retained, then every retained broadcast after
 * N that its tags match, committed or made earlier in this batch: exactly
 * the events before its live ones (sockets see the events of calls that
 * commit after their $connect).
 *
 * IDENTIFICATION
 *	  src/host/events.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/event_log.h"
#include "shared/objects.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* an object's stream, while a transaction numbers its events */
typedef struct Stream
{
	uint64		object;			/* DurableObjectKey */
	char	   *class_name;
	char	   *id;
	DurableClass cls;			/* its retention */
	int64		base;			/* the newest seq committed before */
	int64		last;			/* the newest seq given out */
} Stream;

/* an event made in this transaction */
typedef struct PendingEvent
{
	Stream	   *stream;
	SubTransactionId subid;		/* made in this subtransaction */
	DurableEvent e;
} PendingEvent;

static MemoryContext EventsContext = NULL;
static List *streams = NIL;
static List *pending = NIL;

static const DurableStatement insert_statement = {
	"INSERT INTO durable._events (class, id, seq, data, bin, tag, socket, at) "
	"SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
	"   pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), "
	"   pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8))",
	8, {TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, JSONBARRAYOID, BYTEAARRAYOID,
	TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID}
};
static const DurableStatement prune_statement = {
	"DELETE FROM durable._events "
	" WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "
	"   AND seq OPERATOR(pg_catalog.<) $3 "
	"   AND (seq OPERATOR(pg_catalog.<=) $4 OR at OPERATOR(pg_catalog.<) $5)",
	5, {TEXTOID, TEXTOID, INT8OID, INT8OID, TIMESTAMPTZOID}
};
static SPIPlanPtr insert_plan;
static SPIPlanPtr prune_plan;

static void
forget_all(void)
{
	if (EventsContext != NULL)
		MemoryContextReset(EventsContext);
	streams = NIL;
	pending = NIL;
}

/*
 * events_subxact
 *		A subtransaction rolled back: its events are gone, and their numbers
 *		are given out again (they are the newest of their streams: an object
 *		runs one call at a time, and a call's subtransactions nest).
 */
static void
events_subxact(SubXactEvent event, SubTransactionId mySubid,
			   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, pending)
	{
		PendingEvent *p = lfirst(lc);

		if (p->subid < mySubid)
			continue;
		if (p->e.seq <= p->stream->last)
			p->stream->last = p->e.seq - 1;
		pending = foreach_delete_current(pending, lc);
	}
}

/* prune rows of s beyond its retention now and then: when its stream crossed a step */
static bool
prune_due(const Stream *s)
{
	int64		step = Max(1, s->cls.retain_events / 8);

	return s->cls.retain_events == 0 || s->last / step != s->base / step;
}

/*
 * flush
 *		Before commit: write the events of this transaction, and prune.
 */
static void
flush(void)
{
	int			n = list_length(pending);
	Datum	   *cols[8];
	bool	   *nulls[8];
	Datum		arrays[8];
	static const Oid elem[8] = {TEXTOID, TEXTOID, INT8OID, JSONBOID, BYTEAOID, TEXTOID, INT8OID,
	TIMESTAMPTZOID};
	int			dims[1];
	int			lbs[1] = {1};
	DurableSpiState spi;
	ListCell   *lc;
	bool		pushed = false;
	int			i = 0;
	int			c;

	if (n == 0)
		return;
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	for (c = 0; c < 8; c++)
	{
		cols[c] = palloc(sizeof(Datum) * n);
		nulls[c] = palloc0(sizeof(bool) * n);
	}
	foreach(lc, pending)
	{
		PendingEvent *p = lfirst(lc);
		bool		kept = p->e.seq > p->stream->last - p->stream->cls.retain_events;

		/* beyond the retention already: only the newest row, to carry the position */
		if (!kept && p->e.seq != p->stream->last)
			continue;
		cols[0][i] = CStringGetTextDatum(p->stream->class_name);
		cols[1][i] = CStringGetTextDatum(p->stream->id);
		cols[2][i] = Int64GetDatum(p->e.seq);
		cols[3][i] = PointerGetDatum(p->e.data);
		nulls[3][i] = p->e.data == NULL || !kept;
		cols[4][i] = PointerGetDatum(p->e.bin);
		nulls[4][i] = p->e.bin == NULL || !kept;
		cols[5][i] = p->e.tag ? CStringGetTextDatum(p->e.tag) : (Datum) 0;
		nulls[5][i] = p->e.tag == NULL;
		cols[6][i] = Int64GetDatum(p->e.socket);
		nulls[6][i] = p->e.socket == 0;
		cols[7][i] = TimestampTzGetDatum(p->e.at);
		i++;
	}
	dims[0] = i;
	for (c = 0; c < 8; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(elem[c], &typlen, &typbyval, &typalign);
		arrays[c] = PointerGetDatum(construct_md_array(cols[c], nulls[c], 1, dims, lbs, elem[c],
													   typlen, typbyval, typalign));
	}
	DurableSpiBegin(&spi);
	DurableSpiRun(&insert_statement, &insert_plan, arrays, NULL, SPI_OK_INSERT);
	foreach(lc, streams)
	{
		Stream	   *s = lfirst(lc);
		Datum		values[5];

		if (s->last == s->base || !prune_due(s))
			continue;
		values[0] = CStringGetTextDatum(s->class_name);
		values[1] = CStringGetTextDatum(s->id);
		values[2] = Int64GetDatum(s->last);
		values[3] = Int64GetDatum(s->last - s->cls.retain_events);
		values[4] = TimestampTzGetDatum(DurableEventCutoff(&s->cls));
		DurableSpiRun(&prune_statement, &prune_plan, values, NULL, SPI_OK_DELETE);
	}
	DurableSpiEnd(&spi);
	if (pushed)
		PopActiveSnapshot();
}

static void
events_xact(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			flush();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
			forget_all();
			break;
		default:
			break;
	}
}

/* the stream of object (class_name, id) in this transaction, started on first use */
static Stream *
stream_of(const char *class_name, const char *id)
{
	uint64		object = DurableObjectKey(class_name, id);
	ListCell   *lc;
	Stream	   *s;
	DurableClass cls;
	int64		base;
	MemoryContext old;

	if (EventsContext == NULL)
	{
		EventsContext = AllocSetContextCreate(TopMemoryContext, "durable events",
											  ALLOCSET_DEFAULT_SIZES);
		RegisterXactCallback(events_xact, NULL);
		RegisterSubXactCallback(events_subxact, NULL);
	}
	foreach(lc, streams)
	{
		s = lfirst(lc);
		if (s->object == object && strcmp(s->class_name, class_name) == 0 &&
			strcmp(s->id, id) == 0)
			return s;
	}
	DurableClassLookup(class_name, &cls, false);
	base = DurableEventLast(class_name, id);
	old = MemoryContextSwitchTo(EventsContext);
	s = palloc0(sizeof(Stream));
	s->object = object;
	s->class_name = pstrdup(class_name);
	s->id = pstrdup(id);
	s->cls = cls;
	s->base = s->last = base;
	streams = lappend(streams, s);
	MemoryContextSwitchTo(old);
	return s;
}

/*
 * DurableEventAppend
 *		Number an event of the current call's object (class_name, id): JSON
 *		data or bytes bin, to sockets with tag or to one socket (0: a
 *		broadcast).  Returns its seq; its row is written at commit.
 */
int64
DurableEventAppend(const char *class_name, const char *id, const Jsonb *data, const bytea *bin,
				   const char *tag, int64 socket)
{
	Stream	   *s = stream_of(class_name, id);
	MemoryContext old = MemoryContextSwitchTo(EventsContext);
	PendingEvent *p = palloc0(sizeof(PendingEvent));

	p->stream = s;
	p->subid = GetCurrentSubTransactionId();
	p->e.seq = ++s->last;
	if (data != NULL)
		p->e.data = (Jsonb *) PG_DETOAST_DATUM_COPY(PointerGetDatum(data));
	if (bin != NULL)
		p->e.bin = (bytea *) PG_DETOAST_DATUM_COPY(PointerGetDatum(bin));
	p->e.tag = tag ? pstrdup(tag) : NULL;
	p->e.socket = socket;
	p->e.at = GetCurrentTimestamp();
	pending = lappend(pending, p);
	MemoryContextSwitchTo(old);
	return p->e.seq;
}

/*
 * A replay larger than this many times durable.socket_buffer_bytes starts with
 * a gap (the gateway closes a socket whose queue holds 8 times it).
 */
#define REPLAY_BUFFERS		4

/* the message that sends event e to socket */
static DurableGatewayMsg *
replay_message(const DurableEvent *e, int64 socket)
{
	DurableGatewayMsg *msg = palloc0(sizeof(DurableGatewayMsg));

	msg->kind = GATEWAY_MSG_SEND;
	msg->socket = socket;
	msg->seq = e->seq;
	if (e->bin != NULL)
	{
		msg->binary = true;
		msg->data.data = VARDATA_ANY(e->bin);
		msg->data.len = VARSIZE_ANY_EXHDR(e->bin);
	}
	else
		msg->data = DurableBytesOf(JsonbToCString(NULL, &e->data->root, VARSIZE(e->data)));
	return msg;
}

/* whether a socket with tags gets broadcast e */
static bool
tags_match(const DurableEvent *e, char **tags, int ntags)
{
	int			i;

	if (e->socket != 0)
		return false;
	if (e->tag == NULL)
		return true;
	for (i = 0; i < ntags; i++)
		if (strcmp(tags[i], e->tag) == 0)
			return true;
	return false;
}

/* whether this transaction numbered events (they are written at its commit) */
bool
DurableEventsPending(void)
{
	return pending != NIL;
}

/*
 * DurableEventPosition
 *		The newest seq of object (class_name, id) so far in this transaction.
 */
int64
DurableEventPosition(const char *class_name, const char *id)
{
	return stream_of(class_name, id)->last;
}

/*
 * DurableEventsReplay
 *		In an accepting $connect of object (class_name, id): the socket
 *		resumes after since, and gets the events after mark (the position
 *		before $connect ran) live.  Queue, ahead of what $connect sent, a gap
 *		message if events after since are no longer retained, then the
 *		retained broadcasts up to mark after since that a socket with tags
 *		gets.
 */
void
DurableEventsReplay(const char *class_name, const char *id, int64 socket, int64 since,
					int64 mark, char **tags, int ntags)
{
	Stream	   *s = stream_of(class_name, id);
	TimestampTz cutoff = DurableEventCutoff(&s->cls);
	int64		window = DurableEventAfter(&s->cls, mark, 0);
	int64		oldest = DurableEventOldest(class_name, id, window, cutoff);
	DurableGatewayMsg *gap = NULL;
	List	   *replay = NIL;
	List	   *committed;
	ListCell   *lc;
	Size		bytes = 0;
	int			i;

	/* none committed: the oldest made earlier in this batch, or the next one */
	if (oldest == 0)
	{
		oldest = mark + 1;
		foreach(lc, pending)
		{
			PendingEvent *p = lfirst(lc);

			if (p->stream == s && p->e.seq <= mark &&
				DurableEventRetained(&s->cls, mark, &p->e))
			{
				oldest = p->e.seq;
				break;
			}
		}
	}
	if (since < oldest - 1 || since > mark)
	{
		gap = palloc0(sizeof(DurableGatewayMsg));
		gap->kind = GATEWAY_MSG_GAP;
		gap->socket = socket;
		gap->seq = oldest;
		since = oldest - 1;
	}
	committed = DurableEventRead(class_name, id, DurableEventAfter(&s->cls, mark, since),
								 cutoff, true);
	foreach(lc, committed)
	{
		DurableEvent *e = lfirst(lc);

		if (tags_match(e, tags, ntags))
			replay = lappend(replay, replay_message(e, socket));
	}
	foreach(lc, pending)
	{
		PendingEvent *p = lfirst(lc);

		if (p->stream == s && p->e.seq > since && p->e.seq <= mark &&
			DurableEventRetained(&s->cls, mark, &p->e) && tags_match(&p->e, tags, ntags))
			replay = lappend(replay, replay_message(&p->e, socket));
	}

	/*
	 * A replay the socket's queue could not take at once (it would be closed
	 * as a slow consumer, and come back for the same again) keeps its newest
	 * events, after a gap.
	 */
	for (i = list_length(replay) - 1; i >= 0; i--)
	{
		bytes += ((DurableGatewayMsg *) list_nth(replay, i))->data.len + 64;
		if (bytes > (Size) durable_socket_buffer_bytes * REPLAY_BUFFERS)
			break;
	}
	if (i >= 0)
	{
		replay = list_delete_first_n(replay, i + 1);
		oldest = replay != NIL ? ((DurableGatewayMsg *) linitial(replay))->seq : mark + 1;
		if (gap == NULL)
			gap = palloc0(sizeof(DurableGatewayMsg));
		gap->kind = GATEWAY_MSG_GAP;
		gap->socket = socket;
		gap->seq = oldest;
	}
	DurableOutboundQueueAhead(gap != NULL ? lcons(gap, replay) : replay);
}
