/*-------------------------------------------------------------------------
 *
 * gateway_objects.c
 *	  The object routes of the gateway: WebSockets and HTTP calls.
 *
 * ws://HOST:PORT/objects/{class}/{id} and POST /objects/{class}/{id}/{method}.
 * Before an upgrade the gateway answers on its own from the class directory
 * in shared memory (404 unknown class, 403 class without the option or
 * Origin not allowed, 503 too many sockets or directory not loaded yet).  An
 * accepted connection becomes a socket with a new id; its host runs
 * "$connect" and the gateway holds the socket's frames until the host says
 * whether it accepted.  Then "call" frames become calls of the object
 * answered by "reply"/"error" frames, other frames go to "$message", and
 * the end of the socket runs "$close".
 *
 * Hosts send their answers and the objects' messages through the gateway
 * queue in shared memory (shmem.c), only after commit.  The gateway drains
 * it when its eventfd fires: a broadcast becomes one frame, serialised once
 * with the object's next sequence number and its WebSocket header, and
 * queued by reference on every socket of the object.  Each socket has an
 * outbound queue (a ring of frame pointers); one that holds more than
 * durable.socket_buffer_bytes is closed (1008) without slowing the others.
 * After each batch of the queue every socket that got frames is written at
 * once, all its frames in one send() (write_queued, flush_dirty); sockets
 * the kernel has no room for wait for lws' writeable callback.
 *
 * Everything here runs inside lws callbacks: memory comes from malloc, and
 * nothing may raise an error.
 *
 * IDENTIFICATION
 *	  src/gateway_objects.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"
#include "gateway.h"
#include "gateway_int.h"
#include "gateway_classes.h"
#include "json.h"

#include <poll.h>
#include <stdlib.h>

#include "common/hashfn.h"

#define SOCKET_BUCKETS		16384
#define OBJECT_BUCKETS		16384
#define MAX_EARLY_FRAMES	64	/* frames held while $connect runs (and at most
								 * durable.socket_buffer_bytes of them) */
#define MAX_HEADERS			16
#define MAX_QUERY			32
#define GATEWAY_DRAIN_BATCH	1024	/* gateway queue messages between flushes */
#define GATEWAY_RING_MIN	8		/* first size of a socket's ring of frames */
#define GATEWAY_RING_KEEP	64		/* a larger ring is freed once empty */
#define GATEWAY_WRITES_PER_TURN 4	/* writes of one socket before the others */

/*
 * A frame shared by the sockets it goes to.  It is kept as it goes on the
 * wire: the WebSocket header (server frames are unmasked, so it is the same
 * for every socket) sits right before the payload, in the LWS_PRE headroom.
 */
typedef struct GwFrame
{
	int			refs;
	uint8		hdr;			/* header bytes before the payload */
	size_t		len;			/* payload bytes */
	unsigned char data[FLEXIBLE_ARRAY_MEMBER];	/* LWS_PRE, then the payload */
} GwFrame;

typedef struct GwEarly
{
	char	   *text;
	size_t		len;
	struct GwEarly *next;
} GwEarly;

typedef struct GwObject GwObject;

struct GatewayObjSocket
{
	int64		id;
	struct lws *wsi;
	GwObject   *object;
	GatewayObjSocket *next_in_object;
	GatewayObjSocket *next_in_bucket;
	bool		connect_sent;	/* its $connect request is with the host */
	bool		accepted;		/* $connect said yes: events may come */
	bool		ready;			/* $connect's own messages are out: frames flow */
	char	   *tags_json;
	char	  **tags;
	int			ntags;
	bool		has_auto;
	char		auto_request[DURABLE_MAX_AUTO_RESPONSE + 1];
	char		auto_response[DURABLE_MAX_AUTO_RESPONSE + 1];
	GwEarly    *early_head;		/* frames before acceptance */
	GwEarly    *early_tail;
	int			nearly;
	size_t		early_bytes;
	GwFrame   **out;			/* ring of frames to write (out_cap slots) */
	uint32		out_cap;		/* a power of two; 0 while there is no ring */
	uint32		out_head;		/* slot of the oldest frame */
	uint32		out_count;		/* frames queued */
	size_t		queued;			/* their payload bytes */
	bool		dirty;			/* on the flush list */
	bool		broken;			/* a write failed: lws is closing it */
	GatewayObjSocket *next_dirty;
	char	   *rx;				/* a frame being received in fragments */
	size_t		rx_len;
	size_t		rx_cap;
	int			close_code;		/* we close it with this code, 0 not */
	char		close_reason[124];
	bool		close_now;		/* without flushing the queue first */
	int			peer_code;		/* the client's close code */
	char		peer_reason[124];
};

struct GwObject
{
	char	   *key;			/* class NUL id NUL */
	size_t		keylen;
	uint64		seq;			/* last event sequence number */
	GatewayObjSocket *sockets;
	GwObject   *next_in_bucket;
};

/* an HTTP call waiting for its host */
struct GatewayHttpCall
{
	struct lws *wsi;
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	char	   *method;
	char	   *body;
	size_t		body_len;
	bool		too_large;
	uint64		token;
	bool		sent;			/* the request is with the host */
	bool		answered;		/* status and response are set */
	unsigned int status;
	char	   *response;		/* JSON */
	GatewayHttpCall *next;
};

/* an upgrade accepted by us, waiting for lws to open the socket */
typedef struct GwPending
{
	struct lws *wsi;
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	char	   *args;
	DurableClassEntry entry;
	struct GwPending *next;
} GwPending;

static GatewayObjSocket **socket_buckets = NULL;
static GwObject **object_buckets = NULL;
static GwPending *pending_upgrades = NULL;

static int	http_body_done(struct lws *wsi, GatewaySession *pss);
static GatewayHttpCall *http_calls = NULL;
static uint64 http_tokens = 0;

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

/* ----------------------------------------------------------------------
 * tables
 * ----------------------------------------------------------------------
 */

/*
 * GatewayObjectsStart
 *		At gateway start, before serving: the tables and the write buffer.
 */
void
GatewayObjectsStart(void)
{
	socket_buckets = calloc(SOCKET_BUCKETS, sizeof(GatewayObjSocket *));
	object_buckets = calloc(OBJECT_BUCKETS, sizeof(GwObject *));
	coalesce_buf = malloc(GATEWAY_TX_PACKET);
	if (socket_buckets == NULL || object_buckets == NULL || coalesce_buf == NULL)
		ereport(FATAL, (errmsg("pg_durable_objects gateway: out of memory")));
}

static GatewayObjSocket *
find_socket(int64 id)
{
	GatewayObjSocket *s = socket_buckets[(uint64) id % SOCKET_BUCKETS];

	while (s && s->id != id)
		s = s->next_in_bucket;
	return s;
}

static uint32
object_hash(const char *key, size_t keylen)
{
	return hash_bytes((const unsigned char *) key, (int) keylen) % OBJECT_BUCKETS;
}

static size_t
object_key(char *buf, const char *class_name, const char *id, size_t idlen)
{
	size_t		clen = strlen(class_name);

	memcpy(buf, class_name, clen + 1);
	memcpy(buf + clen + 1, id, idlen);
	return clen + 1 + idlen;
}

static GwObject *
find_object(const char *class_name, const char *id, size_t idlen, bool create)
{
	char		key[DURABLE_MAX_CLASS_BYTES + 1 + DURABLE_MAX_ID_BYTES];
	size_t		keylen = object_key(key, class_name, id, idlen);
	uint32		b = object_hash(key, keylen);
	GwObject   *o = object_buckets[b];

	while (o && (o->keylen != keylen || memcmp(o->key, key, keylen) != 0))
		o = o->next_in_bucket;
	if (o || !create)
		return o;
	o = calloc(1, sizeof(GwObject));
	if (o == NULL || (o->key = malloc(keylen + 1)) == NULL)
	{
		free(o);
		return NULL;
	}
	memcpy(o->key, key, keylen);
	o->key[keylen] = '\0';		/* the id part is a C string too */
	o->keylen = keylen;
	o->next_in_bucket = object_buckets[b];
	object_buckets[b] = o;
	return o;
}

static void
drop_object_if_empty(GwObject *o)
{
	GwObject  **pp;

	if (o->sockets != NULL)
		return;
	for (pp = &object_buckets[object_hash(o->key, o->keylen)]; *pp; pp = &(*pp)->next_in_bucket)
	{
		if (*pp == o)
		{
			*pp = o->next_in_bucket;
			break;
		}
	}
	free(o->key);
	free(o);
}

/* ----------------------------------------------------------------------
 * frames out
 * ----------------------------------------------------------------------
 */

/*
 * frame_new
 *		A text frame of the payload in text, with its WebSocket header (FIN,
 *		opcode 1, unmasked; 7-, 16- or 64-bit length) in place before it.
 */
static GwFrame *
frame_new(const GatewayBuf *text)
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
	h[0] = 0x81;
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

static void
close_socket(GatewayObjSocket *s, int code, const char *reason, bool now)
{
	if (s->close_code != 0 && !now)
		return;
	s->close_code = code;
	s->close_now = now;
	strlcpy(s->close_reason, reason, sizeof(s->close_reason));
	lws_callback_on_writable(s->wsi);
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
		lws_callback_on_writable(s->wsi);
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
 * queue_frame
 *		Put f on the socket's outbound queue, or close the socket as a slow
 *		consumer if that would go over durable.socket_buffer_bytes.
 */
static void
queue_frame(GatewayObjSocket *s, GwFrame *f)
{
	if (f == NULL || s->close_code != 0 || s->broken)
		return;
	if (s->queued + f->len > (size_t) durable_socket_buffer_bytes)
	{
		pg_atomic_fetch_add_u64(&DurableGateway()->slow_closes, 1);
		close_socket(s, 1008, "slow consumer", true);
		return;
	}
	if (!ring_push(s, f))
	{
		close_socket(s, 1011, "out of memory", true);
		return;
	}
	f->refs++;
	s->queued += f->len;
	socket_kick(s);
}

/* queue a frame made for this socket alone */
static void
send_text(GatewayObjSocket *s, GatewayBuf *text)
{
	GwFrame    *f = frame_new(text);

	GatewayBufFree(text);
	if (f == NULL)
	{
		close_socket(s, 1011, "out of memory", true);
		return;
	}
	queue_frame(s, f);
	if (f->refs == 0)
		free(f);
}

static void
send_error_frame(GatewayObjSocket *s, const char *id_json, const char *code,
				 const char *message, size_t message_len)
{
	GatewayBuf	b;
	char	   *m = strndup(message, message_len);

	GatewayBufInit(&b, 96 + message_len);
	GatewayBufPrintf(&b, "{\"type\":\"error\",\"id\":%s,\"error\":{\"code\":",
					 id_json ? id_json : "null");
	GatewayBufAppendJsonString(&b, code);
	GatewayBufAppend(&b, ",\"message\":", 11);
	GatewayBufAppendJsonString(&b, m ? m : "");
	GatewayBufAppend(&b, "}}", 2);
	free(m);
	send_text(s, &b);
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
	DurableGatewayShared *gw = DurableGateway();
	int			writes;

	for (writes = 0; s->out_count > 0; writes++)
	{
		GwFrame    *f = s->out[s->out_head];
		unsigned char *p = frame_wire(f);
		size_t		len = frame_wire_len(f);
		size_t		payload = f->len;
		uint32		n = 1;

		if (writes == GATEWAY_WRITES_PER_TURN ||
			((writes > 0 || !room_seen) && lws_send_pipe_choked(s->wsi)))
		{
			lws_callback_on_writable(s->wsi);
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
		if (lws_write(s->wsi, p, len, LWS_WRITE_RAW) < 0)
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
		flush_fds[n].fd = lws_get_socket_fd(s->wsi);
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
 *		room (poll_dirty), with a write lws still holds, or that is closing,
 *		waits for its callback.  A write that fails makes lws close the
 *		connection on its next turn (LWS_CALLBACK_CLOSED then cleans up).
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
		if (s->out_count == 0 || s->broken)
			continue;
		if (s->close_code != 0 || s->peer_code != 0 ||
			(polled && !room) || lws_partial_buffered(s->wsi))
			lws_callback_on_writable(s->wsi);
		else if (write_queued(s, room) < 0)
		{
			s->broken = true;
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		}
	}
}

/*
 * write_socket
 *		LWS_CALLBACK_SERVER_WRITEABLE: write queued frames, then close if
 *		asked (once lws has sent everything it holds).
 */
static int
write_socket(struct lws *wsi, GatewayObjSocket *s)
{
	if (s->broken)
		return -1;
	if (!s->close_now)
	{
		if (write_queued(s, true) < 0)
			return -1;
		if (s->out_count > 0)
			return 0;			/* write_queued asked for another callback */
	}
	if (s->close_code != 0)
	{
		if (!s->close_now && lws_partial_buffered(wsi))
		{
			lws_callback_on_writable(wsi);
			return 0;
		}
		lws_close_reason(wsi, (enum lws_close_status) s->close_code,
						 (unsigned char *) s->close_reason, strlen(s->close_reason));
		return -1;
	}
	return 0;
}

/* ----------------------------------------------------------------------
 * requests to hosts
 * ----------------------------------------------------------------------
 */

/*
 * enqueue_request
 *		Hand a request to the host of (class, id).  Never throws; false if the
 *		host's queue is full or shared memory is exhausted.
 */
static bool
enqueue_request(const char *class_name, const char *id, const char *method,
				const char *args, int64 socket, uint64 token, const char *frame_id)
{
	DurableParts parts;
	DurableRequest req;
	char		socket_text[24];
	char		token_text[24];
	uint32		generation;
	const char *data[7];

	snprintf(socket_text, sizeof(socket_text), INT64_FORMAT, socket);
	snprintf(token_text, sizeof(token_text), UINT64_FORMAT, token);
	data[0] = class_name;
	data[1] = id;
	data[2] = method;
	data[3] = args;
	data[4] = socket_text;
	data[5] = token_text;
	data[6] = frame_id;
	DurableMakeParts(&parts, data, 7);

	memset(&req, 0, sizeof(req));
	req.caller = -1;
	req.kind = DURABLE_REQUEST_GATEWAY;
	req.message = DurableMessageStore(&parts);
	if (!DsaPointerIsValid(req.message))
		return false;
	if (!DurableEnqueue(DurableHostFor(class_name, id), &req, &generation))
	{
		DurableMessageFree(req.message);
		return false;
	}
	return true;
}

static const char *
object_class(GatewayObjSocket *s)
{
	return s->object->key;
}

static const char *
object_id(GatewayObjSocket *s)
{
	return s->object->key + strlen(s->object->key) + 1;
}

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
		send_text(s, &b);
		return;
	}

	kind = DurableJsonParseFrame(text, len, &frame, &error);
	switch (kind)
	{
		case FRAME_NOT_JSON:
			send_error_frame(s, NULL, "22P02", "frame is not valid JSON", 23);
			break;
		case FRAME_BAD_CALL:
			send_error_frame(s, frame.id, "22023", error, strlen(error));
			break;
		case FRAME_CALL:
			ok = enqueue_request(object_class(s), object_id(s), frame.method, frame.args,
								 s->id, 0, frame.id);
			if (!ok)
				send_error_frame(s, frame.id, "53400", "the object's host is overloaded", 31);
			break;
		case FRAME_OTHER:
			{
				char	   *args = malloc(len + 16);

				if (args == NULL)
				{
					send_error_frame(s, NULL, "53200", "out of memory", 13);
					break;
				}
				memcpy(args, "{\"data\": ", 9);
				memcpy(args + 9, text, len);
				memcpy(args + 9 + len, "}", 2);
				if (!enqueue_request(object_class(s), object_id(s), "$message", args,
									 s->id, 0, NULL))
					send_error_frame(s, NULL, "53400", "the object's host is overloaded", 31);
				free(args);
				break;
			}
	}
	DurableJsonFreeFrame(&frame);
}

/* ----------------------------------------------------------------------
 * messages from hosts
 * ----------------------------------------------------------------------
 */

static int64
part_int64(const DurableParts *m, int i)
{
	char		buf[32];
	size_t		n;

	if (m->isnull[i])
		return 0;
	n = Min(m->len[i], sizeof(buf) - 1);
	memcpy(buf, m->data[i], n);
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

static bool
part_is(const DurableParts *m, int i, const char *s)
{
	return !m->isnull[i] && m->len[i] == strlen(s) && memcmp(m->data[i], s, m->len[i]) == 0;
}

static void
append_part(GatewayBuf *b, const DurableParts *m, int i, const char *if_null)
{
	if (m->isnull[i])
		GatewayBufAppend(b, if_null, strlen(if_null));
	else
		GatewayBufAppend(b, m->data[i], m->len[i]);
}

static void
append_part_string(GatewayBuf *b, const DurableParts *m, int i)
{
	char	   *s = m->isnull[i] ? NULL : strndup(m->data[i], m->len[i]);

	GatewayBufAppendJsonString(b, s ? s : "");
	free(s);
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

static GwFrame *
event_frame(GwObject *o, const DurableParts *m, int data_part)
{
	GatewayBuf	b;
	GwFrame    *f;

	GatewayBufInit(&b, 48 + m->len[data_part]);
	GatewayBufPrintf(&b, "{\"type\":\"event\",\"seq\":" UINT64_FORMAT ",\"data\":", ++o->seq);
	append_part(&b, m, data_part, "null");
	GatewayBufAppend(&b, "}", 1);
	f = frame_new(&b);
	GatewayBufFree(&b);
	return f;
}

static void
accept_socket(GatewayObjSocket *s, const DurableParts *m)
{
	char	   *tags = strndup(m->data[5], m->len[5]);

	s->accepted = true;
	if (tags)
	{
		s->tags_json = tags;
		s->ntags = DurableJsonTags(tags, &s->tags);
	}
}

/*
 * socket_ready
 *		The messages $connect sent are queued: pass on the frames that came
 *		while it ran, in order.
 */
static void
socket_ready(GatewayObjSocket *s)
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

static void
answer_http(const DurableParts *m, bool is_error)
{
	uint64		token = (uint64) part_int64(m, 2);
	GatewayHttpCall *c;
	GatewayBuf	b;

	for (c = http_calls; c && c->token != token; c = c->next)
		;
	if (c == NULL || c->answered)
		return;
	GatewayBufInit(&b, 64 + m->len[4] + (is_error ? m->len[5] : 0));
	if (is_error)
	{
		char		state[6];

		memcpy(state, m->data[4], Min(m->len[4], 5));
		state[Min(m->len[4], 5)] = '\0';
		GatewayBufAppend(&b, "{\"error\": {\"code\": ", 19);
		GatewayBufAppendJsonString(&b, state);
		GatewayBufAppend(&b, ", \"message\": ", 13);
		append_part_string(&b, m, 5);
		GatewayBufAppend(&b, "}}\n", 3);
		/* the SQLSTATE class says which HTTP status fits */
		c->status = strcmp(state, "42704") == 0 ? 404 :
			strcmp(state, "42501") == 0 ? 403 :
			strcmp(state, "54000") == 0 ? 413 :
			strcmp(state, "57014") == 0 ? 504 :
			strcmp(state, "40P01") == 0 ? 409 :
			strncmp(state, "22", 2) == 0 ? 400 :
			(strncmp(state, "53", 2) == 0 || strncmp(state, "57", 2) == 0 ||
			 strncmp(state, "08", 2) == 0) ? 503 : 500;
	}
	else
	{
		GatewayBufAppend(&b, "{\"result\": ", 11);
		append_part(&b, m, 4, "null");
		GatewayBufAppend(&b, "}\n", 2);
		c->status = 200;
	}
	if (b.failed)
	{
		GatewayBufFree(&b);
		c->status = 500;
		c->response = strdup("{\"error\": {\"code\": \"53200\", \"message\": \"out of memory\"}}\n");
	}
	else
	{
		c->response = strndup((char *) b.data + LWS_PRE, b.len);
		GatewayBufFree(&b);
	}
	c->answered = true;
	lws_callback_on_writable(c->wsi);
}

/*
 * handle_message
 *		One message from a host (see host.c and sockets.c for the shapes).
 */
static void
handle_message(const DurableParts *m, void *arg)
{
	GatewayObjSocket *s;

	if (m->nparts < 2)
		return;
	if (part_is(m, 0, "classes"))
		GatewayClassesReplace(m->data[1], m->len[1]);
	else if (part_is(m, 0, "ready"))
	{
		s = find_socket(part_int64(m, 1));
		if (s != NULL && s->accepted && !s->ready)
			socket_ready(s);
	}
	else if (part_is(m, 0, "connect"))
	{
		s = find_socket(part_int64(m, 1));
		if (s == NULL || s->accepted)
			return;
		if (part_is(m, 2, "t"))
			accept_socket(s, m);
		else
		{
			char	   *reason = strndup(m->data[4], m->len[4]);

			close_socket(s, (int) part_int64(m, 3), reason ? reason : "", true);
			free(reason);
		}
	}
	else if (part_is(m, 0, "reply") || part_is(m, 0, "error"))
	{
		bool		is_error = part_is(m, 0, "error");
		int64		socket = part_int64(m, 1);
		GatewayBuf	b;

		if (socket == 0)
		{
			answer_http(m, is_error);
			return;
		}
		s = find_socket(socket);
		if (s == NULL)
			return;
		GatewayBufInit(&b, 64 + m->len[4] + (is_error ? m->len[5] : 0));
		if (is_error)
		{
			GatewayBufAppend(&b, "{\"type\":\"error\",\"id\":", 21);
			append_part(&b, m, 3, "null");
			GatewayBufAppend(&b, ",\"error\":{\"code\":", 17);
			append_part_string(&b, m, 4);
			GatewayBufAppend(&b, ",\"message\":", 11);
			append_part_string(&b, m, 5);
			GatewayBufAppend(&b, "}}", 2);
		}
		else
		{
			GatewayBufAppend(&b, "{\"type\":\"reply\",\"id\":", 21);
			append_part(&b, m, 3, "null");
			GatewayBufAppend(&b, ",\"result\":", 10);
			append_part(&b, m, 4, "null");
			GatewayBufAppend(&b, "}", 1);
		}
		send_text(s, &b);
	}
	else if (part_is(m, 0, "event") && m->nparts >= 6)
	{
		GwObject   *o;
		GwFrame    *f;
		int64		exclude = part_int64(m, 4);
		char		class_name[DURABLE_MAX_CLASS_BYTES + 1];

		if (m->len[1] > DURABLE_MAX_CLASS_BYTES)
			return;
		memcpy(class_name, m->data[1], m->len[1]);
		class_name[m->len[1]] = '\0';
		o = find_object(class_name, m->data[2], m->len[2], false);
		if (o == NULL)
			return;				/* no socket: nobody to tell */
		f = event_frame(o, m, 5);
		if (f == NULL)
			return;
		f->refs++;				/* hold it while queuing */
		for (s = o->sockets; s; s = s->next_in_object)
		{
			if (!s->accepted || s->id == exclude)
				continue;
			if (!m->isnull[3] && !socket_has_tag(s, m->data[3], m->len[3]))
				continue;
			queue_frame(s, f);
		}
		frame_unref(f);
	}
	else if (part_is(m, 0, "send") && m->nparts >= 3)
	{
		GwFrame    *f;

		s = find_socket(part_int64(m, 1));
		if (s == NULL)
			return;
		f = event_frame(s->object, m, 2);
		if (f == NULL)
			return;
		f->refs++;
		queue_frame(s, f);
		frame_unref(f);
	}
	else if (part_is(m, 0, "close") && m->nparts >= 4)
	{
		char	   *reason;

		s = find_socket(part_int64(m, 1));
		if (s == NULL)
			return;
		reason = strndup(m->data[3], m->len[3]);
		close_socket(s, (int) part_int64(m, 2), reason ? reason : "", false);
		free(reason);
	}
}

/*
 * GatewayObjectsDrain
 *		The wake eventfd fired: handle what the hosts sent, a batch at a time,
 *		and after each batch write every socket it gave frames to.
 */
void
GatewayObjectsDrain(void)
{
	int			n;

	do
	{
		draining = true;
		n = DurableGatewayDrain(handle_message, NULL, GATEWAY_DRAIN_BATCH);
		draining = false;
		flush_dirty();
	} while (n == GATEWAY_DRAIN_BATCH);
}

/* ----------------------------------------------------------------------
 * routes
 * ----------------------------------------------------------------------
 */

/*
 * parse_object_path
 *		/objects/{class}/{id}[/{method}] into its parts.  libwebsockets has
 *		already percent-decoded the path, so the id may contain "/" (sent as
 *		%2F); with want_method the last segment is the method.  Returns false
 *		for anything else.
 */
static bool
parse_object_path(const char *path, char *class_name, char **id, char **method,
				  bool want_method)
{
	const char *p = path + strlen("/objects/");
	const char *slash = strchr(p, '/');
	char	   *rest;
	char	   *last;

	*id = NULL;
	if (method)
		*method = NULL;
	if (strncmp(path, "/objects/", 9) != 0 || slash == NULL ||
		slash - p > DURABLE_MAX_CLASS_BYTES || slash == p)
		return false;
	memcpy(class_name, p, slash - p);
	class_name[slash - p] = '\0';
	rest = strdup(slash + 1);
	if (rest == NULL)
		return false;
	if (want_method)
	{
		last = strrchr(rest, '/');
		if (last == NULL || last[1] == '\0')
		{
			free(rest);
			return false;
		}
		*last = '\0';
		*method = strdup(last + 1);
		if (*method == NULL)
		{
			free(rest);
			return false;
		}
	}
	if (rest[0] == '\0' || strlen(rest) > DURABLE_MAX_ID_BYTES)
	{
		free(rest);
		if (method)
		{
			free(*method);
			*method = NULL;
		}
		return false;
	}
	*id = rest;
	return true;
}

static bool
class_name_ok(const char *name)
{
	size_t		i;

	if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return false;
	for (i = 1; name[i]; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
			  name[i] == '_'))
			return false;
	return i <= DURABLE_MAX_CLASS_BYTES;
}

/*
 * lookup_class
 *		The class entry, or the HTTP status to refuse with: 404 unknown, 503
 *		directory not loaded yet.
 */
static unsigned int
lookup_class(const char *class_name, DurableClassEntry *entry)
{
	bool		loaded;

	if (!class_name_ok(class_name))
		return HTTP_STATUS_NOT_FOUND;
	if (GatewayClassLookup(class_name, entry, &loaded))
		return 0;
	return loaded ? HTTP_STATUS_NOT_FOUND : HTTP_STATUS_SERVICE_UNAVAILABLE;
}

/*
 * origin_allowed
 *		durable.allowed_origins: '' the same host only (or no Origin header),
 *		'*' any, else a comma-separated list of exact origins.
 */
static bool
origin_allowed(struct lws *wsi)
{
	char		origin[256];
	char		host[256];
	const char *list = durable_allowed_origins ? durable_allowed_origins : "";
	const char *o;
	int			n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);

	if (n <= 0)
		return lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) == 0;
	if (strcmp(list, "*") == 0)
		return true;
	if (list[0] == '\0')
	{
		o = strstr(origin, "://");
		if (o == NULL || lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
			return false;
		return strcmp(o + 3, host) == 0;
	}
	for (o = list; *o;)
	{
		const char *end = strchr(o, ',');
		size_t		len = end ? (size_t) (end - o) : strlen(o);

		while (len > 0 && (*o == ' ' || *o == '\t'))
		{
			o++;
			len--;
		}
		while (len > 0 && (o[len - 1] == ' ' || o[len - 1] == '\t'))
			len--;
		if (len == strlen(origin) && strncmp(o, origin, len) == 0)
			return true;
		if (end == NULL)
			break;
		o = end + 1;
	}
	return false;
}

/*
 * connect_args
 *		The args of $connect: the query, some request headers and the peer.
 */
static char *
connect_args(struct lws *wsi)
{
	static const struct
	{
		enum lws_token_indexes token;
		const char *name;
	}			headers[] =
	{
		{WSI_TOKEN_HOST, "host"},
		{WSI_TOKEN_ORIGIN, "origin"},
		{WSI_TOKEN_HTTP_USER_AGENT, "user-agent"},
		{WSI_TOKEN_HTTP_COOKIE, "cookie"},
		{WSI_TOKEN_HTTP_AUTHORIZATION, "authorization"},
		{WSI_TOKEN_HTTP_ACCEPT_LANGUAGE, "accept-language"},
		{WSI_TOKEN_PROTOCOL, "sec-websocket-protocol"},
		{WSI_TOKEN_X_FORWARDED_FOR, "x-forwarded-for"},
		{WSI_TOKEN_HTTP_REFERER, "referer"},
	};
	const char *hnames[MAX_HEADERS];
	const char *hvalues[MAX_HEADERS];
	char	   *hbufs[MAX_HEADERS];
	const char *qnames[MAX_QUERY];
	const char *qvalues[MAX_QUERY];
	char	   *qbufs[MAX_QUERY];
	char		peer[64];
	int			nh = 0;
	int			nq = 0;
	int			i;
	char	   *args;

	for (i = 0; i < (int) lengthof(headers) && nh < MAX_HEADERS; i++)
	{
		int			len = lws_hdr_total_length(wsi, headers[i].token);

		if (len <= 0 || (hbufs[nh] = malloc(len + 1)) == NULL)
			continue;
		if (lws_hdr_copy(wsi, hbufs[nh], len + 1, headers[i].token) < 0)
		{
			free(hbufs[nh]);
			continue;
		}
		hnames[nh] = headers[i].name;
		hvalues[nh] = hbufs[nh];
		nh++;
	}
	for (i = 0; nq < MAX_QUERY; i++)
	{
		char		frag[1024];
		char	   *eq;
		int			len = lws_hdr_copy_fragment(wsi, frag, sizeof(frag),
												WSI_TOKEN_HTTP_URI_ARGS, i);

		if (len < 0)
			break;
		if ((qbufs[nq] = strdup(frag)) == NULL)
			break;
		/* libwebsockets has percent-decoded the fragment already */
		eq = strchr(qbufs[nq], '=');
		if (eq)
			*eq++ = '\0';
		qnames[nq] = qbufs[nq];
		qvalues[nq] = eq ? eq : "";
		nq++;
	}
	peer[0] = '\0';
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	args = DurableJsonConnectArgs(qnames, qvalues, nq, hnames, hvalues, nh, peer);
	for (i = 0; i < nh; i++)
		free(hbufs[i]);
	for (i = 0; i < nq; i++)
		free(qbufs[i]);
	return args;
}

static int
refuse_upgrade(struct lws *wsi, unsigned int status, const char *code, const char *message)
{
	char		body[256];

	snprintf(body, sizeof(body), "{\"error\": {\"code\": \"%s\", \"message\": \"%s\"}}\n",
			 code, message);
	return GatewayRespondNow(wsi, status, "application/json", body);
}

/*
 * GatewayObjectUpgrade
 *		LWS_CALLBACK_HTTP_CONFIRM_UPGRADE of any path: decide before the
 *		upgrade.  Returns 0 to let lws upgrade, 1 after refusing with an HTTP
 *		response, -1 to hang up.
 */
int
GatewayObjectUpgrade(struct lws *wsi, GatewaySession *pss, const char *path)
{
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	DurableClassEntry entry;
	unsigned int status;
	GwPending  *p;

	if (!parse_object_path(path, class_name, &id, NULL, false))
		return refuse_upgrade(wsi, HTTP_STATUS_NOT_FOUND, "42704", "no such object route");
	status = lookup_class(class_name, &entry);
	if (status != 0)
	{
		free(id);
		return refuse_upgrade(wsi, status, status == HTTP_STATUS_NOT_FOUND ? "42704" : "57P03",
							  status == HTTP_STATUS_NOT_FOUND ? "unknown class" :
							  "the server is starting up");
	}
	if (!entry.websocket)
	{
		free(id);
		return refuse_upgrade(wsi, HTTP_STATUS_FORBIDDEN, "42501",
							  "the class does not accept WebSockets");
	}
	if (!origin_allowed(wsi))
	{
		free(id);
		return refuse_upgrade(wsi, HTTP_STATUS_FORBIDDEN, "42501", "origin not allowed");
	}
	if ((int) pg_atomic_read_u32(&DurableGateway()->sockets_open) >= durable_max_sockets)
	{
		free(id);
		return refuse_upgrade(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "53300", "too many sockets");
	}

	p = calloc(1, sizeof(GwPending));
	if (p == NULL || (p->args = connect_args(wsi)) == NULL)
	{
		free(p);
		free(id);
		return -1;
	}
	p->wsi = wsi;
	strlcpy(p->class_name, class_name, sizeof(p->class_name));
	p->id = id;
	p->entry = entry;
	p->next = pending_upgrades;
	pending_upgrades = p;
	return 0;
}

static GwPending *
take_pending(struct lws *wsi)
{
	GwPending **pp;

	for (pp = &pending_upgrades; *pp; pp = &(*pp)->next)
	{
		if ((*pp)->wsi == wsi)
		{
			GwPending  *p = *pp;

			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

static void
free_pending(GwPending *p)
{
	if (p == NULL)
		return;
	free(p->id);
	free(p->args);
	free(p);
}

/*
 * open_socket
 *		LWS_CALLBACK_ESTABLISHED: the socket exists; ask its host to run
 *		$connect.
 */
static int
open_socket(struct lws *wsi, GatewaySession *pss)
{
	GwPending  *p = take_pending(wsi);
	GatewayObjSocket *s;
	uint64		b;

	if (p == NULL || pss == NULL)
	{
		free_pending(p);
		return -1;
	}
	s = calloc(1, sizeof(GatewayObjSocket));
	if (s == NULL ||
		(s->object = find_object(p->class_name, p->id, strlen(p->id), true)) == NULL)
	{
		free(s);
		free_pending(p);
		return -1;
	}
	s->id = (int64) pg_atomic_add_fetch_u64(&DurableGateway()->next_socket, 1);
	s->wsi = wsi;
	s->has_auto = p->entry.has_auto_response;
	strlcpy(s->auto_request, p->entry.auto_request, sizeof(s->auto_request));
	strlcpy(s->auto_response, p->entry.auto_response, sizeof(s->auto_response));
	s->next_in_object = s->object->sockets;
	s->object->sockets = s;
	b = (uint64) s->id % SOCKET_BUCKETS;
	s->next_in_bucket = socket_buckets[b];
	socket_buckets[b] = s;
	pss->sock = s;
	pg_atomic_fetch_add_u32(&DurableGateway()->sockets_open, 1);

	if (enqueue_request(p->class_name, p->id, "$connect", p->args, s->id, 0, NULL))
		s->connect_sent = true;
	else
		close_socket(s, 1013, "try again later", true);
	free_pending(p);
	return 0;
}

/*
 * receive_frame
 *		LWS_CALLBACK_RECEIVE: a piece of a frame.
 */
static int
receive_frame(struct lws *wsi, GatewayObjSocket *s, const char *in, size_t len)
{
	DurableGatewayShared *gw = DurableGateway();

	if (s->close_code != 0)
		return 0;
	if (lws_frame_is_binary(wsi))
	{
		close_socket(s, 1003, "binary frames are not accepted", true);
		return 0;
	}
	if (s->rx_len + len > (size_t) durable_max_message_bytes)
	{
		close_socket(s, 1009, "frame larger than durable.max_message_bytes", true);
		return 0;
	}
	if (s->rx_len + len + 1 > s->rx_cap)
	{
		size_t		cap = Max(s->rx_cap * 2, s->rx_len + len + 1);
		char	   *grown = realloc(s->rx, cap);

		if (grown == NULL)
		{
			close_socket(s, 1011, "out of memory", true);
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
		close_socket(s, 1008, "too many frames before the socket was accepted", true);
	else
	{
		GwEarly    *e = malloc(sizeof(GwEarly));

		if (e == NULL || (e->text = malloc(s->rx_len + 1)) == NULL)
		{
			free(e);
			close_socket(s, 1011, "out of memory", true);
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
 * close_socket_state
 *		LWS_CALLBACK_CLOSED: the socket is gone.  Its host runs $close (if
 *		$connect accepted it).
 */
static void
close_socket_state(GatewayObjSocket *s)
{
	GatewayObjSocket **pp;
	GwObject   *o = s->object;
	GwEarly    *e;
	int			i;

	/*
	 * Even if $connect has not answered yet: it runs first (one queue per
	 * host), and $close then runs only if it accepted.
	 */
	if (s->connect_sent)
	{
		int			code = s->peer_code ? s->peer_code : (s->close_code ? s->close_code : 1006);
		const char *reason = s->peer_code ? s->peer_reason : s->close_reason;
		char	   *args = DurableJsonCloseArgs(s->id, code, reason, s->tags_json);

		if (args)
		{
			(void) enqueue_request(object_class(s), object_id(s), "$close", args, s->id, 0, NULL);
			free(args);
		}
	}

	for (pp = &o->sockets; *pp; pp = &(*pp)->next_in_object)
		if (*pp == s)
		{
			*pp = s->next_in_object;
			break;
		}
	for (pp = &socket_buckets[(uint64) s->id % SOCKET_BUCKETS]; *pp; pp = &(*pp)->next_in_bucket)
		if (*pp == s)
		{
			*pp = s->next_in_bucket;
			break;
		}
	drop_object_if_empty(o);

	if (s->dirty)
		dirty_unlink(s);
	ring_drop(s, s->out_count);
	free(s->out);
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
	pg_atomic_fetch_sub_u32(&DurableGateway()->sockets_open, 1);
}

/* ----------------------------------------------------------------------
 * HTTP calls: POST /objects/{class}/{id}/{method}
 * ----------------------------------------------------------------------
 */

static void
free_http_call(GatewayHttpCall *c)
{
	GatewayHttpCall **pp;

	if (c == NULL)
		return;
	for (pp = &http_calls; *pp; pp = &(*pp)->next)
		if (*pp == c)
		{
			*pp = c->next;
			break;
		}
	free(c->id);
	free(c->method);
	free(c->body);
	free(c->response);
	free(c);
}

/*
 * GatewayObjectRequest
 *		A plain HTTP request under /objects.  POST to a method starts a call
 *		(its body arrives next); a GET of an object's socket URL gets 426.
 */
int
GatewayObjectRequest(struct lws *wsi, GatewaySession *pss, GatewayMethod method,
					 const char *path)
{
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	char	   *mname;
	DurableClassEntry entry;
	unsigned int status;
	GatewayHttpCall *c;

	if (method != GATEWAY_POST)
	{
		if (!parse_object_path(path, class_name, &id, NULL, false))
			return GatewayRespondError(wsi, pss, HTTP_STATUS_NOT_FOUND, "42704",
									   "no such object route", method == GATEWAY_HEAD);
		free(id);
		status = lookup_class(class_name, &entry);
		if (status != 0)
			return GatewayRespondError(wsi, pss, status,
									   status == HTTP_STATUS_NOT_FOUND ? "42704" : "57P03",
									   status == HTTP_STATUS_NOT_FOUND ? "unknown class" :
									   "the server is starting up", method == GATEWAY_HEAD);
		if (!entry.websocket)
			return GatewayRespondError(wsi, pss, HTTP_STATUS_FORBIDDEN, "42501",
									   "the class does not accept WebSockets",
									   method == GATEWAY_HEAD);
		return GatewayRespondError(wsi, pss, 426, "0A000",
								   "this is a WebSocket URL: upgrade the connection, or POST to /objects/{class}/{id}/{method}",
								   method == GATEWAY_HEAD);
	}

	if (!parse_object_path(path, class_name, &id, &mname, true))
		return GatewayRespondError(wsi, pss, HTTP_STATUS_NOT_FOUND, "42704",
								   "no such object route", false);
	status = lookup_class(class_name, &entry);
	if (status == 0 && !entry.http)
		status = HTTP_STATUS_FORBIDDEN;
	if (status != 0 || mname[0] == '$')
	{
		free(id);
		free(mname);
		if (status == HTTP_STATUS_FORBIDDEN)
			return GatewayRespondError(wsi, pss, status, "42501",
									   "the class does not accept HTTP calls", false);
		if (status != 0)
			return GatewayRespondError(wsi, pss, status,
									   status == HTTP_STATUS_NOT_FOUND ? "42704" : "57P03",
									   status == HTTP_STATUS_NOT_FOUND ? "unknown class" :
									   "the server is starting up", false);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_BAD_REQUEST, "22023",
								   "method names starting with \"$\" are reserved for the system",
								   false);
	}

	c = calloc(1, sizeof(GatewayHttpCall));
	if (c == NULL)
	{
		free(id);
		free(mname);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_INTERNAL_SERVER_ERROR, "53200",
								   "out of memory", false);
	}
	c->wsi = wsi;
	strlcpy(c->class_name, class_name, sizeof(c->class_name));
	c->id = id;
	c->method = mname;
	c->token = ++http_tokens;
	c->next = http_calls;
	http_calls = c;
	pss->call = c;

	/* without a body lws announces none: run with {} now */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
	{
		pss->call = NULL;
		free_http_call(c);
		return GatewayRespondError(wsi, pss, 411, "0A000",
								   "send the JSON args with a Content-Length", false);
	}
	{
		char		cl[32];

		if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
			strtol(cl, NULL, 10) == 0)
			return http_body_done(wsi, pss);
	}
	return 0;					/* the body comes next */
}

static int
http_body(struct lws *wsi, GatewaySession *pss, const char *in, size_t len)
{
	GatewayHttpCall *c = pss->call;
	char	   *grown;

	if (c->too_large)
		return 0;
	if (c->body_len + len > (size_t) durable_max_message_bytes)
	{
		c->too_large = true;
		free(c->body);
		c->body = NULL;
		c->body_len = 0;
		return 0;
	}
	grown = realloc(c->body, c->body_len + len + 1);
	if (grown == NULL)
	{
		c->too_large = true;
		return 0;
	}
	c->body = grown;
	memcpy(c->body + c->body_len, in, len);
	c->body_len += len;
	c->body[c->body_len] = '\0';
	return 0;
}

static int
http_body_done(struct lws *wsi, GatewaySession *pss)
{
	GatewayHttpCall *c = pss->call;
	const char *args;

	if (c->too_large)
	{
		pss->call = NULL;
		free_http_call(c);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, "54000",
								   "request body larger than durable.max_message_bytes", false);
	}
	args = (c->body == NULL || c->body_len == 0) ? "{}" : c->body;
	if (!DurableJsonValid(args, strlen(args)) ||
		(c->body_len > 0 && strlen(c->body) != c->body_len))
	{
		pss->call = NULL;
		free_http_call(c);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_BAD_REQUEST, "22P02",
								   "request body is not valid JSON", false);
	}
	if (!enqueue_request(c->class_name, c->id, c->method, args, 0, c->token, NULL))
	{
		pss->call = NULL;
		free_http_call(c);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_SERVICE_UNAVAILABLE, "53400",
								   "the object's host is overloaded", false);
	}
	c->sent = true;
	return 0;
}

static int
http_answer(struct lws *wsi, GatewaySession *pss)
{
	GatewayHttpCall *c = pss->call;
	GatewayBuf	b;

	if (c == NULL || !c->answered)
		return -2;				/* not ours */
	GatewayBufInit(&b, strlen(c->response));
	GatewayBufAppend(&b, c->response, strlen(c->response));
	pss->call = NULL;
	{
		unsigned int status = c->status;

		free_http_call(c);
		return GatewayRespondBuf(wsi, pss, status, "application/json", &b, false, NULL);
	}
}

/*
 * GatewayObjectCallback
 *		The lws events of object routes; true if it handled reason (with the
 *		callback's return value in *result).
 */
bool
GatewayObjectCallback(struct lws *wsi, enum lws_callback_reasons reason,
					  GatewaySession *pss, void *in, size_t len, int *result)
{
	*result = 0;
	switch (reason)
	{
		case LWS_CALLBACK_ESTABLISHED:
			*result = open_socket(wsi, pss);
			return true;

		case LWS_CALLBACK_RECEIVE:
			if (pss == NULL || pss->sock == NULL)
			{
				*result = -1;
				return true;
			}
			*result = receive_frame(wsi, pss->sock, in, len);
			return true;

		case LWS_CALLBACK_SERVER_WRITEABLE:
			if (pss != NULL && pss->sock != NULL)
				*result = write_socket(wsi, pss->sock);
			return true;

		case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
			if (pss != NULL && pss->sock != NULL && in != NULL && len >= 2)
			{
				const unsigned char *b = in;

				pss->sock->peer_code = (b[0] << 8) | b[1];
				strlcpy(pss->sock->peer_reason, (const char *) b + 2,
						Min(len - 1, sizeof(pss->sock->peer_reason)));
			}
			else if (pss != NULL && pss->sock != NULL)
				pss->sock->peer_code = 1005;
			return true;

		case LWS_CALLBACK_CLOSED:
			if (pss != NULL && pss->sock != NULL)
			{
				close_socket_state(pss->sock);
				pss->sock = NULL;
			}
			free_pending(take_pending(wsi));
			return true;

		case LWS_CALLBACK_HTTP_BODY:
			if (pss == NULL || pss->call == NULL)
				return false;
			*result = http_body(wsi, pss, in, len);
			return true;

		case LWS_CALLBACK_HTTP_BODY_COMPLETION:
			if (pss == NULL || pss->call == NULL)
				return false;
			*result = http_body_done(wsi, pss);
			return true;

		case LWS_CALLBACK_HTTP_WRITEABLE:
			if (pss == NULL || pss->call == NULL)
				return false;
			*result = http_answer(wsi, pss);
			if (*result == -2)
			{
				*result = 0;
				return true;	/* still waiting for the host */
			}
			return true;

		case LWS_CALLBACK_CLOSED_HTTP:
			if (pss != NULL && pss->call != NULL)
			{
				/* the client left: a late answer finds no call */
				free_http_call(pss->call);
				pss->call = NULL;
			}
			free_pending(take_pending(wsi));
			return false;

		default:
			return false;
	}
}
