/*-------------------------------------------------------------------------
 *
 * dispatch.c
 *	  The lws callbacks of the gateway: one switch per protocol, each inside
 *	  an error boundary.
 *
 * protocols[0] serves every client connection, as an lws raw socket (the
 * gateway speaks HTTP and WebSocket itself, see wsframe.c); two RAW_FILE
 * protocols watch the wake eventfd (messages from the hosts, signals) and
 * the postmaster-death pipe.  Each event goes to the file that handles it.
 *
 * The error boundary.  Nothing in the gateway should raise an ERROR, but
 * the shared message area can (a full /dev/shm makes dsm_create fail, and
 * mapping a segment can fail), and a longjmp through lws would corrupt its
 * state.  So every callback runs inside PG_TRY: an ERROR is logged (LOG),
 * its LWLocks released, and only the connection it happened in suffers (a
 * WebSocket gets Close 1011, an HTTP request without an answer yet gets a
 * 500, else the connection is closed); the gateway serves everyone else.
 *
 * IDENTIFICATION
 *	  src/gateway/dispatch.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <unistd.h>

#include "utils/memutils.h"

/* what the event loop acts on (gateway.c) */
volatile sig_atomic_t gateway_stop = false;
volatile sig_atomic_t gateway_reload = false;
bool		gateway_postmaster_died = false;

/*
 * connection_event
 *		An lws event of a client connection.
 */
static int
connection_event(struct lws *wsi, enum lws_callback_reasons reason, GatewaySession *pss,
				 unsigned char *in, size_t len)
{
	GatewayConn *c = pss ? pss->conn : NULL;
	int			rc;

	switch (reason)
	{
		case LWS_CALLBACK_RAW_ADOPT:
			if (pss == NULL || (pss->conn = GatewayConnOpen(wsi)) == NULL)
				return -1;
			return 0;

		case LWS_CALLBACK_RAW_RX:
			if (c == NULL)
				return -1;
			return GatewayServeInput(c, in, len);

		case LWS_CALLBACK_RAW_WRITEABLE:
			if (c == NULL)
				return 0;
			/* input kept while reading was paused goes on first */
			if (c->in_len > 0 && c->paused == 0 && (rc = GatewayServeInput(c, NULL, 0)) != 0)
				return rc;
			if (c->state == CONN_WEBSOCKET)
				return GatewayWriteSocket(c->sock);
			rc = GatewayConnWriteable(c);
			if (rc == 1)
				return GatewayServeInput(c, NULL, 0);
			return rc;

		case LWS_CALLBACK_RAW_CLOSE:
			if (c == NULL)
				return 0;
			pss->conn = NULL;
			if (c->sock != NULL)
				GatewaySocketClosed(c->sock);
			GatewayHttpClosed(c);
			GatewayConnFree(c);
			return 0;

		default:
			return 0;
	}
}

/*
 * contain
 *		After an ERROR in an event of connection c: make it affect c alone.
 *		Returns the callback's value.
 */
static int
contain(GatewayConn *c, enum lws_callback_reasons reason)
{
	if (c == NULL || reason == LWS_CALLBACK_RAW_CLOSE || c->broken)
		return -1;
	if (c->state == CONN_WEBSOCKET && c->sock != NULL)
	{
		GatewayFailSocket(c->sock, DURABLE_CLOSE_INTERNAL, "internal error");
		return 0;
	}
	if (c->have_req && !c->answered && c->call == NULL)
	{
		c->close_after = true;
		return GatewayRespondError(c, HTTP_STATUS_INTERNAL_SERVER_ERROR, DURABLE_STATE_INTERNAL,
								   "internal error of the gateway");
	}
	return -1;
}

/*
 * gateway_callback
 *		protocols[0]: every client connection.
 */
static int
gateway_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
				 void *in, size_t len)
{
	GatewaySession *pss = (GatewaySession *) user;
	MemoryContext context = CurrentMemoryContext;
	volatile int rc = 0;

	PG_TRY();
	{
		rc = connection_event(wsi, reason, pss, (unsigned char *) in, len);
	}
	PG_CATCH();
	{
		GatewayCatchError(context, "a client connection");
		rc = contain(pss ? pss->conn : NULL, reason);
	}
	PG_END_TRY();
	return rc;
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

	MemoryContext context = CurrentMemoryContext;

	switch (reason)
	{
		case LWS_CALLBACK_RAW_RX_FILE:
			while (read(lws_get_socket_fd(wsi), &value, sizeof(value)) > 0)
				;
			PG_TRY();
			{
				GatewayInboxDrain();
			}
			PG_CATCH();
			{
				GatewayCatchError(context, "a message from a host");
			}
			PG_END_TRY();
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
	/* first: the protocol of accepted connections (listen_accept_protocol) */
	{
		.name = GATEWAY_PROTOCOL,
		.callback = gateway_callback,
		.per_session_data_size = sizeof(GatewaySession),
		.rx_buffer_size = GATEWAY_TX_PACKET,
		.tx_packet_size = GATEWAY_TX_PACKET
	},
	{.name = GATEWAY_WAKE_PROTOCOL, .callback = gateway_wake_callback},
	{.name = GATEWAY_PMDEATH_PROTOCOL, .callback = gateway_pmdeath_callback},
	{NULL}
};
