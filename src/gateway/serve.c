/*-------------------------------------------------------------------------
 *
 * serve.c
 *	  A connection's input: HTTP requests one at a time, then WebSocket
 *	  frames.
 *
 * Bytes from a client (a read, or what conn.c kept from before) go where
 * the connection's state says: to the head of the next request (found
 * whole, then parsed by request.c and routed by http.c), to the body of an
 * HTTP call, to the socket's frames (ws.c), or nowhere once the connection
 * lingers.  While a request is being answered, or the connection waits for
 * anything else, reading is paused and the rest is kept: so pipelined
 * requests are answered one after the other, in order, each exactly once.
 * Empty lines before a request are skipped (RFC 9112 section 2.2).
 *
 * IDENTIFICATION
 *	  src/gateway/serve.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

/*
 * read_head
 *		In CONN_HEAD: if a whole head starts at *p, parse and route it.
 *		Returns the callback's value; *p and *n move past what was used
 *		(nothing while the head is incomplete).
 */
static int
read_head(GatewayConn *c, unsigned char **p, size_t *n)
{
	size_t		end;
	unsigned int status;
	const char *why;

	while (*n > 0 && (**p == '\r' || **p == '\n'))
	{
		(*p)++;
		(*n)--;
		c->head_scanned = 0;
	}
	if (*n == 0)
		return 0;
	end = GatewayRequestHeadEnd((const char *) *p, *n, c->head_scanned);
	if (end == 0 || end > GATEWAY_MAX_HEAD)
	{
		if (*n <= GATEWAY_MAX_HEAD && end == 0)
		{
			c->head_scanned = *n > 3 ? *n - 3 : 0;
			return 0;			/* more to come */
		}
		c->close_after = true;
		*p += *n;
		*n = 0;
		return GatewayRespondError(c, 431, DURABLE_STATE_PROTOCOL,
								   "request head larger than 16kB");
	}
	status = GatewayRequestParse(&c->req, (const char *) *p, end, &why);
	c->have_req = true;
	c->head_scanned = 0;
	*p += end;
	*n -= end;
	if (status != 0)
	{
		c->close_after = true;
		return GatewayRespondError(c, status, DURABLE_STATE_PROTOCOL, why);
	}
	return GatewayHttpRequest(c);
}

/* in CONN_BODY: body bytes of an HTTP call */
static int
read_body(GatewayConn *c, unsigned char **p, size_t *n)
{
	size_t		m = (size_t) Min((uint64) *n, c->body_left);

	memcpy(c->body + c->body_len, *p, m);
	c->body_len += m;
	c->body_left -= m;
	*p += m;
	*n -= m;
	if (c->body_left > 0)
		return 0;
	return GatewayHttpBodyDone(c);
}

/*
 * GatewayServeInput
 *		in[0..len-1] came from the client of c (len 0: hand on only what was
 *		kept).  Returns the callback's value.
 */
int
GatewayServeInput(GatewayConn *c, unsigned char *in, size_t len)
{
	unsigned char *p = in;
	size_t		n = len;
	bool		kept = c->in_len > 0;
	int			rc = 0;

	if (kept)
	{
		/* the new bytes go after the kept ones: handle them all from there */
		if (len > 0 && !GatewayConnKeep(c, in, len))
			return -1;
		p = c->in;
		n = c->in_len;
	}
	while (n > 0 && rc == 0 && !c->broken)
	{
		size_t		before = n;

		if (c->state == CONN_LINGER)
		{
			n = 0;				/* dropped */
			break;
		}
		if (c->paused != 0)
			break;
		switch (c->state)
		{
			case CONN_HEAD:
				rc = read_head(c, &p, &n);
				break;
			case CONN_BODY:
				rc = read_body(c, &p, &n);
				break;
			case CONN_WEBSOCKET:
				rc = GatewayWsInput(c->sock, &p, &n);
				break;
			default:
				break;
		}
		if (n == before)
			break;				/* an incomplete head: wait for more */
	}

	/* keep what is left for later */
	if (kept)
		GatewayConnTake(c, c->in_len - n);
	else if (n > 0 && !GatewayConnKeep(c, p, n))
		return -1;
	return rc;
}
