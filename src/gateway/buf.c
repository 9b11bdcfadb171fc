/*-------------------------------------------------------------------------
 *
 * buf.c
 *	  Growable buffers of the gateway, and the one JSON error body.
 *
 * Buffers are malloc'd with LWS_PRE bytes of headroom (where a WebSocket
 * frame's header goes, see frames.c); running out of memory marks a buffer
 * failed instead of raising an error, and a failed body becomes a 500.
 * Every JSON error the gateway sends, as an HTTP body or inside a WebSocket
 * frame, is made by GatewayBufAppendError.
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
