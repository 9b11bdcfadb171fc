/*-------------------------------------------------------------------------
 *
 * gateway_int.h
 *	  Declarations shared by the files of the gateway worker.
 *
 * The gateway's files, from the bottom up:
 *	buf.c		growable buffers and HTTP responses (one JSON error body)
 *	classes.c	its copy of the class directory
 *	json.c		jansson (a file of its own: its json_object clashes with PG)
 *	registry.c	the tables of sockets and objects
 *	routes.c	/objects/{class}/{id}: the path, the class, handing a call
 *				to the object's host
 *	frames.c	outgoing frames: a socket's queue, fan-out, writes, closes
 *	pages.c		GET /healthz, /metrics and static files
 *	upgrade.c	the checks before a WebSocket upgrade, $connect's args
 *	ws.c		WebSocket sessions: open, frames in, close
 *	http.c		HTTP requests: routing and calls of objects
 *	inbox.c		messages from the hosts
 *	dispatch.c	the lws callbacks, one switch
 *	gateway.c	the worker: setup, event loop, signals
 * Each uses only files above it in this list.  Only these files include
 * libwebsockets.h.  Everything here runs inside lws callbacks: memory comes
 * from malloc, and nothing may raise an error.
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
#include <libwebsockets.h>

/* body bytes handed to lws_write() per writeable callback */
#define GATEWAY_WRITE_CHUNK		16384

/*
 * The most lws sends with one send() (the protocol's tx_packet_size; lws
 * keeps the rest of a longer write and sends it later), and so the most
 * bytes of WebSocket frames put together for one write.
 */
#define GATEWAY_TX_PACKET		65536

typedef struct GatewayObjSocket GatewayObjSocket;
typedef struct GatewayHttpCall GatewayHttpCall;

typedef enum GatewayMethod
{
	GATEWAY_GET,
	GATEWAY_HEAD,
	GATEWAY_POST,
	GATEWAY_OTHER
} GatewayMethod;

/* per-connection state of an HTTP connection (allocated and zeroed by lws) */
typedef struct GatewaySession
{
	unsigned char *out;			/* malloc'd response body, LWS_PRE headroom */
	size_t		out_len;		/* body bytes */
	size_t		out_sent;		/* body bytes written so far */
	bool		close_after;	/* close the connection after the response */
	GatewayObjSocket *sock;		/* an object's WebSocket, once upgraded */
	GatewayHttpCall *call;		/* an HTTP call of an object in flight */
} GatewaySession;

/* a growable malloc'd buffer with LWS_PRE bytes of headroom; never throws */
typedef struct GatewayBuf
{
	unsigned char *data;		/* LWS_PRE headroom, then the text */
	size_t		len;			/* text bytes */
	size_t		cap;			/* text bytes that fit */
	bool		failed;			/* out of memory: the text is incomplete */
} GatewayBuf;

/* a class as the gateway knows it (a copy of its directory entry) */
typedef struct GatewayClassEntry
{
	char		name[DURABLE_MAX_CLASS_BYTES + 1];
	Oid			owner;
	bool		websocket;
	bool		http;
	bool		has_auto_response;
	char		auto_request[DURABLE_MAX_AUTO_RESPONSE + 1];
	char		auto_response[DURABLE_MAX_AUTO_RESPONSE + 1];
} GatewayClassEntry;

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
	char		close_reason[DURABLE_MAX_CLOSE_REASON + 1];
	bool		close_now;		/* without flushing the queue first */
	int			peer_code;		/* the client's close code */
	char		peer_reason[DURABLE_MAX_CLOSE_REASON + 1];
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
extern void GatewaySessionReset(GatewaySession *pss);
extern int	GatewayRespondBuf(struct lws *wsi, GatewaySession *pss, unsigned int status,
							  const char *content_type, GatewayBuf *buf, bool head_only,
							  const char *allow);
extern int	GatewayRespondNow(struct lws *wsi, unsigned int status, const char *content_type,
							  const char *body);
extern int	GatewayRespondText(struct lws *wsi, GatewaySession *pss, unsigned int status,
							   const char *text, bool head_only, const char *allow);
extern int	GatewayRespondError(struct lws *wsi, GatewaySession *pss, unsigned int status,
								const char *sqlstate, const char *message, bool head_only);
extern int	GatewayWriteBody(struct lws *wsi, GatewaySession *pss);
extern int	GatewayResponseDone(struct lws *wsi, GatewaySession *pss);

/* classes.c */
extern void GatewayClassesReplace(const char *data, size_t len);
extern bool GatewayClassLookup(const char *name, GatewayClassEntry *out, bool *is_loaded);
extern bool GatewayClassesLoaded(void);

/* registry.c */
extern void GatewayRegistryStart(void);
extern GatewayObjSocket *GatewayFindSocket(int64 id);
extern GwObject *GatewayFindObject(const char *class_name, const char *id, size_t idlen,
								   bool create);
extern void GatewayAddSocket(GatewayObjSocket *s);
extern void GatewayRemoveSocket(GatewayObjSocket *s);
extern const char *GatewaySocketClass(GatewayObjSocket *s);
extern const char *GatewaySocketObjectId(GatewayObjSocket *s);

/* routes.c */
extern bool GatewayParseObjectPath(const char *path, char *class_name, char **id,
								   char **method, bool want_method);
extern unsigned int GatewayLookupClass(const char *class_name, GatewayClassEntry *entry);
extern const char *GatewayRefusalState(unsigned int status);
extern const char *GatewayRefusalMessage(unsigned int status);
extern bool GatewayEnqueue(const char *class_name, const char *id, const char *method,
						   const char *args, int64 socket, uint64 token, const char *frame_id);

/* frames.c */
extern void GatewayFramesStart(void);
extern void GatewayCloseSocket(GatewayObjSocket *s, int code, const char *reason, bool now);
extern void GatewayQueueFrame(GatewayObjSocket *s, GwFrame *f);
extern void GatewaySendText(GatewayObjSocket *s, GatewayBuf *text);
extern void GatewaySendError(GatewayObjSocket *s, const char *id_json, const char *code,
							 const char *message, size_t message_len);
extern GwFrame *GatewayEventFrame(GwObject *o, DurableBytes data);
extern void GatewayFanOut(GwObject *o, GwFrame *f, DurableBytes tag, int64 exclude);
extern void GatewaySendFrame(GatewayObjSocket *s, GwFrame *f);
extern void GatewayFlushBegin(void);
extern void GatewayFlushEnd(void);
extern int	GatewayWriteSocket(struct lws *wsi, GatewayObjSocket *s);
extern void GatewayForgetFrames(GatewayObjSocket *s);

/* pages.c */
extern int	GatewayHealthz(struct lws *wsi, GatewaySession *pss, bool head_only);
extern int	GatewayMetrics(struct lws *wsi, GatewaySession *pss, bool head_only);
extern int	GatewayStatic(struct lws *wsi, GatewaySession *pss, const char *path,
						  bool head_only);

/* upgrade.c */
extern int	GatewayUpgrade(struct lws *wsi, GatewaySession *pss, const char *path);
typedef struct GwPending GwPending;
extern GwPending *GatewayTakePending(struct lws *wsi);
extern void GatewayFreePending(GwPending *p);
extern const char *GatewayPendingClass(GwPending *p);
extern const char *GatewayPendingId(GwPending *p);
extern const char *GatewayPendingArgs(GwPending *p);
extern const GatewayClassEntry *GatewayPendingEntry(GwPending *p);

/* ws.c */
extern int	GatewayOpenSocket(struct lws *wsi, GatewaySession *pss);
extern int	GatewayReceiveFrame(struct lws *wsi, GatewayObjSocket *s, const char *in,
								size_t len);
extern void GatewayPeerClosing(GatewayObjSocket *s, const unsigned char *in, size_t len);
extern void GatewaySocketClosed(GatewayObjSocket *s);
extern void GatewaySocketConnected(GatewayObjSocket *s, const DurableGatewayMsg *msg);
extern void GatewaySocketReady(GatewayObjSocket *s);

/* http.c */
extern int	GatewayHttpRequest(struct lws *wsi, GatewaySession *pss, const char *path);
extern int	GatewayHttpBody(struct lws *wsi, GatewaySession *pss, const char *in, size_t len);
extern int	GatewayHttpBodyDone(struct lws *wsi, GatewaySession *pss);
extern int	GatewayHttpAnswer(struct lws *wsi, GatewaySession *pss);
extern void GatewayHttpClosed(GatewaySession *pss);
extern void GatewayHttpAnswered(const DurableGatewayMsg *msg);

/* inbox.c */
extern void GatewayInboxDrain(void);

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
