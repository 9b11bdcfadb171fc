/*-------------------------------------------------------------------------
 *
 * ws.c
 *	  WebSocket sessions of objects: open, frames in, close.
 *
 * An accepted upgrade becomes a socket with a new id; its host runs
 * "$connect" and the gateway holds the socket's frames until the host says
 * whether it accepted (inbox.c).  Then "call" frames become calls of the
 * object, answered by "reply"/"error" frames, other frames go to "$message",
 * and the end of the socket runs "$close".
 *
 * IDENTIFICATION
 *	  src/gateway/ws.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"
#include "gateway/json.h"

#include <stdlib.h>

#define MAX_EARLY_FRAMES	64	/* frames held while $connect runs (and at most
								 * durable.socket_buffer_bytes of them) */

/*
 * dispatch_frame
 *		A whole text frame of an accepted socket: a call, or $message.
 */
static void
dispatch_frame(GatewayObjSocket *s, const char *text, size_t len)
{
	DurableFrame frame;
	const char *error;
	DurableFrameKind kind;
	bool		ok = true;

	if (s->has_auto && len == strlen(s->auto_request) &&
		memcmp(text, s->auto_request, len) == 0)
	{
		GatewayBuf	b;

		GatewayBufInit(&b, strlen(s->auto_response));
		GatewayBufAppend(&b, s->auto_response, strlen(s->auto_response));
		GatewaySendText(s, &b);
		return;
	}

	kind = DurableJsonParseFrame(text, len, &frame, &error);
	switch (kind)
	{
		case FRAME_NOT_JSON:
			GatewaySendError(s, NULL, DURABLE_STATE_BAD_JSON, "frame is not valid JSON", 23);
			break;
		case FRAME_BAD_CALL:
			GatewaySendError(s, frame.id, DURABLE_STATE_BAD_VALUE, error, strlen(error));
			break;
		case FRAME_CALL:
			ok = GatewayEnqueue(GatewaySocketClass(s), GatewaySocketObjectId(s), frame.method,
								frame.args, s->id, 0, frame.id);
			if (!ok)
				GatewaySendError(s, frame.id, DURABLE_STATE_OVERLOADED,
								 "the object's host is overloaded", 31);
			break;
		case FRAME_OTHER:
			{
				char	   *args = malloc(len + 16);

				if (args == NULL)
				{
					GatewaySendError(s, NULL, DURABLE_STATE_NO_MEMORY, "out of memory", 13);
					break;
				}
				memcpy(args, "{\"data\": ", 9);
				memcpy(args + 9, text, len);
				memcpy(args + 9 + len, "}", 2);
				if (!GatewayEnqueue(GatewaySocketClass(s), GatewaySocketObjectId(s), "$message",
									args, s->id, 0, NULL))
					GatewaySendError(s, NULL, DURABLE_STATE_OVERLOADED,
									 "the object's host is overloaded", 31);
				free(args);
				break;
			}
	}
	DurableJsonFreeFrame(&frame);
}

/*
 * GatewaySocketConnected
 *		The host ran $connect of s: accept it (with its tags) or close it
 *		with the code and reason $connect gave.
 */
void
GatewaySocketConnected(GatewayObjSocket *s, const DurableGatewayMsg *msg)
{
	char	   *text;

	if (s->accepted)
		return;
	if (!msg->accept)
	{
		text = strndup(msg->reason.data ? msg->reason.data : "", msg->reason.len);
		GatewayCloseSocket(s, msg->code, text ? text : "", true);
		free(text);
		return;
	}
	s->accepted = true;
	text = msg->tags.data ? strndup(msg->tags.data, msg->tags.len) : NULL;
	if (text)
	{
		s->tags_json = text;
		s->ntags = DurableJsonTags(text, &s->tags);
	}
}

/*
 * GatewaySocketReady
 *		The messages $connect sent are queued: pass on the frames that came
 *		while it ran, in order.
 */
void
GatewaySocketReady(GatewayObjSocket *s)
{
	GwEarly    *e;

	s->ready = true;
	while ((e = s->early_head) != NULL)
	{
		s->early_head = e->next;
		dispatch_frame(s, e->text, e->len);
		free(e->text);
		free(e);
	}
	s->early_tail = NULL;
	s->nearly = 0;
	s->early_bytes = 0;
}

/*
 * GatewayOpenSocket
 *		LWS_CALLBACK_ESTABLISHED: the socket exists; ask its host to run
 *		$connect.
 */
int
GatewayOpenSocket(struct lws *wsi, GatewaySession *pss)
{
	GwPending  *p = GatewayTakePending(wsi);
	const GatewayClassEntry *entry;
	GatewayObjSocket *s;

	if (p == NULL || pss == NULL)
	{
		GatewayFreePending(p);
		return -1;
	}
	entry = GatewayPendingEntry(p);
	s = calloc(1, sizeof(GatewayObjSocket));
	if (s == NULL ||
		(s->object = GatewayFindObject(GatewayPendingClass(p), GatewayPendingId(p),
									   strlen(GatewayPendingId(p)), true)) == NULL)
	{
		free(s);
		GatewayFreePending(p);
		return -1;
	}
	s->id = (int64) pg_atomic_add_fetch_u64(&DurableGatewayStats()->next_socket, 1);
	s->wsi = wsi;
	s->has_auto = entry->has_auto_response;
	strlcpy(s->auto_request, entry->auto_request, sizeof(s->auto_request));
	strlcpy(s->auto_response, entry->auto_response, sizeof(s->auto_response));
	GatewayAddSocket(s);
	pss->sock = s;
	pg_atomic_fetch_add_u32(&DurableGatewayStats()->sockets_open, 1);

	if (GatewayEnqueue(GatewayPendingClass(p), GatewayPendingId(p), "$connect",
					   GatewayPendingArgs(p), s->id, 0, NULL))
		s->connect_sent = true;
	else
		GatewayCloseSocket(s, DURABLE_CLOSE_TRY_AGAIN, "try again later", true);
	GatewayFreePending(p);
	return 0;
}

/*
 * GatewayReceiveFrame
 *		LWS_CALLBACK_RECEIVE: a piece of a frame.
 */
int
GatewayReceiveFrame(struct lws *wsi, GatewayObjSocket *s, const char *in, size_t len)
{
	DurableGatewayCounters *gw = DurableGatewayStats();

	if (s->close_code != 0)
		return 0;
	if (lws_frame_is_binary(wsi))
	{
		GatewayCloseSocket(s, DURABLE_CLOSE_UNSUPPORTED, "binary frames are not accepted", true);
		return 0;
	}
	if (s->rx_len + len > (size_t) durable_max_message_bytes)
	{
		GatewayCloseSocket(s, DURABLE_CLOSE_TOO_BIG, "frame larger than durable.max_message_bytes",
						   true);
		return 0;
	}
	if (s->rx_len + len + 1 > s->rx_cap)
	{
		size_t		cap = Max(s->rx_cap * 2, s->rx_len + len + 1);
		char	   *grown = realloc(s->rx, cap);

		if (grown == NULL)
		{
			GatewayCloseSocket(s, DURABLE_CLOSE_INTERNAL, "out of memory", true);
			return 0;
		}
		s->rx = grown;
		s->rx_cap = cap;
	}
	memcpy(s->rx + s->rx_len, in, len);
	s->rx_len += len;
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
		return 0;

	pg_atomic_fetch_add_u64(&gw->frames_in, 1);
	pg_atomic_fetch_add_u64(&gw->bytes_in, s->rx_len);
	s->rx[s->rx_len] = '\0';
	if (s->ready)
		dispatch_frame(s, s->rx, s->rx_len);
	else if (s->nearly >= MAX_EARLY_FRAMES ||
			 s->early_bytes + s->rx_len > (size_t) durable_socket_buffer_bytes)
		GatewayCloseSocket(s, DURABLE_CLOSE_POLICY,
						   "too many frames before the socket was accepted", true);
	else
	{
		GwEarly    *e = malloc(sizeof(GwEarly));

		if (e == NULL || (e->text = malloc(s->rx_len + 1)) == NULL)
		{
			free(e);
			GatewayCloseSocket(s, DURABLE_CLOSE_INTERNAL, "out of memory", true);
		}
		else
		{
			memcpy(e->text, s->rx, s->rx_len + 1);
			e->len = s->rx_len;
			e->next = NULL;
			if (s->early_tail)
				s->early_tail->next = e;
			else
				s->early_head = e;
			s->early_tail = e;
			s->nearly++;
			s->early_bytes += e->len;
		}
	}
	s->rx_len = 0;
	if (s->rx_cap > 65536)
	{
		free(s->rx);
		s->rx = NULL;
		s->rx_cap = 0;
	}
	return 0;
}

/*
 * GatewayPeerClosing
 *		LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: the client's close code and
 *		reason (1005 when it sent none), for $close.
 */
void
GatewayPeerClosing(GatewayObjSocket *s, const unsigned char *in, size_t len)
{
	if (in != NULL && len >= 2)
	{
		s->peer_code = (in[0] << 8) | in[1];
		strlcpy(s->peer_reason, (const char *) in + 2, Min(len - 1, sizeof(s->peer_reason)));
	}
	else
		s->peer_code = DURABLE_CLOSE_NO_STATUS;
}

/*
 * GatewaySocketClosed
 *		LWS_CALLBACK_CLOSED: the socket is gone.  Its host runs $close (if
 *		$connect accepted it).
 */
void
GatewaySocketClosed(GatewayObjSocket *s)
{
	GwEarly    *e;
	int			i;

	/*
	 * Even if $connect has not answered yet: it runs first (one queue per
	 * host), and $close then runs only if it accepted.
	 */
	if (s->connect_sent)
	{
		int			code = s->peer_code ? s->peer_code :
			(s->close_code ? s->close_code : DURABLE_CLOSE_ABNORMAL);
		const char *reason = s->peer_code ? s->peer_reason : s->close_reason;
		char	   *args = DurableJsonCloseArgs(s->id, code, reason, s->tags_json);

		if (args)
		{
			(void) GatewayEnqueue(GatewaySocketClass(s), GatewaySocketObjectId(s), "$close", args,
								  s->id, 0, NULL);
			free(args);
		}
	}

	GatewayRemoveSocket(s);
	GatewayForgetFrames(s);
	while ((e = s->early_head) != NULL)
	{
		s->early_head = e->next;
		free(e->text);
		free(e);
	}
	for (i = 0; i < s->ntags; i++)
		free(s->tags[i]);
	free(s->tags);
	free(s->tags_json);
	free(s->rx);
	free(s);
	pg_atomic_fetch_sub_u32(&DurableGatewayStats()->sockets_open, 1);
}
