/*-------------------------------------------------------------------------
 *
 * upgrade.c
 *	  Before a WebSocket upgrade: may this request become a socket?
 *
 * ws://HOST:PORT[/db/{database}]/objects/{class}/{id}.  The gateway answers
 * on its own from the class directory of that database: 404 unknown route or class, 403 a class without
 * websocket or an Origin not allowed (origin.c), 503 too many sockets or the
 * directory not arrived yet; then the handshake itself (RFC 6455 section
 * 4.2.1): 426 without Sec-WebSocket-Version 13, 400 without a proper key or
 * with only subprotocols other than "durable".  An accepted upgrade is
 * answered 101 here and handed on with the args of its $connect (the query,
 * some headers, the peer, and "since" of a socket that resumes: 400 when it
 * is not a whole number) to ws.c.
 *
 * IDENTIFICATION
 *	  src/gateway/upgrade.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"
#include "gateway/json.h"

#include <errno.h>
#include <stdlib.h>

#define MAX_QUERY			32	/* query parameters passed to $connect */

/* an accepted upgrade, on its way to ws.c */
struct GwPending
{
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	char	   *args;
	GatewayClassEntry entry;
};

/*
 * since_parameter
 *		The query parameter since=N of a socket that resumes after event N:
 *		N (0 to 2^63-1, in decimal), -1 when absent, -2 when malformed.
 */
static int64
since_parameter(const GatewayRequest *req)
{
	const char *cursor = req->query;
	char	   *name;
	char	   *value;
	int64		since = -1;

	while (GatewayQueryNext(&cursor, &name, &value))
	{
		if (strcmp(name, "since") == 0)
		{
			char	   *end;

			errno = 0;
			since = strtoll(value, &end, 10);
			if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 ||
				since < 0)
				since = -2;
		}
		free(name);
		free(value);
		if (since == -2)
			break;
	}
	return since;
}

/*
 * connect_args
 *		The args of $connect: the query (but since), some request headers,
 *		the peer, and since when the socket resumes.
 */
static char *
connect_args(GatewayConn *c, int64 since)
{
	static const char *const headers[] = {
		"host", "origin", "user-agent", "cookie", "authorization", "accept-language",
		"sec-websocket-protocol", "x-forwarded-for", "referer"
	};
	const char *hnames[lengthof(headers)];
	const char *hvalues[lengthof(headers)];
	char	   *qnames[MAX_QUERY];
	char	   *qvalues[MAX_QUERY];
	const char *cursor = c->req.query;
	char		peer[64];
	int			nh = 0;
	int			nq = 0;
	int			i;
	char	   *args;

	for (i = 0; i < (int) lengthof(headers); i++)
	{
		const char *v = GatewayRequestHeader(&c->req, headers[i]);

		if (v == NULL)
			continue;
		hnames[nh] = headers[i];
		hvalues[nh] = v;
		nh++;
	}
	while (nq < MAX_QUERY && GatewayQueryNext(&cursor, &qnames[nq], &qvalues[nq]))
	{
		if (strcmp(qnames[nq], "since") == 0)
		{
			free(qnames[nq]);
			free(qvalues[nq]);
			continue;
		}
		nq++;
	}
	peer[0] = '\0';
	lws_get_peer_simple(c->wsi, peer, sizeof(peer));
	args = DurableJsonConnectArgs((const char *const *) qnames, (const char *const *) qvalues,
								  nq, hnames, hvalues, nh, peer, since);
	for (i = 0; i < nq; i++)
	{
		free(qnames[i]);
		free(qvalues[i]);
	}
	return args;
}

/*
 * handshake_fault
 *		What is wrong with the request as a WebSocket opening handshake:
 *		NULL if nothing, else the message for a 400 (or a 426 when
 *		*version).  The accept key goes to accept, the chosen subprotocol to
 *		*protocol.
 */
static const char *
handshake_fault(GatewayConn *c, char *accept, const char **protocol, bool *version)
{
	const GatewayRequest *req = &c->req;
	const char *connection = GatewayRequestHeader(req, "connection");
	const char *v = GatewayRequestHeader(req, "sec-websocket-version");
	const char *protocols = GatewayRequestHeader(req, "sec-websocket-protocol");

	*version = false;
	*protocol = NULL;
	if (req->method != GATEWAY_GET || req->minor != 1)
		return "a WebSocket upgrade is a GET request of HTTP/1.1";
	if (connection == NULL || !GatewayHeaderHasToken(connection, "upgrade"))
		return "a WebSocket upgrade needs Connection: Upgrade";
	if (v == NULL || strcmp(v, "13") != 0)
	{
		*version = true;
		return "this server speaks WebSocket version 13";
	}
	if (!GatewayWsAcceptKey(GatewayRequestHeader(req, "sec-websocket-key"), accept))
		return "bad Sec-WebSocket-Key";
	if (protocols != NULL)
	{
		if (!GatewayHeaderHasToken(protocols, GATEWAY_PROTOCOL))
			return "the only WebSocket subprotocol offered is \"durable\"";
		*protocol = GATEWAY_PROTOCOL;
	}
	return NULL;
}

/* refuse an upgrade with a JSON error (id, malloc'd, is freed) */
static int
refuse(GatewayConn *c, char *id, unsigned int status, const char *sqlstate, const char *message)
{
	free(id);
	return GatewayRespondError(c, status, sqlstate, message);
}

/*
 * GatewayUpgrade
 *		A request with Upgrade: websocket.  Returns 0 after answering 101,
 *		with the socket to open in *pending; else the return value of the
 *		refusal (an HTTP answer, *pending NULL).
 */
int
GatewayUpgrade(GatewayConn *c, GwPending **pending)
{
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	int			db;
	GatewayClassEntry entry;
	unsigned int status;
	GwPending  *p;
	char		accept[32];
	const char *protocol;
	const char *fault;
	bool		version;
	int64		since;

	*pending = NULL;
	c->close_after = true;		/* any refusal ends the connection */
	if (!GatewayParseObjectPath(c->req.path, &db, class_name, &id, NULL, false))
		return GatewayRespondError(c, HTTP_STATUS_NOT_FOUND, DURABLE_STATE_NO_CLASS,
								   "no such object route");
	if ((status = GatewayLookupClass(db, class_name, &entry)) != 0)
		return refuse(c, id, status, GatewayRefusalState(status),
					  GatewayRefusalMessage(db, status));
	if (!entry.websocket)
		return refuse(c, id, HTTP_STATUS_FORBIDDEN, DURABLE_STATE_PRIVILEGE,
					  "the class does not accept WebSockets");
	if (GatewayOriginCheck(&c->req) == GATEWAY_ORIGIN_REFUSED)
		return refuse(c, id, HTTP_STATUS_FORBIDDEN, DURABLE_STATE_PRIVILEGE,
					  "origin not allowed");
	if ((int) pg_atomic_read_u32(&DurableGatewayStats()->sockets_open) >= durable_max_sockets)
		return refuse(c, id, HTTP_STATUS_SERVICE_UNAVAILABLE, DURABLE_STATE_TOO_MANY,
					  "too many sockets");
	if ((fault = handshake_fault(c, accept, &protocol, &version)) != NULL)
	{
		free(id);
		if (version)
			return GatewayRespond(c, 426, NULL, NULL, "Sec-WebSocket-Version: 13\r\n");
		return GatewayRespondError(c, HTTP_STATUS_BAD_REQUEST, DURABLE_STATE_PROTOCOL, fault);
	}
	if ((since = since_parameter(&c->req)) == -2)
		return refuse(c, id, HTTP_STATUS_BAD_REQUEST, DURABLE_STATE_BAD_VALUE,
					  "since must be a whole number from 0 to 9223372036854775807");

	p = calloc(1, sizeof(GwPending));
	if (p == NULL || (p->args = connect_args(c, since)) == NULL)
	{
		free(p);
		free(id);
		return GatewayRespondError(c, HTTP_STATUS_INTERNAL_SERVER_ERROR,
								   DURABLE_STATE_NO_MEMORY, "out of memory");
	}
	strlcpy(p->class_name, class_name, sizeof(p->class_name));
	p->id = id;
	p->entry = entry;
	c->close_after = false;
	if (!GatewaySwitchProtocols(c, accept, protocol))
	{
		GatewayFreePending(p);
		return -1;
	}
	*pending = p;
	return 0;
}

void
GatewayFreePending(GwPending *p)
{
	if (p == NULL)
		return;
	free(p->id);
	free(p->args);
	free(p);
}

/* what an accepted upgrade is for */
const char *
GatewayPendingClass(GwPending *p)
{
	return p->class_name;
}

const char *
GatewayPendingId(GwPending *p)
{
	return p->id;
}

/* $connect's args, taken over by the caller */
char *
GatewayPendingTakeArgs(GwPending *p)
{
	char	   *args = p->args;

	p->args = NULL;
	return args;
}

const GatewayClassEntry *
GatewayPendingEntry(GwPending *p)
{
	return &p->entry;
}
