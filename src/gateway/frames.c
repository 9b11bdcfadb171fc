/*-------------------------------------------------------------------------
 *
 * frames.c
 *	  Frames out of the gateway: a socket's queue, fan-out, writes, closes.
 *
 * A broadcast becomes one frame, serialised once with the object's next
 * sequence number and its WebSocket header, and queued by reference on every
 * socket of the object.  Each socket has an outbound queue (a ring of frame
 * pointers).  While the gateway handles a batch of messages from the hosts
 * (GatewayFlushBegin .. End) every socket that gets frames goes on a flush
 * list, and is written once at the end, all its frames in one send()
 * (write_queued, flush_dirty); sockets the kernel has no room for wait for
 * lws' writeable callback.
 *
 * Slow consumers are judged over time, not by one burst: a socket whose
 * queue holds more than durable.socket_buffer_bytes goes on a list, and is
 * closed (1008) if it is still over the limit durable.slow_consumer_timeout
 * later; a queue of SLOW_HARD_FACTOR times the limit closes it at once (the
 * bound on the memory one socket can hold).  Others are not slowed.
 *
 * Control frames.  A Ping is answered with a Pong before the queued frames
 * (one Pong for the latest of several Pings, as RFC 6455 allows).  Closing
 * writes our Close frame (after the queue, or at once for errors), and
 * nothing after it; then the TCP connection ends: right away after an error
 * or once the client's Close came, else when it comes or after
 * GATEWAY_CLOSE_TIMEOUT (conn.c lingers).
 *
 * IDENTIFICATION
 *	  src/gateway/frames.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <poll.h>
#include <stdlib.h>

#include "utils/timestamp.h"

#define GATEWAY_RING_MIN	8		/* first size of a socket's ring of frames */
#define GATEWAY_RING_KEEP	64		/* a larger ring is freed once empty */
#define GATEWAY_WRITES_PER_TURN 4	/* writes of one socket before the others */
#define SLOW_HARD_FACTOR	8		/* a queue this many times the limit closes now */

/*
 * Sockets given frames while the gateway queue is drained, in the order they
 * got their first one; written once each when the batch is handled.
 */
static bool draining = false;
static GatewayObjSocket *dirty_head = NULL;
static GatewayObjSocket *dirty_tail = NULL;

/* where several frames of a socket are put together for one write */
static unsigned char *coalesce_buf = NULL;

/* the flush list's descriptors, for one poll() of them all */
static struct pollfd *flush_fds = NULL;
static int	flush_fds_cap = 0;

/* sockets whose queue is over durable.socket_buffer_bytes */
static GatewayObjSocket *over_head = NULL;

/*
 * GatewayFramesStart
 *		At gateway start, before serving: the write buffer.
 */
void
GatewayFramesStart(void)
{
	coalesce_buf = malloc(GATEWAY_TX_PACKET);
	if (coalesce_buf == NULL)
		ereport(FATAL, (errmsg("pg_durable_objects gateway: out of memory")));
}

/*
 * frame_of
 *		A frame (opcode GW_WS_TEXT or GW_WS_BINARY) of the payload in text,
 *		with its WebSocket header (FIN, unmasked; 7-, 16- or 64-bit length)
 *		in place before it.
 */
static GwFrame *
frame_of(const GatewayBuf *text, int opcode)
{
	GwFrame    *f;
	unsigned char *h;
	uint64		len = text->len;
	int			i;

	if (text->failed)
		return NULL;
	f = malloc(offsetof(GwFrame, data) + LWS_PRE + text->len);
	if (f == NULL)
		return NULL;
	f->refs = 0;
	f->len = text->len;
	memcpy(f->data + LWS_PRE, text->data + LWS_PRE, text->len);

	f->hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
	h = f->data + LWS_PRE - f->hdr;
	h[0] = 0x80 | opcode;
	if (len < 126)
		h[1] = (unsigned char) len;
	else if (len < 65536)
	{
		h[1] = 126;
		h[2] = (unsigned char) (len >> 8);
		h[3] = (unsigned char) len;
	}
	else
	{
		h[1] = 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (unsigned char) (len >> (56 - 8 * i));
	}
	return f;
}

/* a text frame of the payload in text */
static GwFrame *
frame_new(const GatewayBuf *text)
{
	return frame_of(text, GW_WS_TEXT);
}

/* the frame as it goes on the wire: header, then payload */
static inline unsigned char *
frame_wire(GwFrame *f)
{
	return f->data + LWS_PRE - f->hdr;
}

static inline size_t
frame_wire_len(GwFrame *f)
{
	return f->hdr + f->len;
}

static void
frame_unref(GwFrame *f)
{
	if (--f->refs <= 0)
		free(f);
}

/*
 * GatewayCloseSocket
 *		Close the socket with code and reason: after its queued frames, or at
 *		once (now).  A later request without now does not change the first.
 */
void
GatewayCloseSocket(GatewayObjSocket *s, int code, const char *reason, bool now)
{
	if (s->close_sent || (s->close_code != 0 && (!now || s->close_now)))
		return;
	s->close_code = code;
	s->close_now = now;
	strlcpy(s->close_reason, reason, sizeof(s->close_reason));
	lws_callback_on_writable(s->conn->wsi);
	/*
	 * A client that does not read (a slow consumer) may never let our Close
	 * out: its connection ends GATEWAY_CLOSE_TIMEOUT later all the same (the
	 * Close going out sets the wait for the client's anew).
	 */
	if (now)
		GatewayConnTimeout(s->conn, GATEWAY_CLOSE_TIMEOUT);
}

/*
 * GatewayFailSocket
 *		Fail the WebSocket connection (RFC 6455 section 7.1.7) for a
 *		protocol error: Close with code and reason at once, then the end of
 *		the TCP connection; what the client sends meanwhile is dropped.
 */
void
GatewayFailSocket(GatewayObjSocket *s, int code, const char *reason)
{
	if (s->fail || s->close_sent)
		return;
	pg_atomic_fetch_add_u64(&DurableGatewayStats()->protocol_closes, 1);
	s->close_code = 0;
	GatewayCloseSocket(s, code, reason, true);
	s->fail = true;
}

/* off the list of sockets over the limit */
static void
over_unlink(GatewayObjSocket *s)
{
	if (!s->over)
		return;
	if (s->prev_over)
		s->prev_over->next_over = s->next_over;
	else
		over_head = s->next_over;
	if (s->next_over)
		s->next_over->prev_over = s->prev_over;
	s->next_over = s->prev_over = NULL;
	s->over = false;
}

/* the socket's queue went over the limit: on the list, with the time */
static void
over_link(GatewayObjSocket *s)
{
	if (s->over)
		return;
	s->over = true;
	s->over_since = GetCurrentTimestamp();
	s->prev_over = NULL;
	s->next_over = over_head;
	if (over_head)
		over_head->prev_over = s;
	over_head = s;
}

/* close s as a slow consumer */
static void
slow_close(GatewayObjSocket *s)
{
	over_unlink(s);
	pg_atomic_fetch_add_u64(&DurableGatewayStats()->slow_closes, 1);
	GatewayCloseSocket(s, DURABLE_CLOSE_POLICY, "slow consumer", true);
}

/*
 * GatewayFramesTick
 *		Once a second: close the sockets that stayed over the limit for
 *		durable.slow_consumer_timeout.
 */
void
GatewayFramesTick(void)
{
	TimestampTz now = GetCurrentTimestamp();
	GatewayObjSocket *s;
	GatewayObjSocket *next;

	for (s = over_head; s != NULL; s = next)
	{
		next = s->next_over;
		if (now - s->over_since >= (int64) durable_slow_consumer_timeout * 1000)
			slow_close(s);
	}
}

/*
 * ring_push
 *		Append f to the socket's ring of frames, growing it (doubling) when
 *		full.  False when out of memory.
 */
static bool
ring_push(GatewayObjSocket *s, GwFrame *f)
{
	if (s->out_count == s->out_cap)
	{
		uint32		cap = s->out_cap ? s->out_cap * 2 : GATEWAY_RING_MIN;
		GwFrame   **grown = malloc(cap * sizeof(GwFrame *));
		uint32		i;

		if (grown == NULL)
			return false;
		for (i = 0; i < s->out_count; i++)
			grown[i] = s->out[(s->out_head + i) & (s->out_cap - 1)];
		free(s->out);
		s->out = grown;
		s->out_cap = cap;
		s->out_head = 0;
	}
	s->out[(s->out_head + s->out_count) & (s->out_cap - 1)] = f;
	s->out_count++;
	return true;
}

/*
 * ring_drop
 *		Take the n oldest frames off the socket's ring and let go of them.  An
 *		emptied ring that grew large is freed, so that an idle socket holds
 *		little memory.
 */
static void
ring_drop(GatewayObjSocket *s, uint32 n)
{
	while (n-- > 0)
	{
		GwFrame    *f = s->out[s->out_head];

		s->out_head = (s->out_head + 1) & (s->out_cap - 1);
		s->out_count--;
		s->queued -= f->len;
		frame_unref(f);
	}
	if (s->queued <= (size_t) durable_socket_buffer_bytes)
		over_unlink(s);
	if (s->out_count == 0)
	{
		s->out_head = 0;
		if (s->out_cap > GATEWAY_RING_KEEP)
		{
			free(s->out);
			s->out = NULL;
			s->out_cap = 0;
		}
	}
}

/*
 * socket_kick
 *		The socket has frames to write.  While the gateway queue is drained it
 *		goes on the flush list (written once when the batch is handled, see
 *		flush_dirty); otherwise lws calls its writeable callback.
 */
static void
socket_kick(GatewayObjSocket *s)
{
	if (!draining)
	{
		lws_callback_on_writable(s->conn->wsi);
		return;
	}
	if (s->dirty)
		return;
	s->dirty = true;
	s->next_dirty = NULL;
	if (dirty_tail)
		dirty_tail->next_dirty = s;
	else
		dirty_head = s;
	dirty_tail = s;
}

/*
 * dirty_unlink
 *		Take s off the flush list.  (Sockets close between batches, when the
 *		list is empty; this keeps it right should lws ever close one during a
 *		flush.)
 */
static void
dirty_unlink(GatewayObjSocket *s)
{
	GatewayObjSocket *prev = NULL;
	GatewayObjSocket *d;

	for (d = dirty_head; d && d != s; d = d->next_dirty)
		prev = d;
	if (d == NULL)
		return;
	if (prev)
		prev->next_dirty = s->next_dirty;
	else
		dirty_head = s->next_dirty;
	if (dirty_tail == s)
		dirty_tail = prev;
	s->dirty = false;
	s->next_dirty = NULL;
}

/*
 * GatewayQueueFrame
 *		Put f on the socket's outbound queue.  Over durable.socket_buffer_
 *		bytes the socket's time starts to run (GatewayFramesTick); over
 *		SLOW_HARD_FACTOR times that it is closed as a slow consumer at once.
 */
void
GatewayQueueFrame(GatewayObjSocket *s, GwFrame *f)
{
	if (f == NULL || s->close_code != 0 || s->conn->broken)
		return;
	if (s->queued + f->len > (size_t) durable_socket_buffer_bytes * SLOW_HARD_FACTOR)
	{
		slow_close(s);
		return;
	}
	if (!ring_push(s, f))
	{
		GatewayCloseSocket(s, DURABLE_CLOSE_INTERNAL, "out of memory", true);
		return;
	}
	f->refs++;
	s->queued += f->len;
	if (s->queued > (size_t) durable_socket_buffer_bytes)
		over_link(s);
	socket_kick(s);
}

/* queue a frame made for this socket alone */
void
GatewaySendText(GatewayObjSocket *s, GatewayBuf *text)
{
	GwFrame    *f = frame_new(text);

	GatewayBufFree(text);
	if (f == NULL)
	{
		GatewayCloseSocket(s, DURABLE_CLOSE_INTERNAL, "out of memory", true);
		return;
	}
	GatewayQueueFrame(s, f);
	if (f->refs == 0)
		free(f);
}

/*
 * GatewaySendError
 *		An error frame to one socket: {"type":"error","id":...,"error":{...}}.
 */
void
GatewaySendError(GatewayObjSocket *s, const char *id_json, const char *code,
				 const char *message)
{
	GatewayBuf	b;

	GatewayBufInit(&b, 96 + strlen(message));
	GatewayBufPrintf(&b, "{\"type\":\"error\",\"id\":%s,", id_json ? id_json : "null");
	GatewayBufAppendError(&b, code, message);
	GatewayBufAppend(&b, "}", 1);
	GatewaySendText(s, &b);
}

/*
 * GatewaySendPong
 *		Answer a Ping: a Pong with its payload goes out before the queued
 *		frames; if one is still waiting, this Ping's replaces it.
 */
void
GatewaySendPong(GatewayObjSocket *s, const uint8 *payload, size_t len)
{
	if (s->close_code != 0)
		return;
	s->pong_pending = true;
	s->pong_len = (uint8) Min(len, sizeof(s->pong));
	memcpy(s->pong, payload, s->pong_len);
	lws_callback_on_writable(s->conn->wsi);
}

/*
 * write_queued
 *		Hand the socket's queued frames to lws, several per write: the oldest
 *		frames that fit together in GATEWAY_TX_PACKET bytes are copied into
 *		one buffer and written with one lws_write(LWS_WRITE_RAW), that is one
 *		send() (or one SSL_write); a single frame, or one too large for the
 *		buffer, is written from the frame itself.  The frames carry their own
 *		WebSocket headers, so lws adds nothing.
 *
 *		Like lws' own writers, it writes only while the kernel reports room
 *		(lws_send_pipe_choked: a poll() of the socket, skipped for the first
 *		write when the caller has just seen the room: in the writeable
 *		callback, or after flush_dirty's poll), so that a consumer who
 *		stopped reading leaves its frames in our queue,
 *		where durable.socket_buffer_bytes counts them, and its 1008 close goes
 *		out at the next POLLOUT.  If the kernel takes only part of a write,
 *		lws keeps the rest and sends it before anything else.  At most
 *		GATEWAY_WRITES_PER_TURN writes at a time, so that one busy socket does
 *		not starve the others.  Whatever is left waits for the writeable
 *		callback.  May run inside or outside the socket's writeable callback
 *		(HTTP/1.1 WebSockets only).  Returns -1 if the connection failed.
 */
static int
write_queued(GatewayObjSocket *s, bool room_seen)
{
	DurableGatewayCounters *gw = DurableGatewayStats();
	int			writes;

	for (writes = 0; s->out_count > 0; writes++)
	{
		GwFrame    *f = s->out[s->out_head];
		unsigned char *p = frame_wire(f);
		size_t		len = frame_wire_len(f);
		size_t		payload = f->len;
		uint32		n = 1;

		if (writes == GATEWAY_WRITES_PER_TURN ||
			((writes > 0 || !room_seen) && lws_send_pipe_choked(s->conn->wsi)))
		{
			lws_callback_on_writable(s->conn->wsi);
			return 0;
		}
		if (s->out_count > 1 &&
			len + frame_wire_len(s->out[(s->out_head + 1) & (s->out_cap - 1)]) <= GATEWAY_TX_PACKET)
		{
			/* put the frames that fit together */
			memcpy(coalesce_buf, p, len);
			for (; n < s->out_count; n++)
			{
				GwFrame    *next = s->out[(s->out_head + n) & (s->out_cap - 1)];

				if (len + frame_wire_len(next) > GATEWAY_TX_PACKET)
					break;
				memcpy(coalesce_buf + len, frame_wire(next), frame_wire_len(next));
				len += frame_wire_len(next);
				payload += next->len;
			}
			p = coalesce_buf;
		}
		if (!GatewayConnWrite(s->conn, p, len))
			return -1;
		pg_atomic_fetch_add_u64(&gw->frames_out, n);
		pg_atomic_fetch_add_u64(&gw->bytes_out, payload);
		ring_drop(s, n);
	}
	return 0;
}

/*
 * poll_dirty
 *		Which sockets of the flush list have room to write: one poll() with a
 *		zero timeout for all of them, instead of one per socket.  Returns
 *		false (and each write checks on its own) when the array cannot grow.
 */
static bool
poll_dirty(void)
{
	GatewayObjSocket *s;
	int			n = 0;

	for (s = dirty_head; s; s = s->next_dirty)
		n++;
	if (n > flush_fds_cap)
	{
		int			cap = Max(n, flush_fds_cap * 2);
		struct pollfd *grown = realloc(flush_fds, cap * sizeof(struct pollfd));

		if (grown == NULL)
			return false;
		flush_fds = grown;
		flush_fds_cap = cap;
	}
	n = 0;
	for (s = dirty_head; s; s = s->next_dirty)
	{
		flush_fds[n].fd = lws_get_socket_fd(s->conn->wsi);
		flush_fds[n].events = POLLOUT;
		flush_fds[n].revents = 0;
		n++;
	}
	return poll(flush_fds, n, 0) >= 0;
}

/*
 * flush_dirty
 *		After a batch of the gateway queue: write each socket that got frames
 *		right away, once, with all its frames (write_queued), instead of
 *		asking lws for a writeable callback per socket.  A socket without
 *		room (poll_dirty), with a write lws still holds, with a Pong to send
 *		or that is closing, waits for its callback.  A write that fails makes
 *		lws close the connection on its next turn (conn.c).
 */
static void
flush_dirty(void)
{
	GatewayObjSocket *s;
	bool		polled;
	int			i;

	if (dirty_head == NULL)
		return;
	polled = poll_dirty();
	for (i = 0; (s = dirty_head) != NULL; i++)
	{
		bool		room = polled && (flush_fds[i].revents & POLLOUT) != 0;

		dirty_head = s->next_dirty;
		if (dirty_head == NULL)
			dirty_tail = NULL;
		s->dirty = false;
		s->next_dirty = NULL;
		if (s->out_count == 0 || s->conn->broken)
			continue;
		if (s->close_code != 0 || s->pong_pending ||
			(polled && !room) || lws_partial_buffered(s->conn->wsi))
			lws_callback_on_writable(s->conn->wsi);
		else
			(void) write_queued(s, room);	/* a failure kills the connection */
	}
}

/* write one control frame; false if the connection failed */
static bool
write_control(GatewayObjSocket *s, uint8 *frame, size_t len)
{
	return GatewayConnWrite(s->conn, frame, len);
}

/*
 * GatewayWriteSocket
 *		LWS_CALLBACK_RAW_WRITEABLE of a WebSocket: a Pong, the queued frames,
 *		then our Close frame if one is due, then the end of the connection
 *		(conn.c) once lws has sent it all.  Returns the callback's value.
 */
int
GatewayWriteSocket(GatewayObjSocket *s)
{
	GatewayConn *c = s->conn;
	struct lws *wsi = c->wsi;
	uint8		frame[LWS_PRE + 128];

	if (c->broken)
		return -1;
	if (s->close_sent)
	{
		/* nothing after our Close; end TCP once it is out and it is time */
		if ((s->fail || s->peer_closed) && c->state != CONN_LINGER)
		{
			if (lws_partial_buffered(wsi))
				lws_callback_on_writable(wsi);
			else
				GatewayConnLinger(c);
		}
		return 0;
	}
	if (s->pong_pending && s->close_code == 0)
	{
		s->pong_pending = false;
		if (!write_control(s, frame + LWS_PRE,
						   GatewayWsControlFrame(frame + LWS_PRE, GW_WS_PONG, s->pong,
												 s->pong_len)))
			return -1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (!s->close_now)
	{
		if (write_queued(s, true) < 0)
			return -1;
		if (s->out_count > 0)
			return 0;			/* write_queued asked for another callback */
	}
	if (s->close_code == 0)
		return 0;
	if (lws_partial_buffered(wsi))
	{
		lws_callback_on_writable(wsi);
		return 0;
	}

	/* our Close frame: no code when the client's Close had none */
	if (!write_control(s, frame + LWS_PRE,
					   s->close_code == DURABLE_CLOSE_NO_STATUS ?
					   GatewayWsControlFrame(frame + LWS_PRE, GW_WS_CLOSE, NULL, 0) :
					   GatewayWsCloseFrame(frame + LWS_PRE, s->close_code, s->close_reason)))
		return -1;
	s->close_sent = true;
	ring_drop(s, s->out_count);
	if (s->fail || s->peer_closed)
		lws_callback_on_writable(wsi);	/* then linger */
	else
		GatewayConnTimeout(c, GATEWAY_CLOSE_TIMEOUT);	/* for the client's Close */
	return 0;
}

/*
 * GatewayEventFrames
 *		The frames of event msg (EVENT or SEND): {"type":"event","seq":N,
 *		"data":...} for JSON, or for bytes {"type":"binary","seq":N} and then
 *		a binary frame of them (*second; NULL for JSON).  False when out of
 *		memory.
 */
bool
GatewayEventFrames(const DurableGatewayMsg *msg, GwFrame **first, GwFrame **second)
{
	GatewayBuf	b;

	*second = NULL;
	GatewayBufInit(&b, 48 + (msg->binary ? 0 : msg->data.len));
	GatewayBufPrintf(&b, "{\"type\":\"%s\",\"seq\":" INT64_FORMAT,
					 msg->binary ? "binary" : "event", msg->seq);
	if (!msg->binary)
	{
		GatewayBufAppend(&b, ",\"data\":", 8);
		if (msg->data.data)
			GatewayBufAppend(&b, msg->data.data, msg->data.len);
		else
			GatewayBufAppend(&b, "null", 4);
	}
	GatewayBufAppend(&b, "}", 1);
	*first = frame_new(&b);
	GatewayBufFree(&b);
	if (*first == NULL || !msg->binary)
		return *first != NULL;

	GatewayBufInit(&b, msg->data.len);
	if (msg->data.len > 0)
		GatewayBufAppend(&b, msg->data.data, msg->data.len);
	*second = frame_of(&b, GW_WS_BINARY);
	GatewayBufFree(&b);
	if (*second == NULL)
	{
		free(*first);
		*first = NULL;
		return false;
	}
	return true;
}

/*
 * GatewaySendGap
 *		{"type":"gap","oldest":M}: a resumed socket missed events no longer
 *		kept; M is the oldest that is.
 */
void
GatewaySendGap(GatewayObjSocket *s, int64 oldest)
{
	GatewayBuf	b;

	GatewayBufInit(&b, 48);
	GatewayBufPrintf(&b, "{\"type\":\"gap\",\"oldest\":" INT64_FORMAT "}", oldest);
	GatewaySendText(s, &b);
}

static bool
socket_has_tag(GatewayObjSocket *s, const char *tag, size_t len)
{
	int			i;

	for (i = 0; i < s->ntags; i++)
		if (strlen(s->tags[i]) == len && memcmp(s->tags[i], tag, len) == 0)
			return true;
	return false;
}

/*
 * GatewayFanOut
 *		Queue frame f, and then second (if not NULL), made for this object, on
 *		every accepted socket of the object, but exclude (0: none), and only
 *		those with tag (NULL: all).
 */
void
GatewayFanOut(GwObject *o, GwFrame *f, GwFrame *second, DurableBytes tag, int64 exclude)
{
	GatewayObjSocket *s;

	f->refs++;					/* hold them while queuing */
	if (second)
		second->refs++;
	for (s = o->sockets; s; s = s->next_in_object)
	{
		if (!s->accepted || s->id == exclude)
			continue;
		if (tag.data != NULL && !socket_has_tag(s, tag.data, tag.len))
			continue;
		GatewayQueueFrame(s, f);
		if (second)
			GatewayQueueFrame(s, second);
	}
	frame_unref(f);
	if (second)
		frame_unref(second);
}

/*
 * GatewaySendFrame
 *		Queue frame f, and then second (if not NULL), on one socket, freeing
 *		them if nobody took them.
 */
void
GatewaySendFrame(GatewayObjSocket *s, GwFrame *f, GwFrame *second)
{
	f->refs++;
	GatewayQueueFrame(s, f);
	frame_unref(f);
	if (second)
	{
		second->refs++;
		GatewayQueueFrame(s, second);
		frame_unref(second);
	}
}

/*
 * GatewayFlushBegin / GatewayFlushEnd
 *		Around a batch of messages from the hosts: sockets given frames are
 *		written once at the end (flush_dirty) instead of one callback each.
 */
void
GatewayFlushBegin(void)
{
	draining = true;
}

void
GatewayFlushEnd(void)
{
	draining = false;
	flush_dirty();
}

/*
 * GatewayForgetFrames
 *		The socket is gone: let go of its queue.
 */
void
GatewayForgetFrames(GatewayObjSocket *s)
{
	if (s->dirty)
		dirty_unlink(s);
	over_unlink(s);
	ring_drop(s, s->out_count);
	free(s->out);
	s->out = NULL;
}
