/*-------------------------------------------------------------------------
 *
 * wsframe.c
 *	  RFC 6455 framing, done by the gateway itself: client frames in, the
 *	  control frames it sends, the opening handshake's key.
 *
 * libwebsockets 4.1.6 (Debian 12) accepts unmasked client frames, gives no
 * way to see the mask bit, and answers only one of several pings; it may not
 * be patched.  So the gateway uses lws for the event loop, TLS and timers
 * only (connections are lws "raw" sockets) and speaks HTTP/1.1 and
 * WebSocket itself.  This file is the framing: GatewayWsNext takes the bytes
 * of a connection as they come and returns one event at a time, so that the
 * caller can stop after any of them (when a host is busy, say) and keep the
 * rest for later.  Every violation of section 5 that a server must refuse is
 * reported as an error with its close code: an unmasked frame, reserved bits
 * (no extension is negotiated), an unknown opcode, a fragmented or long
 * control frame, a continuation without a message, a new message inside
 * another, a 64-bit length with its top bit set (1002); a message over the
 * limit (1009).  UTF-8 is checked by the caller (text.c), which sees the
 * payload a piece at a time.
 *
 * Pure functions on caller-owned memory: nothing here allocates or throws.
 *
 * IDENTIFICATION
 *	  src/gateway/wsframe.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

/* RFC 6455 section 1.3 */
#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static GatewayWsEvent
fail(GatewayWsParser *p, int code, const char *reason)
{
	p->error = code;
	p->error_reason = reason;
	return GW_WS_ERROR;
}

/*
 * GatewayWsInit
 *		A parser for a new connection whose data messages may hold at most
 *		max_message payload bytes.
 */
void
GatewayWsInit(GatewayWsParser *p, uint64 max_message)
{
	memset(p, 0, sizeof(*p));
	p->need = 2;
	p->max_message = max_message;
}

/*
 * header_done
 *		The frame header is in p->hdr: check it and get ready for its payload.
 */
static GatewayWsEvent
header_done(GatewayWsParser *p)
{
	uint8		b0 = p->hdr[0];
	uint8		b1 = p->hdr[1];
	uint64		len = b1 & 0x7F;
	int			at = 2;
	int			i;

	p->fin = (b0 & 0x80) != 0;
	p->opcode = b0 & 0x0F;
	if (b0 & 0x70)
		return fail(p, DURABLE_CLOSE_PROTOCOL, "reserved bits set");
	if (len == 126)
	{
		len = ((uint64) p->hdr[2] << 8) | p->hdr[3];
		at = 4;
	}
	else if (len == 127)
	{
		if (p->hdr[2] & 0x80)
			return fail(p, DURABLE_CLOSE_PROTOCOL, "frame length with its top bit set");
		len = 0;
		for (i = 2; i < 10; i++)
			len = (len << 8) | p->hdr[i];
		at = 10;
	}
	memcpy(p->mask, p->hdr + at, 4);

	if (p->opcode >= GW_WS_CLOSE)
	{
		if (p->opcode > GW_WS_PONG)
			return fail(p, DURABLE_CLOSE_PROTOCOL, "unknown opcode");
		if (!p->fin)
			return fail(p, DURABLE_CLOSE_PROTOCOL, "fragmented control frame");
		if (len > 125)
			return fail(p, DURABLE_CLOSE_PROTOCOL, "control frame longer than 125 bytes");
		p->control_len = 0;
	}
	else
	{
		if (p->opcode > GW_WS_BINARY)
			return fail(p, DURABLE_CLOSE_PROTOCOL, "unknown opcode");
		if (p->opcode == GW_WS_CONTINUATION && p->message == 0)
			return fail(p, DURABLE_CLOSE_PROTOCOL, "continuation frame without a message");
		if (p->opcode != GW_WS_CONTINUATION && p->message != 0)
			return fail(p, DURABLE_CLOSE_PROTOCOL, "new message before the last one ended");
		if (p->opcode != GW_WS_CONTINUATION)
		{
			p->message = p->opcode;
			p->message_len = 0;
		}
		if (len > p->max_message - p->message_len)
			return fail(p, DURABLE_CLOSE_TOO_BIG, "frame larger than durable.max_message_bytes");
	}
	p->remaining = len;
	p->offset = 0;
	p->in_payload = true;
	p->have = 0;
	p->need = 2;
	return GW_WS_MORE;
}

/* unmask n payload bytes in place, continuing the frame's mask position */
static void
unmask(GatewayWsParser *p, unsigned char *data, size_t n)
{
	size_t		i = 0;
	uint32		pos = (uint32) (p->offset & 3);

	/* eight bytes at a time once the mask is aligned to the data */
	if (n >= 16)
	{
		uint8		m8[8];
		uint64		m64;

		for (i = 0; i < 8; i++)
			m8[i] = p->mask[(pos + i) & 3];
		memcpy(&m64, m8, 8);
		for (i = 0; i + 8 <= n; i += 8)
		{
			uint64		v;

			memcpy(&v, data + i, 8);
			v ^= m64;
			memcpy(data + i, &v, 8);
		}
	}
	for (; i < n; i++)
		data[i] ^= p->mask[(pos + i) & 3];
	p->offset += n;
}

/*
 * GatewayWsNext
 *		Parse from *in (*len bytes, advanced past what is used) up to the
 *		next event:
 *		GW_WS_MORE		all input used; the frame so far is kept in p
 *		GW_WS_DATA		*data, *data_len: the next unmasked payload bytes of
 *						the data message p->message (unmasked in place in the
 *						input)
 *		GW_WS_END		the data message p->ended is complete
 *		GW_WS_CONTROL	a whole control frame p->opcode with its payload in
 *						p->control (p->control_len bytes)
 *		GW_WS_ERROR		a protocol violation: close with p->error (1002 or
 *						1009) and p->error_reason; every later call says so
 *						again
 */
GatewayWsEvent
GatewayWsNext(GatewayWsParser *p, unsigned char **in, size_t *len,
			  unsigned char **data, size_t *data_len)
{
	if (p->error != 0)
		return GW_WS_ERROR;
	for (;;)
	{
		if (!p->in_payload)
		{
			while (p->have < p->need)
			{
				if (*len == 0)
					return GW_WS_MORE;
				p->hdr[p->have++] = **in;
				(*in)++;
				(*len)--;
				if (p->have == 2)
				{
					uint8		code = p->hdr[1] & 0x7F;

					/* a client must mask every frame (section 5.1) */
					if ((p->hdr[1] & 0x80) == 0)
						return fail(p, DURABLE_CLOSE_PROTOCOL, "unmasked client frame");
					p->need = 2 + (code == 126 ? 2 : code == 127 ? 8 : 0) + 4;
				}
			}
			if (header_done(p) == GW_WS_ERROR)
				return GW_WS_ERROR;
		}
		if (p->remaining > 0)
		{
			size_t		n;

			if (*len == 0)
				return GW_WS_MORE;
			n = (size_t) Min((uint64) *len, p->remaining);
			unmask(p, *in, n);
			p->remaining -= n;
			if (p->opcode >= GW_WS_CLOSE)
			{
				memcpy(p->control + p->control_len, *in, n);
				p->control_len += n;
				*in += n;
				*len -= n;
				continue;
			}
			*data = *in;
			*data_len = n;
			*in += n;
			*len -= n;
			p->message_len += n;
			return GW_WS_DATA;
		}

		/* the frame is complete */
		p->in_payload = false;
		if (p->opcode >= GW_WS_CLOSE)
			return GW_WS_CONTROL;
		if (p->fin)
		{
			p->ended = p->message;
			p->message = 0;
			return GW_WS_END;
		}
	}
}

/*
 * GatewayWsCloseCode
 *		Whether a client may send close code code (RFC 6455 section 7.4, and
 *		the IANA registry's 1012-1014): 1000-1003, 1007-1014, 3000-4999.
 */
bool
GatewayWsCloseCode(int code)
{
	return (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) ||
		(code >= 3000 && code <= 4999);
}

/*
 * GatewayWsReadClose
 *		The payload of a client's Close frame: *code (1005 when it has none)
 *		and its reason, copied NUL-terminated into reason (at least
 *		DURABLE_MAX_CLOSE_REASON + 1 bytes).  Returns 0, or the code to fail
 *		the connection with: 1002 for a one-byte payload or a code a client
 *		may not send, 1007 for a reason that is not UTF-8.
 */
int
GatewayWsReadClose(const uint8 *payload, size_t len, int *code, char *reason)
{
	reason[0] = '\0';
	*code = DURABLE_CLOSE_NO_STATUS;
	if (len == 0)
		return 0;
	if (len == 1)
		return DURABLE_CLOSE_PROTOCOL;
	*code = (payload[0] << 8) | payload[1];
	if (!GatewayWsCloseCode(*code))
		return DURABLE_CLOSE_PROTOCOL;
	if (!GatewayUtf8Valid((const char *) payload + 2, len - 2))
		return DURABLE_CLOSE_INVALID_DATA;
	memcpy(reason, payload + 2, len - 2);	/* a control payload: at most 123 */
	reason[len - 2] = '\0';
	return 0;
}

/*
 * GatewayWsControlFrame
 *		Write a server control frame (FIN, opcode, unmasked) with the given
 *		payload (at most 125 bytes) to out, which has room for 127 bytes;
 *		returns its length.
 */
size_t
GatewayWsControlFrame(uint8 *out, int opcode, const uint8 *payload, size_t len)
{
	len = Min(len, 125);
	out[0] = 0x80 | opcode;
	out[1] = (uint8) len;
	if (len > 0)
		memcpy(out + 2, payload, len);
	return len + 2;
}

/*
 * GatewayWsCloseFrame
 *		A server Close frame with code and reason (cut to fit 123 bytes, at a
 *		character boundary) in out (room for 127 bytes); returns its length.
 */
size_t
GatewayWsCloseFrame(uint8 *out, int code, const char *reason)
{
	uint8		payload[125];
	size_t		n = strlen(reason);

	if (n > DURABLE_MAX_CLOSE_REASON)
	{
		n = DURABLE_MAX_CLOSE_REASON;
		while (n > 0 && ((uint8) reason[n] & 0xC0) == 0x80)
			n--;
	}
	payload[0] = (uint8) (code >> 8);
	payload[1] = (uint8) code;
	memcpy(payload + 2, reason, n);
	return GatewayWsControlFrame(out, GW_WS_CLOSE, payload, n + 2);
}

/*
 * GatewayWsAcceptKey
 *		The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key into
 *		out (at least 29 bytes); false if the key is not the base64 of 16
 *		bytes (section 4.2.1).
 */
bool
GatewayWsAcceptKey(const char *key, char *out)
{
	char		decoded[32];
	char		both[64];
	char		encoded[64];
	unsigned char digest[20];

	if (key == NULL || strlen(key) != 24 ||
		lws_b64_decode_string(key, decoded, sizeof(decoded)) != 16)
		return false;
	snprintf(both, sizeof(both), "%s%s", key, WS_GUID);
	lws_SHA1((const unsigned char *) both, strlen(both), digest);
	if (lws_b64_encode_string((const char *) digest, 20, encoded, sizeof(encoded)) != 28)
		return false;
	memcpy(out, encoded, 29);
	return true;
}
