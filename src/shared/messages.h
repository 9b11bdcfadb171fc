/*-------------------------------------------------------------------------
 *
 * messages.h
 *	  Every message between sessions, hosts and the gateway, with named
 *	  fields; their encoding into the shared message area (messages.c).
 *
 *	- a call (DurableCallMsg) goes on the ring of the object's host, from a
 *	  session (durable.call), another host (a call between objects) or the
 *	  gateway (a socket frame, a socket event or an HTTP call);
 *	- its reply (DurableReplyMsg) goes to the caller's reply slot;
 *	- hosts tell the gateway (DurableGatewayMsg) what calls of its sockets
 *	  and HTTP requests did, what objects broadcast, and the class directory.
 *
 * IDENTIFICATION
 *	  src/shared/messages.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_MESSAGES_H
#define DURABLE_MESSAGES_H

#include "shared/area.h"

#include "utils/jsonb.h"

/* what a request on a host's ring carries */
typedef enum DurableRequestKind
{
	DURABLE_REQUEST_CALL = 1,	/* from a session or a host: binary args */
	DURABLE_REQUEST_GATEWAY		/* from the gateway: args as JSON text */
} DurableRequestKind;

/* a call of an object on its way to the object's host */
typedef struct DurableCallMsg
{
	const char *class_name;
	const char *id;
	const char *method;
	const Jsonb *args;			/* DURABLE_REQUEST_CALL */
	const char *args_text;		/* DURABLE_REQUEST_GATEWAY: parsed by the host */
	int64		socket;			/* GATEWAY: the socket; 0 for an HTTP call */
	uint64		token;			/* GATEWAY: the gateway's token of an HTTP call */
	const char *frame_id;		/* GATEWAY: the JSON id of a "call" frame, or NULL */
	DurableAreaBudget *budget;	/* store counted in this budget (area.h); NULL: not */
} DurableCallMsg;

extern dsa_pointer DurableCallMsgStore(DurableRequestKind kind, const DurableCallMsg *msg);
extern void DurableCallMsgLoad(DurableRequestKind kind, dsa_pointer message,
							   DurableCallMsg *msg);

/* the reply to a call of a session or host */
typedef enum DurableReplyStatus
{
	DURABLE_REPLY_NONE = 0,
	DURABLE_REPLY_OK,
	DURABLE_REPLY_ERROR
} DurableReplyStatus;

typedef struct DurableReplyMsg
{
	DurableReplyStatus status;
	bool		lost;			/* the payload did not fit in shared memory */
	Jsonb	   *result;			/* OK: NULL for SQL NULL */
	const char *sqlstate;		/* ERROR */
	const char *message;
	const char *detail;
	const char *hint;
	const char *context;
} DurableReplyMsg;

extern dsa_pointer DurableReplyMsgStore(const DurableReplyMsg *msg);
extern void DurableReplyMsgLoad(DurableReplyStatus status, dsa_pointer message,
								DurableReplyMsg *msg);

/* messages from hosts to the gateway */
typedef enum DurableGatewayMsgKind
{
	GATEWAY_MSG_CLASSES = 1,	/* the class directory (encoding: classdir.c) */
	GATEWAY_MSG_CONNECT,		/* $connect accepted or refused a socket */
	GATEWAY_MSG_READY,			/* the messages of an accepting $connect are out */
	GATEWAY_MSG_REPLY,			/* result of a call frame or of an HTTP call */
	GATEWAY_MSG_ERROR,			/* error of a socket's call or of an HTTP call */
	GATEWAY_MSG_EVENT,			/* broadcast to an object's sockets */
	GATEWAY_MSG_SEND,			/* a message to one socket */
	GATEWAY_MSG_CLOSE,			/* close one socket */
	GATEWAY_MSG_GAP,			/* a resumed socket missed events no longer kept */
	GATEWAY_MSG_DROPPED			/* DROP EXTENSION: no classes, close the database's sockets */
} DurableGatewayMsgKind;

/* flags of a class in a GATEWAY_MSG_CLASSES directory (upkeep.c encodes it) */
#define DURABLE_CLASS_WEBSOCKET		0x01
#define DURABLE_CLASS_HTTP			0x02
#define DURABLE_CLASS_AUTO_RESPONSE 0x04

/* a byte string of a message; data NULL means NULL; decoded: not NUL-terminated */
typedef struct DurableBytes
{
	const char *data;
	uint32		len;
} DurableBytes;

typedef struct DurableGatewayMsg
{
	DurableGatewayMsgKind kind;
	int			db;				/* decoded: the database of the sender */
	int64		socket;			/* CONNECT READY REPLY ERROR SEND CLOSE GAP; 0: HTTP */
	uint64		token;			/* REPLY ERROR of an HTTP call */
	DurableBytes frame_id;		/* REPLY ERROR of a call frame: its JSON id */
	DurableBytes result;		/* REPLY: JSON */
	DurableBytes sqlstate;		/* ERROR */
	DurableBytes message;		/* ERROR */
	bool		accept;			/* CONNECT */
	int			code;			/* CONNECT (refused) CLOSE: close code */
	DurableBytes reason;		/* CONNECT (refused) CLOSE: close reason */
	DurableBytes tags;			/* CONNECT (accepted): JSON array of strings */
	DurableBytes class_name;	/* EVENT */
	DurableBytes id;			/* EVENT */
	DurableBytes tag;			/* EVENT: only the sockets with this tag; NULL: all */
	int64		exclude;		/* EVENT: but this socket; 0: none */
	DurableBytes data;			/* EVENT SEND: JSON or bytes; CLASSES: the directory */
	bool		binary;			/* EVENT SEND: data is bytes for a binary frame */
	int64		seq;			/* EVENT SEND: the event's number; GAP: the oldest kept */
} DurableGatewayMsg;

extern DurableBytes DurableBytesOf(const char *s);
extern bool DurableGatewaySend(const DurableGatewayMsg *msg);
extern bool DurableGatewayMsgDecode(const DurableParts *parts, DurableGatewayMsg *msg);
extern DurableGatewayMsg *DurableGatewayMsgCopy(const DurableGatewayMsg *msg);

#endif							/* DURABLE_MESSAGES_H */
