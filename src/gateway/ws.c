/*-------------------------------------------------------------------------
 *
 * ws.c
 *	  WebSocket sessions of objects: open, frames in, close.
 *
 * An accepted upgrade becomes a socket with a new id; its host runs
 * "$connect" and the gateway holds the socket's messages until the host says
 * whether it accepted (inbox.c).  Then "call" messages become calls of the
 * object, answered by "reply"/"error" frames, other messages go to
 * "$message", and the end of the socket runs "$close".
 *
 * Frames in (wsframe.c parses them): a text message is assembled from its
 * fragments (at most durable.max_message_bytes, 1009; the receive budget
 * durable.max_receive_bytes over all sockets, 1013), its UTF-8 checked as it
 * comes (1007 at the first bad byte); a binary message goes to $message as
 * {"binary": "<base64>"}; a Ping is answered, a Pong ignored, a Close answered and the
 * connection ended.  A protocol violation fails the connection (1002) and
 * nothing the client sends afterwards is read.
 *
 * Backpressure.  Messages go to the host in the order they came.  One that
 * finds no room (routes.c: GATEWAY_WAIT) is held with those after it, and
 * the socket is not read until the backlog (backlog.c) got them all to the
 * host; so a client faster than its object is slowed down by TCP, and never
 * refused.  Before $connect answered, up to GATEWAY_MAX_HELD messages (and
 * durable.socket_buffer_bytes) are held, then reading pauses too.  The same
 * goes for $connect itself; only a call the message area cannot store at
 * all closes the socket (1013).
 *
 * IDENTIFICATION
 *	  src/gateway/ws.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"
#include "gateway/json.h"

#include <stdlib.h>

#include "common/base64.h"
#include "utils/timestamp.h"

/* a $close that waits for room after its socket is gone */
typedef struct GwOrphanClose
{
	GatewayWaiter waiter;
	int			db;
	char	   *class_name;
	char	   *id;
	char	   *args;
	int64		socket;
	TimestampTz since;
} GwOrphanClose;

/* a $close that found no room for this long is dropped */
#define ORPHAN_CLOSE_TIMEOUT_US		(60 * USECS_PER_SEC)

static void retry_socket(void *arg);

/* hand a call of s to its host */
static GatewayEnqueueResult
enqueue(GatewayObjSocket *s, const char *method, const char *args, const char *frame_id)
{
	return GatewayEnqueue(GatewaySocketDb(s), GatewaySocketClass(s), GatewaySocketObjectId(s),
						  method, args, s->id, 0, frame_id, GatewayConnAccount(s->conn));
}

/* a call of s the message area cannot store: the socket cannot go on */
static void
refused(GatewayObjSocket *s)
{
	GatewayCloseSocket(s, DURABLE_CLOSE_TRY_AGAIN, "try again later", true);
}

/*
 * dispatch
 *		A whole message of a ready socket: binary, the args of its $message
 *		(binary_args, below); text, an auto_response, an answer of the
 *		gateway (not JSON, a bad call), a call, or $message.  Returns
 *		GATEWAY_WAIT (nothing done) when its call finds no room.
 */
static GatewayEnqueueResult
dispatch(GatewayObjSocket *s, const char *text, size_t len, bool binary)
{
	GatewayFrame frame;
	const char *error;
	GatewayEnqueueResult r = GATEWAY_QUEUED;

	if (binary)
	{
		r = enqueue(s, "$message", text, NULL);
		if (r == GATEWAY_REFUSED)
		{
			refused(s);
			r = GATEWAY_QUEUED;
		}
		return r;
	}
	if (s->has_auto && len == strlen(s->auto_request) &&
		memcmp(text, s->auto_request, len) == 0)
	{
		GatewayBuf	b;

		GatewayBufInit(&b, strlen(s->auto_response));
		GatewayBufAppend(&b, s->auto_response, strlen(s->auto_response));
		GatewaySendText(s, &b);
		return GATEWAY_QUEUED;
	}

	switch (GatewayParseFrame(text, len, &frame, &error))
	{
		case FRAME_NOT_JSON:
			GatewaySendError(s, NULL, DURABLE_STATE_BAD_JSON, "frame is not valid JSON");
			break;
		case FRAME_BAD_CALL:
			GatewaySendError(s, frame.id, DURABLE_STATE_BAD_VALUE, error);
			break;
		case FRAME_CALL:
			r = enqueue(s, frame.method, frame.args, frame.id);
			break;
		case FRAME_OTHER:
			{
				char	   *args = malloc(len + 16);

				if (args == NULL)
				{
					GatewaySendError(s, NULL, DURABLE_STATE_NO_MEMORY, "out of memory");
					break;
				}
				memcpy(args, "{\"data\": ", 9);
				memcpy(args + 9, text, len);
				memcpy(args + 9 + len, "}", 2);
				r = enqueue(s, "$message", args, NULL);
				free(args);
				break;
			}
	}
	GatewayFreeFrame(&frame);
	if (r == GATEWAY_REFUSED)
	{
		refused(s);
		r = GATEWAY_QUEUED;
	}
	return r;
}

/* keep a whole message (text, taken over with its reservation) for later */
static void
hold(GatewayObjSocket *s, char *text, size_t len, bool binary, size_t *reserved)
{
	GwHeld	   *h = malloc(sizeof(GwHeld));

	if (h == NULL)
	{
		free(text);
		GatewayRxRelease(reserved);
		GatewayCloseSocket(s, DURABLE_CLOSE_INTERNAL, "out of memory", true);
		return;
	}
	h->text = text;
	h->len = len;
	h->binary = binary;
	h->reserved = *reserved;
	*reserved = 0;
	h->next = NULL;
	if (s->held_tail)
		s->held_tail->next = h;
	else
		s->held_head = h;
	s->held_tail = h;
	s->nheld++;
	s->held_bytes += len;
	if (!s->ready &&
		(s->nheld >= GATEWAY_MAX_HELD || s->held_bytes >= (size_t) durable_socket_buffer_bytes))
		GatewayConnPause(s->conn, GATEWAY_PAUSE_HELD);
}

/* take the oldest held message off and free it */
static void
drop_held(GatewayObjSocket *s)
{
	GwHeld	   *h = s->held_head;

	s->held_head = h->next;
	if (s->held_head == NULL)
		s->held_tail = NULL;
	s->nheld--;
	s->held_bytes -= h->len;
	free(h->text);
	GatewayRxRelease(&h->reserved);
	free(h);
}

/* wait for room: stop reading and join the backlog */
static void
wait_for_room(GatewayObjSocket *s)
{
	GatewayConnPause(s->conn, GATEWAY_PAUSE_HOST);
	GatewayBacklogAdd(&s->waiter, retry_socket, s);
}

/*
 * drain_held
 *		Hand the held messages of a ready socket on, in order, until one
 *		finds no room.  True when none is left.
 */
static bool
drain_held(GatewayObjSocket *s)
{
	while (s->held_head != NULL && s->close_code == 0)
	{
		if (dispatch(s, s->held_head->text, s->held_head->len, s->held_head->binary) ==
			GATEWAY_WAIT)
			return false;
		drop_held(s);
	}
	while (s->held_head != NULL)
		drop_held(s);			/* closing: they will never run */
	return true;
}

/* $connect of s, once; false if it must wait for room */
static bool
send_connect(GatewayObjSocket *s)
{
	GatewayEnqueueResult r = enqueue(s, "$connect", s->connect_args, NULL);

	if (r == GATEWAY_WAIT)
		return false;
	free(s->connect_args);
	s->connect_args = NULL;
	if (r == GATEWAY_QUEUED)
		s->connect_sent = true;
	else
		refused(s);
	return true;
}

/*
 * retry_socket
 *		The backlog's retry of a socket: its $connect, then its held
 *		messages.  Once everything went, reading resumes.
 */
static void
retry_socket(void *arg)
{
	GatewayObjSocket *s = (GatewayObjSocket *) arg;

	if (s->connect_args != NULL && !send_connect(s))
		return;
	if (s->ready && !drain_held(s))
		return;
	GatewayBacklogRemove(&s->waiter);
	GatewayConnResume(s->conn, GATEWAY_PAUSE_HOST);
}

/*
 * binary_args
 *		The args of the $message of a binary message of len bytes:
 *		{"binary": "<base64>"} (malloc'd; NULL when out of memory).
 */
static char *
binary_args(const char *bytes, size_t len, size_t *args_len)
{
	int			enc = pg_b64_enc_len((int) len);
	char	   *args = malloc(enc + 16);
	int			n;

	if (args == NULL)
		return NULL;
	memcpy(args, "{\"binary\": \"", 12);
	n = len > 0 ? pg_b64_encode(bytes, (int) len, args + 12, enc) : 0;
	if (n < 0)
	{
		free(args);
		return NULL;
	}
	memcpy(args + 12 + n, "\"}", 3);
	*args_len = 12 + n + 2;
	return args;
}

/*
 * message_done
 *		A whole message (s->rx) came, text or binary: hand it on, or hold it.
 */
static void
message_done(GatewayObjSocket *s, bool binary)
{
	DurableGatewayCounters *gw = DurableGatewayStats();
	char	   *text = s->rx;
	size_t		len = s->rx_len;
	size_t		reserved = s->rx_cap;

	pg_atomic_fetch_add_u64(&gw->frames_in, 1);
	pg_atomic_fetch_add_u64(&gw->bytes_in, len);
	s->rx = NULL;
	s->rx_len = s->rx_cap = 0;
	if (binary)
	{
		char	   *args = binary_args(text, len, &len);

		free(text);
		text = args;
		if (text == NULL)
		{
			GatewayRxRelease(&reserved);
			GatewayCloseSocket(s, DURABLE_CLOSE_INTERNAL, "out of memory", true);
			return;
		}
	}
	if (text == NULL)
	{
		/* an empty message */
		if ((text = malloc(1)) == NULL)
		{
			GatewayCloseSocket(s, DURABLE_CLOSE_INTERNAL, "out of memory", true);
			return;
		}
	}
	text[len] = '\0';
	if (!s->ready || s->held_head != NULL || s->waiter.waiting)
	{
		hold(s, text, len, binary, &reserved);
		return;
	}
	if (dispatch(s, text, len, binary) == GATEWAY_WAIT)
	{
		hold(s, text, len, binary, &reserved);
		wait_for_room(s);
		return;
	}
	free(text);
	GatewayRxRelease(&reserved);
}

/* append payload bytes to the message being received */
static bool
append(GatewayObjSocket *s, const unsigned char *data, size_t n)
{
	if (s->rx_len + n + 1 > s->rx_cap)
	{
		size_t		need = s->rx_len + n + 1;
		size_t		cap = Max(Max(s->rx_cap * 2, need), 256);
		size_t		reserved = s->rx_cap;
		size_t		extra;
		char	   *grown;

		cap = Max(Min(cap, (size_t) durable_max_message_bytes + 1), need);
		if (!GatewayRxReserve(&reserved, cap))
		{
			GatewayCloseSocket(s, DURABLE_CLOSE_TRY_AGAIN,
							   "the gateway has no room for more incoming messages", true);
			return false;
		}
		if ((grown = realloc(s->rx, cap)) == NULL)
		{
			extra = reserved - s->rx_cap;
			GatewayRxRelease(&extra);
			GatewayCloseSocket(s, DURABLE_CLOSE_INTERNAL, "out of memory", true);
			return false;
		}
		s->rx = grown;
		s->rx_cap = cap;
	}
	memcpy(s->rx + s->rx_len, data, n);
	s->rx_len += n;
	return true;
}

/*
 * peer_close
 *		The client's Close frame: check it, answer it, end the connection.
 */
static void
peer_close(GatewayObjSocket *s)
{
	int			code;
	int			fault = GatewayWsReadClose(s->parser.control, s->parser.control_len, &code,
										   s->peer_reason);

	if (fault != 0)
	{
		GatewayFailSocket(s, fault, fault == DURABLE_CLOSE_INVALID_DATA ?
						  "close reason is not UTF-8" : "bad close frame");
		return;
	}
	s->peer_closed = true;
	s->peer_code = code;
	if (s->close_sent)
		lws_callback_on_writable(s->conn->wsi);	/* our Close is out: end now */
	else
		GatewayCloseSocket(s, code, "", true);	/* echo its code */
}

/*
 * GatewayWsInput
 *		Bytes from the client of socket s, from *in (*len bytes, advanced
 *		past what was used).  Stops early when the socket stops being read
 *		(the rest is kept by the caller).  Returns the callback's value.
 */
int
GatewayWsInput(GatewayObjSocket *s, unsigned char **in, size_t *len)
{
	GatewayWsParser *p = &s->parser;
	GatewayWsEvent ev = GW_WS_DATA;

	/* until the input is used up (a frame's end comes after its last bytes) */
	while (ev != GW_WS_MORE && s->conn->paused == 0)
	{
		unsigned char *data;
		size_t		n;

		if (s->fail || s->peer_closed)
		{
			*len = 0;			/* nothing more is read */
			break;
		}
		ev = GatewayWsNext(p, in, len, &data, &n);
		switch (ev)
		{
			case GW_WS_MORE:
				break;
			case GW_WS_ERROR:
				GatewayFailSocket(s, p->error, p->error_reason);
				*len = 0;
				ev = GW_WS_MORE;
				break;
			case GW_WS_DATA:
				if (s->close_code != 0)
					break;		/* closing: data is dropped */
				if (p->message == GW_WS_BINARY)
					(void) append(s, data, n);
				else if (!GatewayUtf8Feed(&s->utf8, data, n))
					GatewayFailSocket(s, DURABLE_CLOSE_INVALID_DATA, "text is not UTF-8");
				else
					(void) append(s, data, n);
				break;
			case GW_WS_END:
				if (s->close_code != 0)
					break;
				if (p->ended == GW_WS_BINARY)
					message_done(s, true);
				else if (s->utf8 != 0)
					GatewayFailSocket(s, DURABLE_CLOSE_INVALID_DATA, "text is not UTF-8");
				else
					message_done(s, false);
				s->utf8 = 0;
				break;
			case GW_WS_CONTROL:
				if (p->opcode == GW_WS_CLOSE)
					peer_close(s);
				else if (p->opcode == GW_WS_PING)
					GatewaySendPong(s, p->control, p->control_len);
				break;
		}
	}
	return 0;
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
 *		The messages $connect sent are queued: pass on the messages that came
 *		while it ran, in order.
 */
void
GatewaySocketReady(GatewayObjSocket *s)
{
	s->ready = true;
	GatewayConnResume(s->conn, GATEWAY_PAUSE_HELD);
	if (!s->waiter.waiting && !drain_held(s))
		wait_for_room(s);
}

/*
 * GatewayOpenSocket
 *		The upgrade was answered 101: the socket exists; ask its host to run
 *		$connect (p is freed).
 */
void
GatewayOpenSocket(GatewayConn *c, GwPending *p)
{
	const GatewayClassEntry *entry = GatewayPendingEntry(p);
	GatewayObjSocket *s = calloc(1, sizeof(GatewayObjSocket));

	if (s == NULL ||
		(s->object = GatewayFindObject(entry->db, GatewayPendingClass(p), GatewayPendingId(p),
									   strlen(GatewayPendingId(p)), true)) == NULL)
	{
		free(s);
		GatewayFreePending(p);
		GatewayConnKill(c);
		return;
	}
	s->id = (int64) pg_atomic_add_fetch_u64(&DurableGatewayStats()->next_socket, 1);
	s->conn = c;
	s->has_auto = entry->has_auto_response;
	strlcpy(s->auto_request, entry->auto_request, sizeof(s->auto_request));
	strlcpy(s->auto_response, entry->auto_response, sizeof(s->auto_response));
	GatewayWsInit(&s->parser, (uint64) durable_max_message_bytes);
	GatewayAddSocket(s);
	c->sock = s;
	pg_atomic_fetch_add_u32(&DurableGatewayStats()->sockets_open, 1);

	s->connect_args = GatewayPendingTakeArgs(p);
	GatewayFreePending(p);
	if (!send_connect(s))
		wait_for_room(s);
}

/* the backlog's retry of an orphan $close */
static void
retry_orphan(void *arg)
{
	GwOrphanClose *o = (GwOrphanClose *) arg;

	if (GatewayEnqueue(o->db, o->class_name, o->id, "$close", o->args, o->socket, 0, NULL, 0) ==
		GATEWAY_WAIT &&
		GetCurrentTimestamp() - o->since < ORPHAN_CLOSE_TIMEOUT_US)
		return;
	GatewayBacklogRemove(&o->waiter);
	free(o->class_name);
	free(o->id);
	free(o->args);
	free(o);
}

/*
 * queue_close
 *		$close of a socket that is gone; if there is no room it waits, apart
 *		from the socket, for ORPHAN_CLOSE_TIMEOUT_US at most.
 */
static void
queue_close(GatewayObjSocket *s, char *args)
{
	GwOrphanClose *o;

	if (enqueue(s, "$close", args, NULL) != GATEWAY_WAIT ||
		(o = calloc(1, sizeof(GwOrphanClose))) == NULL)
	{
		free(args);
		return;
	}
	o->db = GatewaySocketDb(s);
	o->class_name = strdup(GatewaySocketClass(s));
	o->id = strdup(GatewaySocketObjectId(s));
	o->args = args;
	o->socket = s->id;
	o->since = GetCurrentTimestamp();
	if (o->class_name == NULL || o->id == NULL)
	{
		free(o->class_name);
		free(o->id);
		free(o->args);
		free(o);
		return;
	}
	GatewayBacklogAdd(&o->waiter, retry_orphan, o);
}

/*
 * GatewaySocketClosed
 *		The connection of s is gone.  Its host runs $close (if $connect
 *		accepted it).
 */
void
GatewaySocketClosed(GatewayObjSocket *s)
{
	int			i;

	/*
	 * Even if $connect has not answered yet: it runs first (one queue per
	 * host), and $close then runs only if it accepted.
	 */
	GatewayBacklogRemove(&s->waiter);
	if (s->connect_sent)
	{
		int			code = s->peer_closed ? s->peer_code :
			(s->close_code ? s->close_code : DURABLE_CLOSE_ABNORMAL);
		const char *reason = s->peer_closed ? s->peer_reason : s->close_reason;
		char	   *args = DurableJsonCloseArgs(s->id, code, reason, s->tags_json);

		if (args)
			queue_close(s, args);
	}

	GatewayRemoveSocket(s);
	GatewayForgetFrames(s);
	while (s->held_head != NULL)
		drop_held(s);
	for (i = 0; i < s->ntags; i++)
		free(s->tags[i]);
	free(s->tags);
	free(s->tags_json);
	free(s->connect_args);
	free(s->rx);
	GatewayRxRelease(&s->rx_cap);
	free(s);
	pg_atomic_fetch_sub_u32(&DurableGatewayStats()->sockets_open, 1);
}
