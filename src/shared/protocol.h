/*-------------------------------------------------------------------------
 *
 * protocol.h
 *	  Constants of the WebSocket and HTTP protocol shared by hosts and the
 *	  gateway: close codes and the SQLSTATEs the gateway answers with.
 *
 * docs/protocol.md explains each one.  Header only.
 *
 * IDENTIFICATION
 *	  src/shared/protocol.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_PROTOCOL_H
#define DURABLE_PROTOCOL_H

/* WebSocket close codes (RFC 6455, section 7.4) */
#define DURABLE_CLOSE_NORMAL		1000
#define DURABLE_CLOSE_GOING_AWAY	1001
#define DURABLE_CLOSE_PROTOCOL		1002
#define DURABLE_CLOSE_UNSUPPORTED	1003	/* binary frames */
#define DURABLE_CLOSE_NO_STATUS		1005	/* a close frame without a code */
#define DURABLE_CLOSE_ABNORMAL		1006	/* no close frame at all */
#define DURABLE_CLOSE_INVALID_DATA	1007
#define DURABLE_CLOSE_POLICY		1008	/* slow consumer, too many early frames */
#define DURABLE_CLOSE_TOO_BIG		1009	/* over durable.max_message_bytes */
#define DURABLE_CLOSE_INTERNAL		1011	/* $connect failed, out of memory */
#define DURABLE_CLOSE_TRY_AGAIN		1013	/* the object's host is overloaded */
/* codes an application may use: socket_close() 3000-4999, a refusing $connect 4000-4999 */
#define DURABLE_CLOSE_APP_MIN		3000
#define DURABLE_CLOSE_REFUSE_MIN	4000
#define DURABLE_CLOSE_APP_MAX		4999
#define DURABLE_CLOSE_REFUSED		4000	/* $connect refused without a code */

/* SQLSTATEs the gateway answers with itself */
#define DURABLE_STATE_BAD_JSON		"22P02"
#define DURABLE_STATE_BAD_VALUE		"22023"
#define DURABLE_STATE_TOO_LARGE		"54000"
#define DURABLE_STATE_NO_CLASS		"42704"
#define DURABLE_STATE_PRIVILEGE		"42501"
#define DURABLE_STATE_NOT_SUPPORTED "0A000"
#define DURABLE_STATE_STARTING		"57P03"
#define DURABLE_STATE_TOO_MANY		"53300"
#define DURABLE_STATE_OVERLOADED	"53400"
#define DURABLE_STATE_NO_MEMORY		"53200"
#define DURABLE_STATE_PROTOCOL		"08P01"	/* a malformed request or handshake */
#define DURABLE_STATE_INTERNAL		"XX000"	/* an error inside the gateway */
#define DURABLE_STATE_MEDIA_TYPE	"0A000"	/* not application/json (415) */
#define DURABLE_STATE_TIMEOUT		"57014"	/* no answer from the host in time */

#endif							/* DURABLE_PROTOCOL_H */
