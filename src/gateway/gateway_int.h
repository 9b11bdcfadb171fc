/*-------------------------------------------------------------------------
 *
 * gateway_int.h
 *	  Declarations shared by the files of the gateway worker.
 *
 * The gateway speaks HTTP/1.1 and WebSocket (RFC 6455) itself on lws "raw"
 * sockets: libwebsockets gives it the event loop, accepted connections, TLS,
 * writes that the kernel takes only in part, and timers.  Its files, from
 * the bottom up:
 *	buf.c		growable buffers; the one JSON error body
 *	text.c		UTF-8 validation; the one JSON reader of client input
 *	json.c		jansson, to build the args of lifecycle calls
 *	request.c	the head of an HTTP request: parsing, headers, path, query
 *	wsframe.c	RFC 6455 framing: client frames, control frames, the key
 *	classes.c	its copy of the class directory
 *	registry.c	the tables of sockets and objects
 *	origin.c	which browser origins may call; CORS
 *	routes.c	[/db/{database}]/objects/{class}/{id}: the path, the
 *				database, the class, handing a call to the object's host
 *				(the one place that does)
 *	conn.c		a connection: input kept for later, reading paused and
 *				resumed, writes, timeouts, the end of a connection
 *	backlog.c	calls waiting for room in a host's queue, tried again
 *	response.c	HTTP responses
 *	frames.c	outgoing frames: a socket's queue, fan-out, writes, closes
 *	pages.c		GET /healthz, /metrics and static files
 *	upgrade.c	the checks before a WebSocket upgrade, $connect's args
 *	ws.c		WebSocket sessions: open, frames in, close
 *	http.c		HTTP requests: routing and calls of objects
 *	inbox.c		messages from the hosts
 *	serve.c		a connection's input: requests one at a time, then frames
 *	dispatch.c	the lws callbacks, each inside an error boundary
 *	gateway.c	the worker: setup, event loop, signals
 * Each uses only files above it in this list (test/layers.py checks that no
 * two refer to each other); a file that must make one above it act asks lws
 * for a writeable callback or calls back through a function pointer.  Only
 * these files include libwebsockets.h.  Everything here runs inside lws
 * callbacks: memory comes from malloc, and nothing may raise an error
 * (dispatch.c catches what still does).
 *
 * IDENTIFICATION
 *	  src/gateway/gateway_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_GATEWAY_INT_H
#define DURABLE_GATEWAY_INT_H

#include "gateway/gateway.h"
#include "shared/gateway_link.h"
#include "shared/messages.h"
#include "shared/protocol.h"

#include <signal.h>

#include "datatype/timestamp.h"
#include <libwebsockets.h>

/*
 * The most bytes handed to lws_write() at once (the protocol's
 * tx_packet_size: lws sends longer writes in pieces of this size), so the
 * most bytes of WebSocket frames put together for one write, and the size of
 * a read.
 */
#define GATEWAY_TX_PACKET		65536

/* limits of a request head (request.c) */
#define GATEWAY_MAX_HEAD		16384
#define GATEWAY_MAX_HEADERS		64

/*
 * Time bounds, in seconds (docs/protocol.md lists them; lws checks
 * timeouts once a second).
 */
#define GATEWAY_HEAD_TIMEOUT	10	/* a whole request head, from the connection
									 * or the end of the previous answer */
#define GATEWAY_BODY_TIMEOUT	30	/* a request body, from the end of its head */
#define GATEWAY_WRITE_TIMEOUT	30	/* an answer the client does not read */
#define GATEWAY_CLOSE_TIMEOUT	2	/* from our last bytes (a Close frame or an
									 * answer with Connection: close) until the
									 * TCP connection ends */
#define GATEWAY_QUEUE_TIMEOUT	30	/* an HTTP call waiting for room in its
									 * host's queue (it then did not run) */
#define GATEWAY_ANSWER_MARGIN	30	/* an HTTP call waits for its answer at most
									 * durable.call_timeout plus this */

/* frames held for a socket before it is ready; beyond, reading pauses */
#define GATEWAY_MAX_HELD		64

typedef struct GatewayObjSocket GatewayObjSocket;
typedef struct GatewayHttpCall GatewayHttpCall;
typedef struct GatewayConn GatewayConn;

typedef enum GatewayMethod
{
	GATEWAY_GET,
	GATEWAY_HEAD,
	GATEWAY_POST,
	GATEWAY_OPTIONS,
	GATEWAY_CONNECT,
	GATEWAY_OTHER
} GatewayMethod;

/* per-connection data lws keeps for us (allocated and zeroed by lws) */
typedef struct GatewaySession
{
	GatewayConn *conn;
} GatewaySession;

/* a growable malloc'd buffer with LWS_PRE bytes of headroom; never throws */
typedef struct GatewayBuf
{
	unsigned char *data;		/* LWS_PRE headroom, then the text */
	size_t		len;			/* text bytes */
	size_t		cap;			/* text bytes that fit */
	bool		failed;			/* out of memory: the text is incomplete */
} GatewayBuf;

/* text.c: a top-level member of a JSON object */
typedef struct GatewayJsonMember
{
	const char *name;
	const char *value;			/* its exact text, NULL when absent */
	size_t		len;
} GatewayJsonMember;

typedef enum GatewayFrameKind
{
	FRAME_NOT_JSON,
	FRAME_BAD_CALL,
	FRAME_CALL,
	FRAME_OTHER
} GatewayFrameKind;

typedef struct GatewayFrame
{
	char	   *id;				/* JSON text */
	char	   *method;
	char	   *args;			/* JSON text */
} GatewayFrame;

/* request.c: a parsed request head */
typedef struct GatewayHeader
{
	char	   *name;			/* lower case */
	char	   *value;			/* without the spaces around it */
} GatewayHeader;

typedef struct GatewayRequest
{
	char	   *head;			/* a copy of the head, cut into the strings below */
	GatewayMethod method;
	char	   *method_name;
	char	   *target;			/* as sent */
	char	   *path;			/* percent-decoded, malloc'd (NULL for CONNECT) */
	const char *query;		/* as sent, after "?"; NULL without one */
	int			minor;			/* HTTP/1.minor */
	int			nheaders;
	GatewayHeader headers[GATEWAY_MAX_HEADERS];
	int64		content_length; /* 0 without the header */
	bool		chunked;		/* a Transfer-Encoding was sent */
	bool		keep_alive;
} GatewayRequest;

/* wsframe.c: opcodes, parser events and state */
#define GW_WS_CONTINUATION	0x0
#define GW_WS_TEXT			0x1
#define GW_WS_BINARY		0x2
#define GW_WS_CLOSE			0x8
#define GW_WS_PING			0x9
#define GW_WS_PONG			0xA

typedef enum GatewayWsEvent
{
	GW_WS_MORE,
	GW_WS_DATA,
	GW_WS_END,
	GW_WS_CONTROL,
	GW_WS_ERROR
} GatewayWsEvent;

typedef struct GatewayWsParser
{
	uint8		hdr[14];		/* the header of the frame being read */
	uint8		have;			/* its bytes so far */
	uint8		need;			/* its length, once known (2 before) */
	bool		in_payload;
	bool		fin;
	uint8		opcode;			/* of the current frame */
	uint8		message;		/* opcode of the data message in progress, 0 none */
	uint8		ended;			/* opcode of the message GW_WS_END finished */
	uint8		mask[4];
	uint64		remaining;		/* payload bytes of the frame still to come */
	uint64		offset;			/* payload bytes of the frame seen */
	uint64		message_len;	/* payload bytes of the data message so far */
	uint64		max_message;
	uint8		control[125];	/* the payload of a control frame */
	uint8		control_len;
	int			error;			/* close code of a violation, 0 none */
	const char *error_reason;
} GatewayWsParser;

/* backlog.c: something waiting for room in a host's queue */
typedef void (*GatewayRetryFn) (void *arg);

typedef struct GatewayWaiter
{
	GatewayRetryFn retry;		/* try again; removes the waiter when done */
	void	   *arg;
	bool		waiting;		/* on the backlog */
	struct GatewayWaiter *prev;
	struct GatewayWaiter *next;
} GatewayWaiter;

/* routes.c: what became of a call handed to its host */
typedef enum GatewayEnqueueResult
{
	GATEWAY_QUEUED,				/* on the host's queue */
	GATEWAY_WAIT,				/* no room now (the host's queue, the client's
								 * share or the gateway's part of the message
								 * area): try again later */
	GATEWAY_REFUSED				/* the message area cannot store it */
} GatewayEnqueueResult;

/* a class as the gateway knows it (a copy of its directory entry) */
typedef struct GatewayClassEntry
{
	int			db;				/* the database whose directory has it */
	char		name[DURABLE_MAX_CLASS_BYTES + 1];
	Oid			owner;
	bool		websocket;
	bool		http;
	bool		has_auto_response;
	char		auto_request[DURABLE_MAX_AUTO_RESPONSE + 1];
	char		auto_response[DURABLE_MAX_AUTO_RESPONSE + 1];
} GatewayClassEntry;

/* conn.c: the state of a connection */
typedef enum GatewayConnState
{
	CONN_HEAD,					/* reading a request head */
	CONN_BODY,					/* reading a request body */
	CONN_BUSY,					/* answering a request; the next one waits */
	CONN_WEBSOCKET,				/* upgraded */
	CONN_LINGER					/* our last bytes are out; input is dropped */
} GatewayConnState;

/* reasons not to read a connection (GatewayConnPause) */
#define GATEWAY_PAUSE_BUSY		0x01	/* an HTTP request is being answered */
#define GATEWAY_PAUSE_HOST		0x02	/* a call waits for room (backpressure) */
#define GATEWAY_PAUSE_HELD		0x04	/* enough frames held until $connect answered */

struct GatewayConn
{
	struct lws *wsi;
	GatewayConnState state;
	uint32		account;		/* its share of the message area (area.c) */
	uint32		paused;			/* GATEWAY_PAUSE_* */
	bool		broken;			/* a write failed: lws closes it */
	unsigned char *in;			/* input not handled yet */
	size_t		in_len;
	size_t		in_cap;
	size_t		head_scanned;	/* of in, searched for the end of a head */
	/* the request being read or answered */
	GatewayRequest req;
	bool		have_req;
	char	   *body;			/* the body of an HTTP call (NULL: dropped) */
	size_t		body_len;
	size_t		body_reserved;	/* of the receive budget */
	uint64		body_left;		/* body bytes still to come */
	GatewayHttpCall *call;		/* an HTTP call in flight (http.c) */
	bool		head_only;		/* HEAD: the answer without its body */
	bool		close_after;	/* close once the answer is out */
	const char *cors_origin;	/* Access-Control-Allow-Origin of the answer */
	bool		answered;		/* the answer is written (or being sent) */
	int			file_fd;		/* a static file being sent, -1 none */
	uint64		file_left;
	/* once upgraded */
	GatewayObjSocket *sock;
};

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

/* a whole message of a client, held until it can be handed on */
typedef struct GwHeld
{
	char	   *text;			/* a text message, or a binary one's $message args */
	size_t		len;
	bool		binary;
	size_t		reserved;		/* of the receive budget */
	struct GwHeld *next;
} GwHeld;

typedef struct GwObject GwObject;

struct GatewayObjSocket
{
	int64		id;
	GatewayConn *conn;
	GwObject   *object;
	GatewayObjSocket *next_in_object;
	GatewayObjSocket *next_in_bucket;
	char	   *connect_args;	/* $connect's args while it waits for room */
	bool		connect_sent;	/* its $connect request is with the host */
	bool		accepted;		/* $connect said yes: events may come */
	bool		ready;			/* $connect's own messages are out: frames flow */
	char	   *tags_json;
	char	  **tags;
	int			ntags;
	bool		has_auto;
	char		auto_request[DURABLE_MAX_AUTO_RESPONSE + 1];
	char		auto_response[DURABLE_MAX_AUTO_RESPONSE + 1];
	GwHeld	   *held_head;		/* messages held: before it is ready, or
								 * waiting for room */
	GwHeld	   *held_tail;
	int			nheld;
	size_t		held_bytes;
	GatewayWaiter waiter;		/* on the backlog while a call waits for room */
	/* out */
	GwFrame   **out;			/* ring of frames to write (out_cap slots) */
	uint32		out_cap;		/* a power of two; 0 while there is no ring */
	uint32		out_head;		/* slot of the oldest frame */
	uint32		out_count;		/* frames queued */
	size_t		queued;			/* their payload bytes */
	bool		dirty;			/* on the flush list */
	GatewayObjSocket *next_dirty;
	TimestampTz over_since;		/* queued over durable.socket_buffer_bytes since */
	GatewayObjSocket *next_over;
	GatewayObjSocket *prev_over;
	bool		over;			/* on the list of sockets over the limit */
	bool		pong_pending;	/* a Pong to write (to the latest Ping) */
	uint8		pong_len;
	uint8		pong[125];
	/* in */
	GatewayWsParser parser;
	char	   *rx;				/* the message being received */
	size_t		rx_len;
	size_t		rx_cap;			/* of the receive budget */
	uint32		utf8;			/* streaming UTF-8 state of a text message */
	/* closing */
	int			close_code;		/* we close it with this code, 0 not */
	char		close_reason[DURABLE_MAX_CLOSE_REASON + 1];
	bool		close_now;		/* without writing the queued frames first */
	bool		fail;			/* a protocol error: end TCP right after */
	bool		close_sent;		/* our Close frame is written: nothing after */
	bool		peer_closed;	/* the client's Close frame came */
	int			peer_code;		/* the client's close code */
	char		peer_reason[DURABLE_MAX_CLOSE_REASON + 1];
};

struct GwObject
{
	int			db;				/* its database (durable.database's number) */
	char	   *key;			/* class NUL id NUL */
	size_t		keylen;
	GatewayObjSocket *sockets;
	GwObject   *next_in_bucket;
};


/* buf.c */
extern void GatewayBufInit(GatewayBuf *buf, size_t cap);
extern void GatewayBufAppend(GatewayBuf *buf, const char *s, size_t n);
extern void GatewayBufPrintf(GatewayBuf *buf, const char *fmt,...) pg_attribute_printf(2, 3);
extern void GatewayBufAppendJsonString(GatewayBuf *buf, const char *s);
extern void GatewayBufAppendJsonBytes(GatewayBuf *buf, DurableBytes b);
extern void GatewayBufAppendError(GatewayBuf *buf, const char *sqlstate, const char *message);
extern void GatewayBufAppendErrorBytes(GatewayBuf *buf, DurableBytes sqlstate,
									   DurableBytes message);
extern void GatewayBufFree(GatewayBuf *buf);

/* text.c */
extern bool GatewayUtf8Feed(uint32 *state, const unsigned char *s, size_t len);
extern bool GatewayUtf8Valid(const char *s, size_t len);
extern int	GatewayHexValue(char c);
extern int	GatewayJsonScan(const char *text, size_t len, GatewayJsonMember *members,
							int nmembers);
extern char *GatewayJsonString(const char *raw, size_t len, size_t *outlen);
extern GatewayFrameKind GatewayParseFrame(const char *text, size_t len, GatewayFrame *frame,
										  const char **error);
extern void GatewayFreeFrame(GatewayFrame *frame);
extern bool GatewayJsonValid(const char *text, size_t len);

/* request.c */
extern size_t GatewayRequestHeadEnd(const char *buf, size_t len, size_t from);
extern bool GatewayPercentDecode(const char *s, size_t len, bool plus_is_space, char **out);
extern unsigned int GatewayRequestParse(GatewayRequest *req, const char *head, size_t len,
										const char **why);
extern void GatewayRequestFree(GatewayRequest *req);
extern const char *GatewayRequestHeader(const GatewayRequest *req, const char *name);
extern bool GatewayHeaderHasToken(const char *value, const char *token);
extern bool GatewayQueryNext(const char **cursor, char **name, char **value);

/* wsframe.c */
extern void GatewayWsInit(GatewayWsParser *p, uint64 max_message);
extern GatewayWsEvent GatewayWsNext(GatewayWsParser *p, unsigned char **in, size_t *len,
									unsigned char **data, size_t *data_len);
extern bool GatewayWsCloseCode(int code);
extern int	GatewayWsReadClose(const uint8 *payload, size_t len, int *code, char *reason);
extern size_t GatewayWsControlFrame(uint8 *out, int opcode, const uint8 *payload, size_t len);
extern size_t GatewayWsCloseFrame(uint8 *out, int code, const char *reason);
extern bool GatewayWsAcceptKey(const char *key, char *out);

/* classes.c */
extern void GatewayClassesReplace(int db, const char *data, size_t len);
extern bool GatewayClassLookup(int db, const char *name, GatewayClassEntry *out,
							   bool *is_loaded);
extern bool GatewayClassesLoaded(int db);

/* registry.c */
extern void GatewayRegistryStart(void);
extern GatewayObjSocket *GatewayFindSocket(int64 id);
extern GwObject *GatewayFindObject(int db, const char *class_name, const char *id,
								   size_t idlen, bool create);
extern void GatewayAddSocket(GatewayObjSocket *s);
extern int64 *GatewayAllSocketIds(int *n);
extern void GatewayRemoveSocket(GatewayObjSocket *s);
extern const char *GatewaySocketClass(GatewayObjSocket *s);
extern const char *GatewaySocketObjectId(GatewayObjSocket *s);
extern int	GatewaySocketDb(GatewayObjSocket *s);

/* origin.c */
typedef enum GatewayOrigin
{
	GATEWAY_ORIGIN_NONE,		/* no Origin header: not a browser */
	GATEWAY_ORIGIN_SAME,		/* a loopback page of this gateway (the default rule) */
	GATEWAY_ORIGIN_LISTED,		/* allowed by durable.allowed_origins: gets CORS */
	GATEWAY_ORIGIN_REFUSED
} GatewayOrigin;
extern GatewayOrigin GatewayOriginCheck(const GatewayRequest *req);

/* routes.c */
extern const char *GatewayObjectRoute(const char *path, int *db);
extern bool GatewayParseObjectPath(const char *path, int *db, char *class_name, char **id,
								   char **method, bool want_method);
extern unsigned int GatewayLookupClass(int db, const char *class_name,
									   GatewayClassEntry *entry);
extern const char *GatewayRefusalState(unsigned int status);
extern const char *GatewayRefusalMessage(int db, unsigned int status);
extern void GatewayEnqueueRound(void);
extern GatewayEnqueueResult GatewayEnqueue(int db, const char *class_name, const char *id,
										   const char *method, const char *args,
										   int64 socket, uint64 token, const char *frame_id,
										   uint32 account);

/* conn.c */
extern GatewayConn *GatewayConnOpen(struct lws *wsi);
extern void GatewayConnFree(GatewayConn *c);
extern void GatewayConnPause(GatewayConn *c, uint32 reason);
extern void GatewayConnResume(GatewayConn *c, uint32 reason);
extern bool GatewayConnKeep(GatewayConn *c, const unsigned char *in, size_t len);
extern void GatewayConnTake(GatewayConn *c, size_t n);
extern void GatewayConnTimeout(GatewayConn *c, int seconds);
extern bool GatewayConnWrite(GatewayConn *c, unsigned char *data, size_t len);
extern void GatewayConnAnswered(GatewayConn *c);
extern int	GatewayConnWriteable(GatewayConn *c);
extern void GatewayConnLinger(GatewayConn *c);
extern void GatewayConnKill(GatewayConn *c);
extern bool GatewayRxReserve(size_t *reserved, size_t want);
extern void GatewayRxRelease(size_t *reserved);
extern uint32 GatewayConnAccount(GatewayConn *c);
extern void GatewayCatchError(MemoryContext context, const char *what);

/* backlog.c */
extern void GatewayBacklogStart(struct lws_context *context);
extern void GatewayBacklogAdd(GatewayWaiter *w, GatewayRetryFn retry, void *arg);
extern void GatewayBacklogRemove(GatewayWaiter *w);
extern void GatewayBacklogRetry(void);
extern int	GatewayBacklogLength(void);

/* response.c */
extern int	GatewayRespond(GatewayConn *c, unsigned int status, const char *content_type,
						   GatewayBuf *body, const char *extra_headers);
extern int	GatewayRespondText(GatewayConn *c, unsigned int status, const char *text,
							   const char *extra_headers);
extern int	GatewayRespondError(GatewayConn *c, unsigned int status, const char *sqlstate,
								const char *message);
extern int	GatewayRespondFile(GatewayConn *c, int fd, uint64 size, const char *content_type);
extern void GatewayRespondContinue(GatewayConn *c);
extern bool GatewaySwitchProtocols(GatewayConn *c, const char *accept, const char *protocol);

/* frames.c */
extern void GatewayFramesStart(void);
extern void GatewayFramesTick(void);
extern void GatewayCloseSocket(GatewayObjSocket *s, int code, const char *reason, bool now);
extern void GatewayFailSocket(GatewayObjSocket *s, int code, const char *reason);
extern void GatewayQueueFrame(GatewayObjSocket *s, GwFrame *f);
extern void GatewaySendText(GatewayObjSocket *s, GatewayBuf *text);
extern void GatewaySendError(GatewayObjSocket *s, const char *id_json, const char *code,
							 const char *message);
extern void GatewaySendPong(GatewayObjSocket *s, const uint8 *payload, size_t len);
extern bool GatewayEventFrames(const DurableGatewayMsg *msg, GwFrame **first, GwFrame **second);
extern void GatewaySendGap(GatewayObjSocket *s, int64 oldest);
extern void GatewayFanOut(GwObject *o, GwFrame *f, GwFrame *second, DurableBytes tag,
						  int64 exclude);
extern void GatewaySendFrame(GatewayObjSocket *s, GwFrame *f, GwFrame *second);
extern void GatewayFlushBegin(void);
extern void GatewayFlushEnd(void);
extern int	GatewayWriteSocket(GatewayObjSocket *s);
extern void GatewayForgetFrames(GatewayObjSocket *s);

/* pages.c */
extern int	GatewayHealthz(GatewayConn *c);
extern int	GatewayMetrics(GatewayConn *c);
extern int	GatewayStatic(GatewayConn *c, const char *path);

/* upgrade.c */
typedef struct GwPending GwPending;
extern int	GatewayUpgrade(GatewayConn *c, GwPending **pending);
extern void GatewayFreePending(GwPending *p);
extern const char *GatewayPendingClass(GwPending *p);
extern const char *GatewayPendingId(GwPending *p);
extern char *GatewayPendingTakeArgs(GwPending *p);
extern const GatewayClassEntry *GatewayPendingEntry(GwPending *p);

/* ws.c */
extern void GatewayOpenSocket(GatewayConn *c, GwPending *p);
extern int	GatewayWsInput(GatewayObjSocket *s, unsigned char **in, size_t *len);
extern void GatewaySocketClosed(GatewayObjSocket *s);
extern void GatewaySocketConnected(GatewayObjSocket *s, const DurableGatewayMsg *msg);
extern void GatewaySocketReady(GatewayObjSocket *s);

/* http.c */
extern int	GatewayHttpRequest(GatewayConn *c);
extern int	GatewayHttpBodyDone(GatewayConn *c);
extern void GatewayHttpClosed(GatewayConn *c);
extern void GatewayHttpAnswered(const DurableGatewayMsg *msg);
extern void GatewayHttpTick(void);

/* inbox.c */
extern void GatewayInboxDrain(void);

/* serve.c */
extern int	GatewayServeInput(GatewayConn *c, unsigned char *in, size_t len);

/* pages.c: the open file limit the gateway got */
extern int	gateway_fd_limit;

/* dispatch.c: the protocols, and the flags the event loop acts on */
#define GATEWAY_PROTOCOL		"durable"
#define GATEWAY_WAKE_PROTOCOL	"durable-wake"
#define GATEWAY_PMDEATH_PROTOCOL "durable-pmdeath"
extern volatile sig_atomic_t gateway_stop;
extern volatile sig_atomic_t gateway_reload;
extern bool gateway_postmaster_died;
extern const struct lws_protocols gateway_protocols[];

#endif							/* DURABLE_GATEWAY_INT_H */
