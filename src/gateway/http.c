/*-------------------------------------------------------------------------
 *
 * http.c
 *	  HTTP requests: routing, and calls of objects over HTTP.
 *
 * Routes (HTTP/1.1 only, also over TLS):
 *	POST /objects/{class}/{id}/{method}	a call of the object (class option
 *						http): JSON args in, {"result": ...} or an error out
 *	GET /objects/{class}/{id}	426: a WebSocket URL
 *	GET /healthz, /metrics, static files (pages.c)
 *	other methods		405; HEAD works wherever GET does
 * An HTTP call waits for its host like a socket's call frame; the host's
 * answer (inbox.c) says the status: GatewayHttpAnswered maps the SQLSTATE of
 * an error with one table.
 *
 * IDENTIFICATION
 *	  src/gateway/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"
#include "gateway/json.h"

#include <stdlib.h>

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

static unsigned int
status_of(const char *sqlstate)
{
	int			i;

	for (i = 0; i < lengthof(error_status); i++)
		if (strncmp(sqlstate, error_status[i].sqlstate, strlen(error_status[i].sqlstate)) == 0)
			return error_status[i].status;
	return HTTP_STATUS_INTERNAL_SERVER_ERROR;
}

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
 * object_request
 *		A plain HTTP request under /objects.  POST to a method starts a call
 *		(its body arrives next); a GET of an object's socket URL gets 426.
 */
static int
object_request(struct lws *wsi, GatewaySession *pss, GatewayMethod method,
					 const char *path)
{
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	char	   *mname;
	GatewayClassEntry entry;
	unsigned int status;
	GatewayHttpCall *c;

	if (method != GATEWAY_POST)
	{
		if (!GatewayParseObjectPath(path, class_name, &id, NULL, false))
			return GatewayRespondError(wsi, pss, HTTP_STATUS_NOT_FOUND, DURABLE_STATE_NO_CLASS,
									   "no such object route", method == GATEWAY_HEAD);
		free(id);
		status = GatewayLookupClass(class_name, &entry);
		if (status != 0)
			return GatewayRespondError(wsi, pss, status, GatewayRefusalState(status),
									   GatewayRefusalMessage(status), method == GATEWAY_HEAD);
		if (!entry.websocket)
			return GatewayRespondError(wsi, pss, HTTP_STATUS_FORBIDDEN, DURABLE_STATE_PRIVILEGE,
									   "the class does not accept WebSockets",
									   method == GATEWAY_HEAD);
		return GatewayRespondError(wsi, pss, 426, DURABLE_STATE_NOT_SUPPORTED,
								   "this is a WebSocket URL: upgrade the connection, or POST to /objects/{class}/{id}/{method}",
								   method == GATEWAY_HEAD);
	}

	if (!GatewayParseObjectPath(path, class_name, &id, &mname, true))
		return GatewayRespondError(wsi, pss, HTTP_STATUS_NOT_FOUND, DURABLE_STATE_NO_CLASS,
								   "no such object route", false);
	status = GatewayLookupClass(class_name, &entry);
	if (status == 0 && !entry.http)
		status = HTTP_STATUS_FORBIDDEN;
	if (status != 0 || mname[0] == '$')
	{
		free(id);
		free(mname);
		if (status == HTTP_STATUS_FORBIDDEN)
			return GatewayRespondError(wsi, pss, status, DURABLE_STATE_PRIVILEGE,
									   "the class does not accept HTTP calls", false);
		if (status != 0)
			return GatewayRespondError(wsi, pss, status, GatewayRefusalState(status),
									   GatewayRefusalMessage(status), false);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_BAD_REQUEST, DURABLE_STATE_BAD_VALUE,
								   "method names starting with \"$\" are reserved for the system",
								   false);
	}

	c = calloc(1, sizeof(GatewayHttpCall));
	if (c == NULL)
	{
		free(id);
		free(mname);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_INTERNAL_SERVER_ERROR,
								   DURABLE_STATE_NO_MEMORY,
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
		return GatewayRespondError(wsi, pss, 411, DURABLE_STATE_NOT_SUPPORTED,
								   "send the JSON args with a Content-Length", false);
	}
	{
		char		cl[32];

		if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
			strtol(cl, NULL, 10) == 0)
			return GatewayHttpBodyDone(wsi, pss);
	}
	return 0;					/* the body comes next */
}

static GatewayMethod
request_method(struct lws *wsi)
{
	char	   *uri;
	int			urilen;
	char		method[16];

	switch (lws_http_get_uri_and_method(wsi, &uri, &urilen))
	{
		case LWSHUMETH_GET:
			return GATEWAY_GET;
		case LWSHUMETH_HEAD:
			return GATEWAY_HEAD;
		case LWSHUMETH_POST:
			return GATEWAY_POST;
		case LWSHUMETH_COLON_PATH:
			/* HTTP/2: the method is a pseudo-header */
			if (lws_hdr_copy(wsi, method, sizeof(method), WSI_TOKEN_HTTP_COLON_METHOD) > 0)
			{
				if (strcmp(method, "GET") == 0)
					return GATEWAY_GET;
				if (strcmp(method, "HEAD") == 0)
					return GATEWAY_HEAD;
				if (strcmp(method, "POST") == 0)
					return GATEWAY_POST;
			}
			return GATEWAY_OTHER;
		default:
			return GATEWAY_OTHER;
	}
}

/*
 * GatewayHttpRequest
 *		LWS_CALLBACK_HTTP: route one request.
 */
int
GatewayHttpRequest(struct lws *wsi, GatewaySession *pss, const char *path)
{
	GatewayMethod method = request_method(wsi);
	bool		head_only = (method == GATEWAY_HEAD);

	pg_atomic_fetch_add_u64(&DurableGatewayStats()->http_requests, 1);
	if (pss != NULL)
	{
		GatewaySessionReset(pss);
		/* a request body we do not read ends the connection after the reply */
		pss->close_after = (method != GATEWAY_GET && method != GATEWAY_HEAD);
	}

	if (strcmp(path, "/objects") == 0 || strncmp(path, "/objects/", 9) == 0)
		return object_request(wsi, pss, method, path);

	if (method != GATEWAY_GET && method != GATEWAY_HEAD)
		return GatewayRespondText(wsi, pss, HTTP_STATUS_METHOD_NOT_ALLOWED,
							"method not allowed\n", false, "GET, HEAD");
	if (strcmp(path, "/healthz") == 0)
		return GatewayHealthz(wsi, pss, head_only);
	if (strcmp(path, "/metrics") == 0)
		return GatewayMetrics(wsi, pss, head_only);
	return GatewayStatic(wsi, pss, path, head_only);
}

/* LWS_CALLBACK_HTTP_BODY: a piece of an HTTP call's body */
int
GatewayHttpBody(struct lws *wsi, GatewaySession *pss, const char *in, size_t len)
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

/* LWS_CALLBACK_HTTP_BODY_COMPLETION: the body is in, send the call */
int
GatewayHttpBodyDone(struct lws *wsi, GatewaySession *pss)
{
	GatewayHttpCall *c = pss->call;
	const char *args;

	if (c->too_large)
	{
		pss->call = NULL;
		free_http_call(c);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
								   DURABLE_STATE_TOO_LARGE,
								   "request body larger than durable.max_message_bytes", false);
	}
	args = (c->body == NULL || c->body_len == 0) ? "{}" : c->body;
	if (!DurableJsonValid(args, strlen(args)) ||
		(c->body_len > 0 && strlen(c->body) != c->body_len))
	{
		pss->call = NULL;
		free_http_call(c);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_BAD_REQUEST, DURABLE_STATE_BAD_JSON,
								   "request body is not valid JSON", false);
	}
	if (!GatewayEnqueue(c->class_name, c->id, c->method, args, 0, c->token, NULL))
	{
		pss->call = NULL;
		free_http_call(c);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_SERVICE_UNAVAILABLE,
								   DURABLE_STATE_OVERLOADED,
								   "the object's host is overloaded", false);
	}
	c->sent = true;
	return 0;
}

/*
 * GatewayHttpAnswer
 *		LWS_CALLBACK_HTTP_WRITEABLE of an HTTP call: send its answer once the
 *		host gave it; -2 while it has not.
 */
int
GatewayHttpAnswer(struct lws *wsi, GatewaySession *pss)
{
	GatewayHttpCall *c = pss->call;
	GatewayBuf	b;

	if (c == NULL || !c->answered)
		return -2;				/* not ours */
	if (c->response == NULL)
	{
		/* out of memory while making it */
		pss->call = NULL;
		free_http_call(c);
		return GatewayRespondError(wsi, pss, HTTP_STATUS_INTERNAL_SERVER_ERROR,
								   DURABLE_STATE_NO_MEMORY, "out of memory", false);
	}
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
 * GatewayHttpClosed
 *		LWS_CALLBACK_CLOSED_HTTP: the client left; a late answer finds no call.
 */
void
GatewayHttpClosed(GatewaySession *pss)
{
	if (pss != NULL && pss->call != NULL)
	{
		free_http_call(pss->call);
		pss->call = NULL;
	}
}

/*
 * GatewayHttpAnswered
 *		The host answered HTTP call msg->token (a REPLY or an ERROR message):
 *		make the response and wake the connection.
 */
void
GatewayHttpAnswered(const DurableGatewayMsg *msg)
{
	bool		is_error = msg->kind == GATEWAY_MSG_ERROR;
	GatewayHttpCall *c;
	GatewayBuf	b;

	for (c = http_calls; c && c->token != msg->token; c = c->next)
		;
	if (c == NULL || c->answered)
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
		c->status = status_of(state);
	}
	else
	{
		GatewayBufAppend(&b, "{\"result\": ", 11);
		if (msg->result.data)
			GatewayBufAppend(&b, msg->result.data, msg->result.len);
		else
			GatewayBufAppend(&b, "null", 4);
		GatewayBufAppend(&b, "}\n", 2);
		c->status = HTTP_STATUS_OK;
	}
	if (b.failed)
		c->status = HTTP_STATUS_INTERNAL_SERVER_ERROR;
	c->response = b.failed ? NULL : strndup((char *) b.data + LWS_PRE, b.len);
	GatewayBufFree(&b);
	c->answered = true;
	lws_callback_on_writable(c->wsi);
}
