/*-------------------------------------------------------------------------
 *
 * event_log.h
 *	  The retained events of objects, as rows of durable._events
 *	  (event_log.c): read by durable.events() and by the replay of a
 *	  resuming socket.
 *
 * IDENTIFICATION
 *	  src/shared/event_log.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_EVENT_LOG_H
#define DURABLE_EVENT_LOG_H

#include "shared/catalog.h"

#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* one event of an object's stream */
typedef struct DurableEvent
{
	int64		seq;
	Jsonb	   *data;			/* a JSON event, or NULL */
	bytea	   *bin;			/* a binary event, or NULL */
	char	   *tag;			/* broadcast only to sockets with this tag; NULL: all */
	int64		socket;			/* socket_send to this socket; 0: a broadcast */
	TimestampTz at;				/* when the call made it */
} DurableEvent;

extern TimestampTz DurableEventCutoff(const DurableClass *cls);
extern int64 DurableEventAfter(const DurableClass *cls, int64 last, int64 since);
extern bool DurableEventRetained(const DurableClass *cls, int64 last, const DurableEvent *e);
extern int64 DurableEventLast(const char *class_name, const char *id);
extern int64 DurableEventOldest(const char *class_name, const char *id, int64 after,
								TimestampTz cutoff);
extern List *DurableEventRead(const char *class_name, const char *id, int64 after,
							  TimestampTz cutoff, bool broadcasts_only);

#endif							/* DURABLE_EVENT_LOG_H */
