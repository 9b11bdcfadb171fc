/*-------------------------------------------------------------------------
 *
 * http.c
 *	  HTTP requests: routing, and calls of objects over HTTP.
 *
 * Routes (HTTP/1.1 and 1.0, also over TLS):
 *	POST /objects/{class}/{id}/{method}	a call of the object (class option
 *						http): JSON args in, {"result": ...} or an error out
 *	OPTIONS /objects/...	CORS preflight for origins of durable.allowed_origins
 *	GET /objects/{class}/{id}	with Upgrade: websocket, a socket (upgrade.c);
 *						without, 426
 *	GET /healthz, /metrics, static files (pages.c)
 *	other methods		405; HEAD works wherever GET does; CONNECT 405
 *
 * Exactly once.  The gateway reads a request's body to its Content-Length
 * and no further, so what follows is the next request, answered in turn; a
 * call is handed to its host once, when its body is complete, and answered
 * once.  Other sites: a call needs Content-Type: application/json (else 415:
 * a browser sends a cross-site POST without asking only with another type)
 * and an Origin allowed by origin.c (403).  A call that finds no room waits
 * (backlog.c) up to GATEWAY_QUEUE_TIMEOUT, then gets 503 and did not run; a
 * call handed to its host waits for the answer up to durable.call_timeout
 * plus GATEWAY_ANSWER_MARGIN, then gets 504 (it may still run, once).
 *
 * IDENTIFICATION
 *	  src/gateway/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <ctype.h>
#include <stdlib.h>

#include "utils/timestamp.h"

/* an HTTP call of an object, from its head to its answer */
struct GatewayHttpCall
{
	GatewayConn *conn;
	int			db;
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	char	   *method;
	uint64		token;
	bool		sent;			/* the request is with the host */
	TimestampTz since;			/* when it began to wait (for room, for the answer) */
	GatewayWaiter waiter;		/* on the backlog while it waits for room */
	GatewayHttpCall *next;
};

/* the HTTP status of a call that failed with an SQLSTATE (first match wins) */
static const struct
{
	const char *sqlstate;		/* a whole code, or a class (2 characters) */
	unsigned int status;
}			error_status[] =
{
	{"42704", HTTP_STATUS_NOT_FOUND},	/* undefined object */
	{"42501", HTTP_STATUS_FORBIDDEN},	/* insufficient privilege */
	{"54000", HTTP_STATUS_REQ_ENTITY_TOO_LARGE},	/* program limit exceeded */
	{"57014", 504},				/* canceled: durable.call_timeout */
	{"40P01", HTTP_STATUS_CONFLICT},	/* deadlock detected */
	{"22", HTTP_STATUS_BAD_REQUEST},	/* data exception */
	{"53", HTTP_STATUS_SERVICE_UNAVAILABLE},	/* insufficient resources */
	{"57", HTTP_STATUS_SERVICE_UNAVAILABLE},	/* operator intervention */
	{"08", HTTP_STATUS_SERVICE_UNAVAILABLE},	/* connection exception */
};

static GatewayHttpCall *http_calls = NULL;
static uint64 http_tokens = 0;

static void retry_call(void *arg);

static unsigned int
status_of(const char *sqlstate)
{
	int			i;

	for (i = 0; i < lengthof(error_status); i++)
		if (strncmp(sqlstate, error_status[i].sqlstate, strlen(error_status[i].sqlstate)) == 0)
			return error_status[i].status;
	return HTTP_STATUS_INTERNAL_SERVER_ERROR;
}

/* off the list and freed; its connection forgets it */
static void
free_http_call(GatewayHttpCall *c)
{
	GatewayHttpCall **pp;

	for (pp = &http_calls; *pp; pp = &(*pp)->next)
		if (*pp == c)
		{
			*pp = c->next;
			break;
		}
	GatewayBacklogRemove(&c->waiter);
	if (c->conn != NULL)
		c->conn->call = NULL;
	free(c->id);
	free(c->method);
	free(c);
}

/* answer call c's connection with an error and forget the call */
static void
fail_call(GatewayHttpCall *call, unsigned int status, const char *sqlstate, const char *message)
{
	GatewayConn *c = call->conn;

	free_http_call(call);
	if (c != NULL)
		(void) GatewayRespondError(c, status, sqlstate, message);
}

/* whether a Content-Type header value is application/json (parameters allowed) */
static bool
is_json_type(const char *ct)
{
	size_t		n = strlen("application/json");

	if (ct == NULL || pg_strncasecmp(ct, "application/json", n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/*
 * preflight
 *		OPTIONS of an object route: the CORS preflight of a call from an
 *		allowed origin gets the Access-Control-* headers (the Allow-Headers
 *		asked for, if they are plain tokens).
 */
static int
preflight(GatewayConn *c, GatewayOrigin origin)
{
	const char *asked = GatewayRequestHeader(&c->req, "access-control-request-headers");
	const char *p;
	char		headers[512];

	if (origin == GATEWAY_ORIGIN_NONE)
		return GatewayRespond(c, 204, NULL, NULL, "Allow: POST, OPTIONS\r\n");
	if (origin == GATEWAY_ORIGIN_REFUSED)
		return GatewayRespondError(c, HTTP_STATUS_FORBIDDEN, DURABLE_STATE_PRIVILEGE,
								   "origin not allowed");
	if (asked != NULL)
		for (p = asked; *p; p++)
			if (!isalnum((unsigned char) *p) && strchr("-_, ", *p) == NULL)
				asked = NULL;
	snprintf(headers, sizeof(headers),
			 "Access-Control-Allow-Methods: POST\r\nAccess-Control-Allow-Headers: %s\r\n"
			 "Access-Control-Max-Age: 600\r\n",
			 (asked != NULL && strlen(asked) < 256) ? asked : "content-type");
	c->cors_origin = GatewayRequestHeader(&c->req, "origin");
	return GatewayRespond(c, 204, NULL, NULL, headers);
}

/*
 * socket_url
 *		The answer to a GET (or other method) of a WebSocket URL: 404, 403 or
 *		426, so that a browser whose socket failed can learn why.  A page of
 *		another origin may read it (CORS): a refused origin learns only that
 *		(before anything about classes), an allowed one the rest.
 */
static int
socket_url(GatewayConn *c)
{
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	int			db;
	GatewayClassEntry entry;
	unsigned int status;
	GatewayOrigin origin = GatewayOriginCheck(&c->req);

	if (origin == GATEWAY_ORIGIN_REFUSED || origin == GATEWAY_ORIGIN_LISTED)
		c->cors_origin = GatewayRequestHeader(&c->req, "origin");
	if (origin == GATEWAY_ORIGIN_REFUSED)
		return GatewayRespondError(c, HTTP_STATUS_FORBIDDEN, DURABLE_STATE_PRIVILEGE,
								   "origin not allowed");
	if (!GatewayParseObjectPath(c->req.path, &db, class_name, &id, NULL, false))
		return GatewayRespondError(c, HTTP_STATUS_NOT_FOUND, DURABLE_STATE_NO_CLASS,
								   "no such object route");
	free(id);
	status = GatewayLookupClass(db, class_name, &entry);
	if (status != 0)
		return GatewayRespondError(c, status, GatewayRefusalState(status),
								   GatewayRefusalMessage(db, status));
	if (!entry.websocket)
		return GatewayRespondError(c, HTTP_STATUS_FORBIDDEN, DURABLE_STATE_PRIVILEGE,
								   "the class does not accept WebSockets");
	return GatewayRespondError(c, 426, DURABLE_STATE_NOT_SUPPORTED,
							   "this is a WebSocket URL: upgrade the connection, or POST to /objects/{class}/{id}/{method}");
}

/*
 * start_call
 *		POST of a method: check it, then read its body (or run it now, with
 *		{}, when it has none).
 */
static int
start_call(GatewayConn *c)
{
	GatewayRequest *req = &c->req;
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	char	   *mname;
	int			db;
	GatewayClassEntry entry;
	unsigned int status;
	GatewayOrigin origin;
	GatewayHttpCall *call;
	const char *expect;
	bool		reserved_name;

	if (!GatewayParseObjectPath(req->path, &db, class_name, &id, &mname, true))
		return GatewayRespondError(c, HTTP_STATUS_NOT_FOUND, DURABLE_STATE_NO_CLASS,
								   "no such object route");
	status = GatewayLookupClass(db, class_name, &entry);
	if (status == 0 && !entry.http)
		status = HTTP_STATUS_FORBIDDEN;
	origin = GatewayOriginCheck(req);
	reserved_name = (mname[0] == '$');
	if (status != 0 || origin == GATEWAY_ORIGIN_REFUSED || reserved_name ||
		!is_json_type(GatewayRequestHeader(req, "content-type")))
	{
		free(id);
		free(mname);
		if (status == HTTP_STATUS_FORBIDDEN)
			return GatewayRespondError(c, status, DURABLE_STATE_PRIVILEGE,
									   "the class does not accept HTTP calls");
		if (status != 0)
			return GatewayRespondError(c, status, GatewayRefusalState(status),
									   GatewayRefusalMessage(db, status));
		if (origin == GATEWAY_ORIGIN_REFUSED)
			return GatewayRespondError(c, HTTP_STATUS_FORBIDDEN, DURABLE_STATE_PRIVILEGE,
									   "origin not allowed");
		if (reserved_name)
			return GatewayRespondError(c, HTTP_STATUS_BAD_REQUEST, DURABLE_STATE_BAD_VALUE,
									   "method names starting with \"$\" are reserved for the system");
		return GatewayRespondError(c, 415, DURABLE_STATE_MEDIA_TYPE,
								   "send the args as JSON with Content-Type: application/json");
	}
	if (origin == GATEWAY_ORIGIN_LISTED)
		c->cors_origin = GatewayRequestHeader(req, "origin");

	call = calloc(1, sizeof(GatewayHttpCall));
	if (call == NULL ||
		!GatewayRxReserve(&c->body_reserved, (size_t) req->content_length + 1) ||
		(c->body = malloc((size_t) req->content_length + 1)) == NULL)
	{
		free(call);
		free(id);
		free(mname);
		GatewayRxRelease(&c->body_reserved);
		c->close_after = true;
		return GatewayRespondError(c, HTTP_STATUS_SERVICE_UNAVAILABLE, DURABLE_STATE_NO_MEMORY,
								   "the gateway has no room for this request body now");
	}
	call->conn = c;
	call->db = db;
	strlcpy(call->class_name, class_name, sizeof(call->class_name));
	call->id = id;
	call->method = mname;
	call->token = ++http_tokens;
	call->next = http_calls;
	http_calls = call;
	c->call = call;
	c->body_len = 0;
	c->body_left = (uint64) req->content_length;
	if (c->body_left == 0)
		return GatewayHttpBodyDone(c);
	c->state = CONN_BODY;
	GatewayConnTimeout(c, GATEWAY_BODY_TIMEOUT);
	expect = GatewayRequestHeader(req, "expect");
	if (expect != NULL && pg_strcasecmp(expect, "100-continue") == 0)
		GatewayRespondContinue(c);
	return 0;
}

/*
 * object_request
 *		A request under /objects that is not a WebSocket upgrade.
 */
static int
object_request(GatewayConn *c)
{
	switch (c->req.method)
	{
		case GATEWAY_POST:
			return start_call(c);
		case GATEWAY_OPTIONS:
			c->close_after |= c->req.content_length > 0;
			return preflight(c, GatewayOriginCheck(&c->req));
		default:
			c->close_after |= c->req.content_length > 0;
			return socket_url(c);
	}
}

/*
 * GatewayHttpRequest
 *		A request head was read (c->req): route it.  Returns the callback's
 *		return value.
 */
int
GatewayHttpRequest(GatewayConn *c)
{
	GatewayRequest *req = &c->req;
	const char *upgrade = GatewayRequestHeader(req, "upgrade");
	GwPending  *pending;
	int			rc;
	int			db;

	pg_atomic_fetch_add_u64(&DurableGatewayStats()->http_requests, 1);
	c->head_only = (req->method == GATEWAY_HEAD);
	c->close_after = !req->keep_alive;

	if (req->method == GATEWAY_CONNECT)
	{
		c->close_after = true;
		return GatewayRespondText(c, HTTP_STATUS_METHOD_NOT_ALLOWED, "method not allowed\n",
								  "Allow: GET, HEAD\r\n");
	}
	if (req->chunked)
	{
		c->close_after = true;
		return GatewayRespondError(c, 411, DURABLE_STATE_NOT_SUPPORTED,
								   "send the JSON args with a Content-Length");
	}
	if (req->content_length > durable_max_message_bytes)
	{
		c->close_after = true;
		return GatewayRespondError(c, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, DURABLE_STATE_TOO_LARGE,
								   "request body larger than durable.max_message_bytes");
	}
	if (upgrade != NULL && GatewayHeaderHasToken(upgrade, "websocket"))
	{
		rc = GatewayUpgrade(c, &pending);
		if (pending != NULL)
			GatewayOpenSocket(c, pending);
		return rc;
	}

	if (GatewayObjectRoute(req->path, &db) != NULL)
		return object_request(c);

	/* a body nobody reads ends the connection after the answer */
	c->close_after |= req->content_length > 0;
	if (req->method != GATEWAY_GET && req->method != GATEWAY_HEAD)
		return GatewayRespondText(c, HTTP_STATUS_METHOD_NOT_ALLOWED, "method not allowed\n",
								  "Allow: GET, HEAD\r\n");
	if (strcmp(req->path, "/healthz") == 0)
		return GatewayHealthz(c);
	if (strcmp(req->path, "/metrics") == 0)
		return GatewayMetrics(c);
	return GatewayStatic(c, req->path);
}

/*
 * send_call
 *		Hand the call of c (its body complete) to its host; false when it
 *		must wait for room.
 */
static bool
send_call(GatewayHttpCall *call)
{
	GatewayConn *c = call->conn;
	const char *args = c->body_len == 0 ? "{}" : c->body;

	switch (GatewayEnqueue(call->db, call->class_name, call->id, call->method, args, 0,
						   call->token, NULL, GatewayConnAccount(c)))
	{
		case GATEWAY_WAIT:
			return false;
		case GATEWAY_REFUSED:
			fail_call(call, HTTP_STATUS_SERVICE_UNAVAILABLE, DURABLE_STATE_OVERLOADED,
					  "the message area is full: the call did not run");
			return true;
		case GATEWAY_QUEUED:
			break;
	}
	call->sent = true;
	call->since = GetCurrentTimestamp();
	free(c->body);
	c->body = NULL;
	GatewayRxRelease(&c->body_reserved);
	return true;
}

/* the backlog's retry of an HTTP call */
static void
retry_call(void *arg)
{
	GatewayHttpCall *call = (GatewayHttpCall *) arg;

	if (send_call(call))
		GatewayBacklogRemove(&call->waiter);
}

/*
 * GatewayHttpBodyDone
 *		The body of the HTTP call of c is in: check it is JSON and hand the
 *		call to its host (or wait for room).
 */
int
GatewayHttpBodyDone(GatewayConn *c)
{
	GatewayHttpCall *call = c->call;

	c->state = CONN_BUSY;
	GatewayConnPause(c, GATEWAY_PAUSE_BUSY);
	GatewayConnTimeout(c, 0);
	c->body[c->body_len] = '\0';
	if (c->body_len > 0 && !GatewayJsonValid(c->body, c->body_len))
	{
		fail_call(call, HTTP_STATUS_BAD_REQUEST, DURABLE_STATE_BAD_JSON,
				  "request body is not valid JSON");
		return 0;
	}
	if (!send_call(call))
	{
		call->since = GetCurrentTimestamp();
		GatewayBacklogAdd(&call->waiter, retry_call, call);
	}
	return 0;
}

/*
 * GatewayHttpClosed
 *		The client left: a call that waits for room is dropped (it never
 *		runs); the answer to one with its host finds nothing and is dropped.
 */
void
GatewayHttpClosed(GatewayConn *c)
{
	if (c->call != NULL)
		free_http_call(c->call);
}

/*
 * GatewayHttpAnswered
 *		The host answered HTTP call msg->token (a REPLY or an ERROR message):
 *		answer its connection.
 */
void
GatewayHttpAnswered(const DurableGatewayMsg *msg)
{
	bool		is_error = msg->kind == GATEWAY_MSG_ERROR;
	GatewayHttpCall *call;
	GatewayConn *c;
	GatewayBuf	b;
	unsigned int status = HTTP_STATUS_OK;

	/* an answer comes from a host of the call's database */
	for (call = http_calls; call && (call->token != msg->token || call->db != msg->db);
		 call = call->next)
		;
	if (call == NULL || !call->sent)
		return;
	c = call->conn;
	free_http_call(call);
	if (c == NULL)
		return;
	GatewayBufInit(&b, 64 + msg->result.len + msg->message.len);
	if (is_error)
	{
		char		state[6];

		memcpy(state, msg->sqlstate.data ? msg->sqlstate.data : "", Min(msg->sqlstate.len, 5));
		state[Min(msg->sqlstate.len, 5)] = '\0';
		GatewayBufAppend(&b, "{", 1);
		GatewayBufAppendErrorBytes(&b, msg->sqlstate, msg->message);
		GatewayBufAppend(&b, "}\n", 2);
		status = status_of(state);
	}
	else
	{
		GatewayBufAppend(&b, "{\"result\": ", 11);
		if (msg->result.data)
			GatewayBufAppend(&b, msg->result.data, msg->result.len);
		else
			GatewayBufAppend(&b, "null", 4);
		GatewayBufAppend(&b, "}\n", 2);
	}
	(void) GatewayRespond(c, status, "application/json", &b, NULL);
}

/*
 * GatewayHttpTick
 *		Once a second: calls that waited too long for room (they did not
 *		run: 503) or for their answer (they may run: 504).
 */
void
GatewayHttpTick(void)
{
	TimestampTz now = GetCurrentTimestamp();
	GatewayHttpCall *call;
	GatewayHttpCall *next;

	for (call = http_calls; call != NULL; call = next)
	{
		next = call->next;
		if (call->waiter.waiting &&
			now - call->since >= (int64) GATEWAY_QUEUE_TIMEOUT * USECS_PER_SEC)
			fail_call(call, HTTP_STATUS_SERVICE_UNAVAILABLE, DURABLE_STATE_OVERLOADED,
					  "the object's host is overloaded: the call did not run");
		else if (call->sent && durable_call_timeout > 0 &&
				 now - call->since >= ((int64) durable_call_timeout * 1000 +
									   (int64) GATEWAY_ANSWER_MARGIN * USECS_PER_SEC))
		{
			if (call->conn != NULL)
				call->conn->close_after = true;
			fail_call(call, 504, DURABLE_STATE_TIMEOUT,
					  "no answer from the object's host in time: the call may still run");
		}
	}
}
