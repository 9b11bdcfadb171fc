/*-------------------------------------------------------------------------
 *
 * response.c
 *	  HTTP responses of the gateway.
 *
 * Every answer goes out whole in one lws_write (headers and body; a static
 * file follows in pieces, conn.c), always with a Content-Length, so that a
 * client always knows where it ends: the connection then reads the next
 * request (keep-alive) or ends (Connection: close, sent whenever the gateway
 * will close: after an HTTP/1.0 request, a request with Connection: close,
 * a request whose body it does not read, a bad request).  Dynamic answers
 * carry Cache-Control: no-store; all carry X-Content-Type-Options: nosniff,
 * and, for an origin allowed by durable.allowed_origins, the CORS headers
 * (origin.c).  Out of memory while making a body gives a 500.
 *
 * IDENTIFICATION
 *	  src/gateway/response.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <time.h>

/* the reason phrase of a status */
static const char *
reason_of(unsigned int status)
{
	switch (status)
	{
		case 100:
			return "Continue";
		case 101:
			return "Switching Protocols";
		case 200:
			return "OK";
		case 204:
			return "No Content";
		case 400:
			return "Bad Request";
		case 403:
			return "Forbidden";
		case 404:
			return "Not Found";
		case 405:
			return "Method Not Allowed";
		case 409:
			return "Conflict";
		case 411:
			return "Length Required";
		case 413:
			return "Content Too Large";
		case 415:
			return "Unsupported Media Type";
		case 426:
			return "Upgrade Required";
		case 431:
			return "Request Header Fields Too Large";
		case 500:
			return "Internal Server Error";
		case 503:
			return "Service Unavailable";
		case 504:
			return "Gateway Timeout";
		case 505:
			return "HTTP Version Not Supported";
		default:
			return "Unknown";
	}
}

/* the Date header's value (RFC 9110 IMF-fixdate), made once a second */
static const char *
http_date(void)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	"Aug", "Sep", "Oct", "Nov", "Dec"};
	static time_t made = 0;
	static char text[40];
	time_t		now = time(NULL);
	struct tm	tm;

	if (now != made && gmtime_r(&now, &tm) != NULL)
	{
		snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT",
				 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
				 tm.tm_hour, tm.tm_min, tm.tm_sec);
		made = now;
	}
	return text;
}

/* the status line and headers of an answer with a body of len bytes */
static void
put_head(GatewayBuf *b, GatewayConn *c, unsigned int status, const char *content_type,
		 uint64 len, bool dynamic, const char *extra_headers)
{
	GatewayBufPrintf(b, "HTTP/1.1 %u %s\r\nServer: pg_durable_objects\r\nDate: %s\r\n",
					 status, reason_of(status), http_date());
	if (content_type != NULL)
		GatewayBufPrintf(b, "Content-Type: %s\r\n", content_type);
	if (status != 204)
		GatewayBufPrintf(b, "Content-Length: " UINT64_FORMAT "\r\n", len);
	if (dynamic)
		GatewayBufAppend(b, "Cache-Control: no-store\r\n", 25);
	GatewayBufAppend(b, "X-Content-Type-Options: nosniff\r\n", 33);
	if (c->cors_origin != NULL)
		GatewayBufPrintf(b, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n",
						 c->cors_origin);
	if (extra_headers != NULL)
		GatewayBufAppend(b, extra_headers, strlen(extra_headers));
	if (c->close_after)
		GatewayBufAppend(b, "Connection: close\r\n", 19);
	GatewayBufAppend(b, "\r\n", 2);
}

/*
 * send_answer
 *		Write an answer: head (taken) and, unless the request was HEAD, body.
 *		The connection reads no more until the answer is out.
 */
static int
send_answer(GatewayConn *c, GatewayBuf *head, GatewayBuf *body)
{
	bool		ok;

	if (body != NULL && body->len > 0 && !c->head_only)
		GatewayBufAppend(head, (const char *) body->data + LWS_PRE, body->len);
	ok = !head->failed && GatewayConnWrite(c, head->data + LWS_PRE, head->len);
	GatewayBufFree(head);
	if (body != NULL)
		GatewayBufFree(body);
	if (!ok)
		return -1;
	c->state = CONN_BUSY;
	GatewayConnPause(c, GATEWAY_PAUSE_BUSY);
	GatewayConnAnswered(c);
	return 0;
}

/*
 * GatewayRespond
 *		Answer the current request with status, a body (taken over; NULL for
 *		none) of content_type, and extra_headers ("Name: value\r\n" lines, or
 *		NULL).  Returns the callback's return value.
 */
int
GatewayRespond(GatewayConn *c, unsigned int status, const char *content_type, GatewayBuf *body,
			   const char *extra_headers)
{
	GatewayBuf	head;
	size_t		len;

	if (body != NULL && body->failed)
	{
		GatewayBufFree(body);
		body = NULL;
		status = HTTP_STATUS_INTERNAL_SERVER_ERROR;
		content_type = NULL;
		extra_headers = NULL;
	}
	len = body ? body->len : 0;
	GatewayBufInit(&head, 512 + len);
	put_head(&head, c, status, len > 0 ? content_type : NULL, len, true, extra_headers);
	return send_answer(c, &head, body);
}

/*
 * GatewayRespondText
 *		A short plain-text answer.
 */
int
GatewayRespondText(GatewayConn *c, unsigned int status, const char *text,
				   const char *extra_headers)
{
	GatewayBuf	buf;

	GatewayBufInit(&buf, strlen(text));
	GatewayBufAppend(&buf, text, strlen(text));
	return GatewayRespond(c, status, "text/plain; charset=utf-8", &buf, extra_headers);
}

/*
 * GatewayRespondError
 *		A JSON error in the shape of the WebSocket/HTTP protocol:
 *		{"error": {"code": "SQLSTATE", "message": "..."}}
 */
int
GatewayRespondError(GatewayConn *c, unsigned int status, const char *sqlstate,
					const char *message)
{
	GatewayBuf	buf;

	GatewayBufInit(&buf, 128 + strlen(message));
	GatewayBufAppend(&buf, "{", 1);
	GatewayBufAppendError(&buf, sqlstate, message);
	GatewayBufAppend(&buf, "}\n", 2);
	return GatewayRespond(c, status, "application/json", &buf, NULL);
}

/*
 * GatewayRespondFile
 *		200 with the file fd (taken over) of size bytes as the body; its
 *		pieces follow from the writeable callback (conn.c).
 */
int
GatewayRespondFile(GatewayConn *c, int fd, uint64 size, const char *content_type)
{
	GatewayBuf	head;

	GatewayBufInit(&head, 512);
	put_head(&head, c, HTTP_STATUS_OK, content_type, size, false, NULL);
	c->file_fd = fd;
	c->file_left = c->head_only ? 0 : size;
	return send_answer(c, &head, NULL);
}

/*
 * GatewayRespondContinue
 *		The interim "100 Continue" to a request with Expect: 100-continue
 *		whose body the gateway will read.
 */
void
GatewayRespondContinue(GatewayConn *c)
{
	static const char text[] = "HTTP/1.1 100 Continue\r\n\r\n";
	unsigned char buf[LWS_PRE + sizeof(text)];

	memcpy(buf + LWS_PRE, text, sizeof(text) - 1);
	(void) GatewayConnWrite(c, buf + LWS_PRE, sizeof(text) - 1);
}

/*
 * GatewaySwitchProtocols
 *		The 101 answer that makes the connection a WebSocket, with the
 *		Sec-WebSocket-Accept value and the subprotocol chosen (or NULL).
 *		False if it could not be written.
 */
bool
GatewaySwitchProtocols(GatewayConn *c, const char *accept, const char *protocol)
{
	GatewayBuf	head;
	bool		ok;

	GatewayBufInit(&head, 256);
	GatewayBufPrintf(&head, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
					 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", accept);
	if (protocol != NULL)
		GatewayBufPrintf(&head, "Sec-WebSocket-Protocol: %s\r\n", protocol);
	GatewayBufAppend(&head, "\r\n", 2);
	ok = !head.failed && GatewayConnWrite(c, head.data + LWS_PRE, head.len);
	GatewayBufFree(&head);
	if (!ok)
		return false;
	c->state = CONN_WEBSOCKET;
	GatewayRequestFree(&c->req);
	c->have_req = false;
	GatewayConnTimeout(c, 0);
	return true;
}
