/*-------------------------------------------------------------------------
 *
 * dispatch.c
 *	  The lws callbacks of the gateway: one switch per protocol.
 *
 * protocols[0] serves every HTTP connection and every object WebSocket;
 * two RAW_FILE protocols watch the wake eventfd (messages from the hosts,
 * signals) and the postmaster-death pipe.  Each event goes to the file that
 * handles it.  Nothing here may throw (lws callbacks).
 *
 * IDENTIFICATION
 *	  src/gateway/dispatch.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <unistd.h>

/* what the event loop acts on (gateway.c) */
volatile sig_atomic_t gateway_stop = false;
volatile sig_atomic_t gateway_reload = false;
bool		gateway_postmaster_died = false;

/* copy the request path of an upgrade (the GET URI header); false if none */
static bool
upgrade_path(struct lws *wsi, char *path, size_t size)
{
	/*
	 * lws_http_get_uri_and_method's length can include the separator that
	 * follows the URI: read the header itself.
	 */
	return lws_hdr_copy(wsi, path, (int) size, WSI_TOKEN_GET_URI) > 0;
}

/*
 * gateway_callback
 *		protocols[0]: every HTTP connection and object WebSocket.
 */
static int
gateway_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
				 void *in, size_t len)
{
	GatewaySession *pss = (GatewaySession *) user;
	GatewayObjSocket *sock = pss ? pss->sock : NULL;
	char		path[1024];

	switch (reason)
	{
			/* HTTP */
		case LWS_CALLBACK_HTTP:
			/* in: the request path, without the query string */
			if (in == NULL || len == 0)
				return GatewayRespondText(wsi, pss, HTTP_STATUS_BAD_REQUEST,
										  "bad request path\n", false, NULL);
			if (len >= sizeof(path))
				return GatewayRespondText(wsi, pss, HTTP_STATUS_REQ_URI_TOO_LONG,
										  "request path too long\n", false, NULL);
			memcpy(path, in, len);
			path[len] = '\0';
			return GatewayHttpRequest(wsi, pss, path);

		case LWS_CALLBACK_HTTP_BODY:
			/* only HTTP calls read their body; others are answered already */
			if (pss != NULL && pss->call != NULL)
				return GatewayHttpBody(wsi, pss, in, len);
			return 0;

		case LWS_CALLBACK_HTTP_BODY_COMPLETION:
			if (pss != NULL && pss->call != NULL)
				return GatewayHttpBodyDone(wsi, pss);
			return 0;

		case LWS_CALLBACK_HTTP_WRITEABLE:
			if (pss != NULL && pss->call != NULL)
			{
				int			rc = GatewayHttpAnswer(wsi, pss);

				return rc == -2 ? 0 : rc;	/* -2: still waiting for the host */
			}
			return GatewayWriteBody(wsi, pss);

		case LWS_CALLBACK_HTTP_FILE_COMPLETION:
			if (lws_http_transaction_completed(wsi))
				return -1;
			return 0;

		case LWS_CALLBACK_CLOSED_HTTP:
			GatewayHttpClosed(pss);
			GatewayFreePending(GatewayTakePending(wsi));
			GatewaySessionReset(pss);
			return 0;

			/* WebSockets */
		case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
			if (!upgrade_path(wsi, path, sizeof(path)))
				return -1;
			return GatewayUpgrade(wsi, pss, path);

		case LWS_CALLBACK_ESTABLISHED:
			return GatewayOpenSocket(wsi, pss);

		case LWS_CALLBACK_RECEIVE:
			if (sock == NULL)
				return -1;
			return GatewayReceiveFrame(wsi, sock, in, len);

		case LWS_CALLBACK_SERVER_WRITEABLE:
			if (sock != NULL)
				return GatewayWriteSocket(wsi, sock);
			return 0;

		case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
			if (sock != NULL)
				GatewayPeerClosing(sock, in, len);
			return 0;

		case LWS_CALLBACK_CLOSED:
			if (sock != NULL)
			{
				GatewaySocketClosed(sock);
				pss->sock = NULL;
			}
			GatewayFreePending(GatewayTakePending(wsi));
			return 0;

		default:
			break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/*
 * gateway_wake_callback
 *		The wake eventfd is readable: somebody has work for the gateway, or a
 *		signal arrived.  Reset the counter; the loop checks its flags.
 */
static int
gateway_wake_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
					  void *in, size_t len)
{
	uint64		value;

	switch (reason)
	{
		case LWS_CALLBACK_RAW_RX_FILE:
			while (read(lws_get_socket_fd(wsi), &value, sizeof(value)) > 0)
				;
			GatewayInboxDrain();
			return 0;

		case LWS_CALLBACK_RAW_CLOSE_FILE:
			/* cannot be woken any more (or the context is going): leave */
			gateway_stop = true;
			return 0;

		default:
			return 0;
	}
}

/*
 * gateway_pmdeath_callback
 *		The postmaster-death pipe became readable or closed: leave.
 */
static int
gateway_pmdeath_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
						 void *in, size_t len)
{
	switch (reason)
	{
		case LWS_CALLBACK_RAW_RX_FILE:
			gateway_postmaster_died = true;
			gateway_stop = true;
			return -1;

		case LWS_CALLBACK_RAW_CLOSE_FILE:
			/* closed other than by us or by lws_context_destroy: restart */
			gateway_stop = true;
			return 0;

		default:
			return 0;
	}
}

const struct lws_protocols gateway_protocols[] = {
	/* first: WebSocket clients that name no subprotocol bind to protocols[0] */
	{
		.name = GATEWAY_PROTOCOL,
		.callback = gateway_callback,
		.per_session_data_size = sizeof(GatewaySession),
		.tx_packet_size = GATEWAY_TX_PACKET
	},
	{.name = GATEWAY_WAKE_PROTOCOL, .callback = gateway_wake_callback},
	{.name = GATEWAY_PMDEATH_PROTOCOL, .callback = gateway_pmdeath_callback},
	{NULL}
};
