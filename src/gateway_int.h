/*-------------------------------------------------------------------------
 *
 * gateway_int.h
 *	  Declarations shared by the two halves of the gateway worker.
 *
 * gateway.c runs the listener and the plain HTTP routes; gateway_objects.c
 * serves the object routes (WebSockets and HTTP calls).  Only these two
 * files include libwebsockets.h.  Everything declared here runs inside lws
 * callbacks: nothing may throw.
 *
 * IDENTIFICATION
 *	  src/gateway_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_GATEWAY_INT_H
#define DURABLE_GATEWAY_INT_H

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
	/* object routes (gateway_objects.c) */
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


/* gateway.c */
extern void GatewayBufInit(GatewayBuf *buf, size_t cap);
extern void GatewayBufAppend(GatewayBuf *buf, const char *s, size_t n);
extern void GatewayBufPrintf(GatewayBuf *buf, const char *fmt,...) pg_attribute_printf(2, 3);
extern void GatewayBufAppendJsonString(GatewayBuf *buf, const char *s);
extern void GatewayBufFree(GatewayBuf *buf);
extern int	GatewayRespondBuf(struct lws *wsi, GatewaySession *pss, unsigned int status,
							  const char *content_type, GatewayBuf *buf, bool head_only,
							  const char *allow);
extern int	GatewayRespondNow(struct lws *wsi, unsigned int status, const char *content_type,
							  const char *body);
extern int	GatewayRespondText(struct lws *wsi, GatewaySession *pss, unsigned int status,
							   const char *text, bool head_only, const char *allow);
extern int	GatewayRespondError(struct lws *wsi, GatewaySession *pss, unsigned int status,
								const char *sqlstate, const char *message, bool head_only);

/* gateway_objects.c */
extern int	GatewayObjectRequest(struct lws *wsi, GatewaySession *pss, GatewayMethod method,
								 const char *path);
extern int	GatewayObjectUpgrade(struct lws *wsi, GatewaySession *pss, const char *path);
extern bool GatewayObjectCallback(struct lws *wsi, enum lws_callback_reasons reason,
								  GatewaySession *pss, void *in, size_t len, int *result);
extern void GatewayObjectsDrain(void);
extern void GatewayObjectsStart(void);

#endif							/* DURABLE_GATEWAY_INT_H */
