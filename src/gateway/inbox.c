/*-------------------------------------------------------------------------
 *
 * inbox.c
 *	  Messages from the hosts to the gateway.
 *
 * Hosts send their answers and the objects' messages through the gateway's
 * queue in shared memory (shared/gateway_link.c), only after commit, and
 * wake the gateway's eventfd.  The gateway drains the queue a batch at a
 * time, decodes each message (shared/messages.c) and hands it to the part of
 * the gateway it is for; after each batch every socket that got frames is
 * written once (frames.c).  Answers mean room in the hosts' queues: then the
 * calls waiting for room are tried again (backlog.c).
 *
 * IDENTIFICATION
 *	  src/gateway/inbox.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <stdlib.h>

#define GATEWAY_DRAIN_BATCH	1024	/* gateway queue messages between flushes */

/* the reply or error of a socket's call: a frame to that socket */
static void
answer_socket(GatewayObjSocket *s, const DurableGatewayMsg *msg)
{
	GatewayBuf	b;

	GatewayBufInit(&b, 64 + msg->result.len + msg->message.len);
	GatewayBufAppend(&b, msg->kind == GATEWAY_MSG_ERROR ?
					 "{\"type\":\"error\",\"id\":" : "{\"type\":\"reply\",\"id\":", 21);
	if (msg->frame_id.data)
		GatewayBufAppend(&b, msg->frame_id.data, msg->frame_id.len);
	else
		GatewayBufAppend(&b, "null", 4);
	if (msg->kind == GATEWAY_MSG_ERROR)
	{
		GatewayBufAppend(&b, ",", 1);
		GatewayBufAppendErrorBytes(&b, msg->sqlstate, msg->message);
	}
	else
	{
		GatewayBufAppend(&b, ",\"result\":", 10);
		if (msg->result.data)
			GatewayBufAppend(&b, msg->result.data, msg->result.len);
		else
			GatewayBufAppend(&b, "null", 4);
	}
	GatewayBufAppend(&b, "}", 1);
	GatewaySendText(s, &b);
}

/*
 * extension_dropped
 *		The extension is gone from database db (DROP EXTENSION, or never
 *		created there): no class of it is reachable, and every open socket of
 *		it is closed, after what was queued for it, with 1001.  The other
 *		databases go on.
 */
static void
extension_dropped(int db)
{
	int			n;
	int64	   *ids = GatewayAllSocketIds(&n);
	int			i;

	GatewayClassesReplace(db, "", 0);
	for (i = 0; i < n; i++)
	{
		GatewayObjSocket *s = GatewayFindSocket(ids[i]);

		if (s != NULL && GatewaySocketDb(s) == db)
			GatewayCloseSocket(s, DURABLE_CLOSE_GOING_AWAY, "extension dropped", false);
	}
	free(ids);
}

/*
 * handle_message
 *		One message from a host: see messages.h for the kinds and fields.
 *		A message names sockets, objects or HTTP calls of the sender's
 *		database only (msg.db, which the sender cannot choose): a socket of
 *		another database is as unknown to it as a closed one.
 */
static void
handle_message(const DurableParts *parts, void *arg)
{
	DurableGatewayMsg msg;
	GatewayObjSocket *s = NULL;
	GwObject   *o;
	GwFrame    *f;
	GwFrame    *second;
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];

	if (!DurableGatewayMsgDecode(parts, &msg))
		return;
	if (msg.kind != GATEWAY_MSG_CLASSES && msg.kind != GATEWAY_MSG_EVENT &&
		msg.kind != GATEWAY_MSG_DROPPED && msg.socket != 0)
	{
		s = GatewayFindSocket(msg.socket);
		if (s != NULL && GatewaySocketDb(s) != msg.db)
			s = NULL;
	}

	switch (msg.kind)
	{
		case GATEWAY_MSG_CLASSES:
			GatewayClassesReplace(msg.db, msg.data.data, msg.data.len);
			break;
		case GATEWAY_MSG_CONNECT:
			if (s != NULL)
				GatewaySocketConnected(s, &msg);
			break;
		case GATEWAY_MSG_READY:
			if (s != NULL && s->accepted && !s->ready)
				GatewaySocketReady(s);
			break;
		case GATEWAY_MSG_REPLY:
		case GATEWAY_MSG_ERROR:
			if (msg.socket == 0)
				GatewayHttpAnswered(&msg);
			else if (s != NULL)
				answer_socket(s, &msg);
			break;
		case GATEWAY_MSG_EVENT:
			if (msg.class_name.len > DURABLE_MAX_CLASS_BYTES || msg.class_name.data == NULL)
				break;
			memcpy(class_name, msg.class_name.data, msg.class_name.len);
			class_name[msg.class_name.len] = '\0';
			o = GatewayFindObject(msg.db, class_name, msg.id.data, msg.id.len, false);
			if (o == NULL)
				break;			/* no socket: nobody to tell */
			if (GatewayEventFrames(&msg, &f, &second))
				GatewayFanOut(o, f, second, msg.tag, msg.exclude);
			break;
		case GATEWAY_MSG_SEND:
			if (s == NULL)
				break;
			if (GatewayEventFrames(&msg, &f, &second))
				GatewaySendFrame(s, f, second);
			else
				GatewayCloseSocket(s, DURABLE_CLOSE_INTERNAL, "out of memory", true);
			break;
		case GATEWAY_MSG_GAP:
			if (s != NULL)
				GatewaySendGap(s, msg.seq);
			break;
		case GATEWAY_MSG_DROPPED:
			extension_dropped(msg.db);
			break;
		case GATEWAY_MSG_CLOSE:
			if (s != NULL)
			{
				char	   *reason = strndup(msg.reason.data ? msg.reason.data : "",
											 msg.reason.len);

				GatewayCloseSocket(s, msg.code, reason ? reason : "", false);
				free(reason);
			}
			break;
	}
}

/*
 * GatewayInboxDrain
 *		The wake eventfd fired: handle what the hosts sent, a batch at a time,
 *		and after each batch write every socket it gave frames to (also when
 *		a message raised an ERROR, which goes on to dispatch.c's boundary).
 */
void
GatewayInboxDrain(void)
{
	volatile int n;

	do
	{
		GatewayFlushBegin();
		PG_TRY();
		{
			n = DurableGatewayDrain(handle_message, NULL, GATEWAY_DRAIN_BATCH);
		}
		PG_CATCH();
		{
			GatewayFlushEnd();
			PG_RE_THROW();
		}
		PG_END_TRY();
		GatewayFlushEnd();
	} while (n == GATEWAY_DRAIN_BATCH);
	GatewayBacklogRetry();
}
