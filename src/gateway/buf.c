/*-------------------------------------------------------------------------
 *
 * buf.c
 *	  Growable response buffers and HTTP responses of the gateway.
 *
 * Buffers are malloc'd with LWS_PRE bytes of headroom (lws writes its
 * headers there); running out of memory marks a buffer failed instead of
 * raising an error, and a failed body becomes a 500.  Every JSON error the
 * gateway sends, as an HTTP body or inside a WebSocket frame, is made by
 * GatewayBufAppendError.
 *
 * IDENTIFICATION
 *	  src/gateway/buf.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <stdarg.h>
#include <stdlib.h>

void
GatewayBufInit(GatewayBuf *buf, size_t cap)
{
	buf->len = 0;
	buf->cap = cap;
	buf->failed = false;
	buf->data = malloc(LWS_PRE + cap + 1);
	if (buf->data == NULL)
	{
		buf->cap = 0;
		buf->failed = true;
	}
}

static bool
buf_reserve(GatewayBuf *buf, size_t more)
{
	unsigned char *grown;
	size_t		cap;

	if (buf->failed)
		return false;
	if (buf->len + more <= buf->cap)
		return true;
	cap = Max(buf->cap * 2, buf->len + more);
	grown = realloc(buf->data, LWS_PRE + cap + 1);
	if (grown == NULL)
	{
		buf->failed = true;
		return false;
	}
	buf->data = grown;
	buf->cap = cap;
	return true;
}

void
GatewayBufAppend(GatewayBuf *buf, const char *s, size_t n)
{
	if (!buf_reserve(buf, n))
		return;
	memcpy(buf->data + LWS_PRE + buf->len, s, n);
	buf->len += n;
}

void
GatewayBufPrintf(GatewayBuf *buf, const char *fmt,...)
{
	for (;;)
	{
		va_list		args;
		int			n;
		size_t		room = buf->cap - buf->len + 1;

		if (buf->failed)
			return;
		va_start(args, fmt);
		n = vsnprintf((char *) buf->data + LWS_PRE + buf->len, room, fmt, args);
		va_end(args);
		if (n < 0)
		{
			buf->failed = true;
			return;
		}
		if ((size_t) n < room)
		{
			buf->len += n;
			return;
		}
		if (!buf_reserve(buf, n))
			return;
	}
}

/* append s as a JSON string literal */
void
GatewayBufAppendJsonString(GatewayBuf *buf, const char *s)
{
	const unsigned char *p;

	GatewayBufAppend(buf, "\"", 1);
	for (p = (const unsigned char *) s; *p; p++)
	{
		switch (*p)
		{
			case '"':
				GatewayBufAppend(buf, "\\\"", 2);
				break;
			case '\\':
				GatewayBufAppend(buf, "\\\\", 2);
				break;
			case '\n':
				GatewayBufAppend(buf, "\\n", 2);
				break;
			default:
				if (*p < 0x20)
					GatewayBufPrintf(buf, "\\u%04x", *p);
				else
					GatewayBufAppend(buf, (const char *) p, 1);
				break;
		}
	}
	GatewayBufAppend(buf, "\"", 1);
}

/* append b as a JSON string literal (NULL: an empty string) */
void
GatewayBufAppendJsonBytes(GatewayBuf *buf, DurableBytes b)
{
	char	   *s = b.data ? strndup(b.data, b.len) : NULL;

	if (b.data && s == NULL)
	{
		buf->failed = true;
		return;
	}
	GatewayBufAppendJsonString(buf, s ? s : "");
	free(s);
}

/*
 * GatewayBufAppendError
 *		The error member of the protocol,
 *		"error": {"code": "SQLSTATE", "message": "..."}: the one way every
 *		error body (HTTP) and error frame (WebSocket) is made.
 */
void
GatewayBufAppendError(GatewayBuf *buf, const char *sqlstate, const char *message)
{
	GatewayBufAppend(buf, "\"error\": {\"code\": ", 18);
	GatewayBufAppendJsonString(buf, sqlstate);
	GatewayBufAppend(buf, ", \"message\": ", 13);
	GatewayBufAppendJsonString(buf, message);
	GatewayBufAppend(buf, "}", 1);
}


/*
 * GatewayBufAppendErrorBytes
 *		GatewayBufAppendError of an error a host sent (not NUL-terminated).
 */
void
GatewayBufAppendErrorBytes(GatewayBuf *buf, DurableBytes sqlstate, DurableBytes message)
{
	char		state[6];
	char	   *text = strndup(message.data ? message.data : "", message.len);

	memcpy(state, sqlstate.data ? sqlstate.data : "", Min(sqlstate.len, 5));
	state[Min(sqlstate.len, 5)] = '\0';
	if (text == NULL)
		buf->failed = true;
	else
		GatewayBufAppendError(buf, state, text);
	free(text);
}

void
GatewayBufFree(GatewayBuf *buf)
{
	free(buf->data);
	buf->data = NULL;
}

/* forget the response body of a connection */
void
GatewaySessionReset(GatewaySession *pss)
{
	if (pss == NULL)
		return;
	free(pss->out);
	pss->out = NULL;
	pss->out_len = 0;
	pss->out_sent = 0;
}

/*
 * GatewayResponseDone
 *		The response is out: get ready for the next request on the connection,
 *		or tell lws to close it.  Returns the callback's return value.
 */
int
GatewayResponseDone(struct lws *wsi, GatewaySession *pss)
{
	GatewaySessionReset(pss);
	if (pss != NULL && pss->close_after)
		return -1;
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

/*
 * GatewayRespondBuf
 *		Send a response whose body is in buf (taking it over; buf may be NULL
 *		for an empty body).  Headers are written now, the body from
 *		LWS_CALLBACK_HTTP_WRITEABLE.  Returns the callback's return value.
 */
int
GatewayRespondBuf(struct lws *wsi, GatewaySession *pss, unsigned int status,
			const char *content_type, GatewayBuf *buf, bool head_only,
			const char *allow)
{
	unsigned char headers[LWS_PRE + 1024];
	unsigned char *start = headers + LWS_PRE;
	unsigned char *p = start;
	unsigned char *end = headers + sizeof(headers) - 1;
	size_t		len = buf ? buf->len : 0;

	if (pss == NULL)
	{
		/* not an HTTP connection of protocols[0]: cannot happen, hang up */
		if (buf)
			GatewayBufFree(buf);
		return -1;
	}
	if (buf != NULL && buf->failed)
	{
		/* out of memory while building the body */
		GatewayBufFree(buf);
		buf = NULL;
		len = 0;
		status = HTTP_STATUS_INTERNAL_SERVER_ERROR;
		content_type = "text/plain; charset=utf-8";
	}

	GatewaySessionReset(pss);
	if (lws_add_http_common_headers(wsi, status, content_type, (lws_filepos_t) len,
									&p, end) ||
		lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
									 (const unsigned char *) "no-store", 8, &p, end) ||
		lws_add_http_header_by_name(wsi, (const unsigned char *) "x-content-type-options:",
									(const unsigned char *) "nosniff", 7, &p, end) ||
		(allow != NULL &&
		 lws_add_http_header_by_name(wsi, (const unsigned char *) "allow:",
									 (const unsigned char *) allow, (int) strlen(allow),
									 &p, end)) ||
		(pss->close_after &&
		 lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
									  (const unsigned char *) "close", 5, &p, end)) ||
		lws_finalize_write_http_header(wsi, start, &p, end))
	{
		if (buf)
			GatewayBufFree(buf);
		return -1;
	}

	if (head_only || len == 0)
	{
		if (buf)
			GatewayBufFree(buf);
		return GatewayResponseDone(wsi, pss);
	}

	pss->out = buf->data;
	pss->out_len = len;
	pss->out_sent = 0;
	buf->data = NULL;
	lws_callback_on_writable(wsi);
	return 0;
}

/*
 * GatewayRespondNow
 *		Headers and a short body in one write, for the callbacks where lws
 *		wants the whole answer at once (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE).
 *		Returns 1 (answered), or -1 to hang up if it could not be written.
 */
int
GatewayRespondNow(struct lws *wsi, unsigned int status, const char *content_type,
			const char *body)
{
	unsigned char out[LWS_PRE + 2048];
	unsigned char *start = out + LWS_PRE;
	unsigned char *p = start;
	unsigned char *end = out + sizeof(out) - 1;
	size_t		len = strlen(body);

	if (lws_add_http_common_headers(wsi, status, content_type, (lws_filepos_t) len,
									&p, end) ||
		lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
									 (const unsigned char *) "close", 5, &p, end) ||
		lws_finalize_http_header(wsi, &p, end) ||
		(size_t) (end - p) < len)
		return -1;
	memcpy(p, body, len);
	p += len;
	if (lws_write(wsi, start, p - start, LWS_WRITE_HTTP_HEADERS) != (int) (p - start))
		return -1;
	return 1;
}

/*
 * GatewayRespondText
 *		A short plain-text response.
 */
int
GatewayRespondText(struct lws *wsi, GatewaySession *pss, unsigned int status,
			 const char *text, bool head_only, const char *allow)
{
	GatewayBuf	buf;

	GatewayBufInit(&buf, strlen(text));
	GatewayBufAppend(&buf, text, strlen(text));
	return GatewayRespondBuf(wsi, pss, status, "text/plain; charset=utf-8", &buf,
					   head_only, allow);
}

/*
 * GatewayRespondError
 *		A JSON error in the shape of the WebSocket/HTTP protocol:
 *		{"error": {"code": "SQLSTATE", "message": "..."}}
 */
int
GatewayRespondError(struct lws *wsi, GatewaySession *pss, unsigned int status,
			  const char *sqlstate, const char *message, bool head_only)
{
	GatewayBuf	buf;

	GatewayBufInit(&buf, 128 + strlen(message));
	GatewayBufAppend(&buf, "{", 1);
	GatewayBufAppendError(&buf, sqlstate, message);
	GatewayBufAppend(&buf, "}\n", 2);
	return GatewayRespondBuf(wsi, pss, status, "application/json", &buf, head_only, NULL);
}

/*
 * GatewayWriteBody
 *		LWS_CALLBACK_HTTP_WRITEABLE: write the next piece of the pending body.
 */
int
GatewayWriteBody(struct lws *wsi, GatewaySession *pss)
{
	size_t		chunk;
	bool		final;

	if (pss == NULL || pss->out == NULL)
		return 0;
	chunk = Min(pss->out_len - pss->out_sent, GATEWAY_WRITE_CHUNK);
	final = (pss->out_sent + chunk == pss->out_len);
	if (lws_write(wsi, pss->out + LWS_PRE + pss->out_sent, chunk,
				  final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int) chunk)
		return -1;
	pss->out_sent += chunk;
	if (!final)
	{
		lws_callback_on_writable(wsi);
		return 0;
	}
	return GatewayResponseDone(wsi, pss);
}
