/*-------------------------------------------------------------------------
 *
 * request.c
 *	  The head of an HTTP/1.1 request: finding its end, parsing it strictly,
 *	  reading its headers, path and query.
 *
 * The gateway reads requests itself (wsframe.c says why).  A head is the
 * request line and the header lines up to the empty line; it must fit in
 * GATEWAY_MAX_HEAD bytes.  Parsing follows RFC 9112 without the leniencies
 * that let requests be smuggled or stall a server: a header name must be a
 * token followed directly by ':', whatever its spelling (an unknown name is
 * just a header), a value may not hold control characters (NUL included),
 * obsolete line folding is refused, Content-Length must be one decimal
 * number (repeated only with the same value), Host, Origin and the
 * WebSocket headers may come once.  Bare LF line ends are accepted.  The
 * path is percent-decoded once and never normalised, so every object id is
 * reachable; a bad escape or %00 anywhere in the target makes the request
 * bad.
 *
 * Pure functions on malloc'd memory: nothing here throws.
 *
 * IDENTIFICATION
 *	  src/gateway/request.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <ctype.h>
#include <stdlib.h>

/* headers a request may carry at most once */
static const char *const single_headers[] = {
	"host", "origin", "content-length", "content-type", "upgrade",
	"sec-websocket-key", "sec-websocket-version"
};

/* a character of an HTTP token (RFC 9110 section 5.6.2) */
static bool
is_tchar(unsigned char c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * GatewayRequestHeadEnd
 *		The length of the head at the start of buf[0..len-1], its empty line
 *		included; 0 if it is not complete yet.  Looks from offset from on
 *		(where an earlier look stopped, less three bytes).
 */
size_t
GatewayRequestHeadEnd(const char *buf, size_t len, size_t from)
{
	const char *p = buf + from;
	const char *end = buf + len;

	while ((p = memchr(p, '\n', end - p)) != NULL)
	{
		if (p + 1 < end && p[1] == '\n')
			return p + 2 - buf;
		if (p + 2 < end && p[1] == '\r' && p[2] == '\n')
			return p + 3 - buf;
		p++;
	}
	return 0;
}

/*
 * GatewayPercentDecode
 *		s[0..len-1] with its %XX escapes decoded (and '+' as a space with
 *		plus_is_space), malloc'd and NUL-terminated into *out.  False (and
 *		*out NULL) for a bad escape or an escaped NUL, or out of memory.
 */
bool
GatewayPercentDecode(const char *s, size_t len, bool plus_is_space, char **out)
{
	char	   *o = malloc(len + 1);
	size_t		i;
	size_t		n = 0;

	*out = NULL;
	if (o == NULL)
		return false;
	for (i = 0; i < len; i++)
	{
		if (s[i] == '%')
		{
			int			hi = (len - i > 2) ? GatewayHexValue(s[i + 1]) : -1;
			int			lo = (hi >= 0) ? GatewayHexValue(s[i + 2]) : -1;

			if (lo < 0 || (hi == 0 && lo == 0))
			{
				free(o);
				return false;
			}
			o[n++] = (char) ((hi << 4) | lo);
			i += 2;
		}
		else if (s[i] == '+' && plus_is_space)
			o[n++] = ' ';
		else
			o[n++] = s[i];
	}
	o[n] = '\0';
	*out = o;
	return true;
}

/*
 * next_line
 *		The line at *p (up to end), NUL-terminated in place without its CR
 *		LF or LF; *p moves past it.  NULL when a CR stands anywhere else.
 */
static char *
next_line(char **p, char *end)
{
	char	   *line = *p;
	char	   *nl = memchr(line, '\n', end - line);
	char	   *stop;

	if (nl == NULL)
		return NULL;
	*p = nl + 1;
	stop = (nl > line && nl[-1] == '\r') ? nl - 1 : nl;
	*stop = '\0';
	if (memchr(line, '\r', stop - line) != NULL)
		return NULL;
	return line;
}

static GatewayMethod
method_of(const char *name)
{
	if (strcmp(name, "GET") == 0)
		return GATEWAY_GET;
	if (strcmp(name, "HEAD") == 0)
		return GATEWAY_HEAD;
	if (strcmp(name, "POST") == 0)
		return GATEWAY_POST;
	if (strcmp(name, "OPTIONS") == 0)
		return GATEWAY_OPTIONS;
	if (strcmp(name, "CONNECT") == 0)
		return GATEWAY_CONNECT;
	return GATEWAY_OTHER;
}

/* the request line: "METHOD SP target SP HTTP/1.x"; 0 or a status */
static unsigned int
parse_request_line(GatewayRequest *req, char *line, const char **why)
{
	char	   *sp1 = strchr(line, ' ');
	char	   *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	char	   *c;

	*why = "malformed request line";
	if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 || sp1 - line > 20)
		return HTTP_STATUS_BAD_REQUEST;
	*sp1 = *sp2 = '\0';
	for (c = line; *c; c++)
		if (!is_tchar((unsigned char) *c))
			return HTTP_STATUS_BAD_REQUEST;
	for (c = sp1 + 1; *c; c++)
		if ((unsigned char) *c <= 0x20 || *c == 0x7F)
			return HTTP_STATUS_BAD_REQUEST;
	req->method_name = line;
	req->method = method_of(line);
	req->target = sp1 + 1;
	if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
		req->minor = 1;
	else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
		req->minor = 0;
	else if (strncmp(sp2 + 1, "HTTP/", 5) == 0 && isdigit((unsigned char) sp2[6]) &&
			 sp2[7] == '.' && isdigit((unsigned char) sp2[8]) && sp2[9] == '\0')
	{
		*why = "HTTP version not supported";
		return 505;
	}
	else
		return HTTP_STATUS_BAD_REQUEST;
	return 0;
}

/* one header line into req->headers; 0 or a status */
static unsigned int
parse_header(GatewayRequest *req, char *line, const char **why)
{
	char	   *colon;
	char	   *v;
	char	   *e;
	char	   *c;
	int			i;

	*why = "malformed header line";
	if (line[0] == ' ' || line[0] == '\t')
		return HTTP_STATUS_BAD_REQUEST; /* obsolete line folding */
	for (colon = line; is_tchar((unsigned char) *colon); colon++)
		*colon = (char) tolower((unsigned char) *colon);
	if (colon == line || *colon != ':')
		return HTTP_STATUS_BAD_REQUEST;
	*colon = '\0';
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (c = v; *c; c++)
		if (((unsigned char) *c < 0x20 && *c != '\t') || *c == 0x7F)
			return HTTP_STATUS_BAD_REQUEST;
	for (e = c; e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
		;
	*e = '\0';
	for (i = 0; i < (int) lengthof(single_headers); i++)
		if (strcmp(line, single_headers[i]) == 0 && GatewayRequestHeader(req, line) != NULL &&
			(strcmp(line, "content-length") != 0 ||
			 strcmp(GatewayRequestHeader(req, line), v) != 0))
		{
			*why = "a header that may come once came twice";
			return HTTP_STATUS_BAD_REQUEST;
		}
	if (req->nheaders == GATEWAY_MAX_HEADERS)
	{
		*why = "too many header lines";
		return 431;
	}
	req->headers[req->nheaders].name = line;
	req->headers[req->nheaders].value = v;
	req->nheaders++;
	return 0;
}

/* Content-Length, Transfer-Encoding and Connection; 0 or a status */
static unsigned int
read_framing(GatewayRequest *req, const char **why)
{
	const char *cl = GatewayRequestHeader(req, "content-length");
	const char *conn = GatewayRequestHeader(req, "connection");
	const char *c;

	req->content_length = 0;
	if (cl != NULL)
	{
		if (*cl == '\0' || strlen(cl) > 18)
		{
			*why = "bad Content-Length";
			return HTTP_STATUS_BAD_REQUEST;
		}
		for (c = cl; *c; c++)
			if (!isdigit((unsigned char) *c))
			{
				*why = "bad Content-Length";
				return HTTP_STATUS_BAD_REQUEST;
			}
		req->content_length = strtoll(cl, NULL, 10);
	}
	req->chunked = GatewayRequestHeader(req, "transfer-encoding") != NULL;
	if (req->minor == 1)
		req->keep_alive = !(conn && GatewayHeaderHasToken(conn, "close"));
	else
		req->keep_alive = conn && GatewayHeaderHasToken(conn, "keep-alive");
	return 0;
}

/* the request target into path (decoded) and query (raw); 0 or a status */
static unsigned int
read_target(GatewayRequest *req, const char **why)
{
	const char *t = req->target;
	const char *q;
	char	   *check;

	*why = "bad request target";
	if (req->method == GATEWAY_CONNECT)
		return 0;				/* authority-form: refused by the router */
	if (pg_strncasecmp(t, "http://", 7) == 0 || pg_strncasecmp(t, "https://", 8) == 0)
	{
		/* absolute-form: the path part */
		t = strchr(t, ':') + 3;
		t = strchr(t, '/') ? strchr(t, '/') : "/";
	}
	else if (strcmp(t, "*") == 0 && req->method == GATEWAY_OPTIONS)
	{
		req->path = strdup("*");
		return req->path ? 0 : HTTP_STATUS_INTERNAL_SERVER_ERROR;
	}
	else if (t[0] != '/')
		return HTTP_STATUS_BAD_REQUEST;
	q = strchr(t, '?');
	if (!GatewayPercentDecode(t, q ? (size_t) (q - t) : strlen(t), false, &req->path))
	{
		*why = "bad escape in the request path";
		return HTTP_STATUS_BAD_REQUEST;
	}
	if (q != NULL)
	{
		req->query = q + 1;
		if (!GatewayPercentDecode(req->query, strlen(req->query), true, &check))
		{
			*why = "bad escape in the query string";
			return HTTP_STATUS_BAD_REQUEST;
		}
		free(check);
	}
	return 0;
}

/*
 * GatewayRequestParse
 *		Parse head[0..len-1] (a whole head, GatewayRequestHeadEnd) into req.
 *		Returns 0, or the HTTP status to refuse the request with (400, 431,
 *		505, 500 out of memory) and *why, a message for it.  Free req with
 *		GatewayRequestFree either way.
 */
unsigned int
GatewayRequestParse(GatewayRequest *req, const char *head, size_t len, const char **why)
{
	char	   *p;
	char	   *end;
	char	   *line;
	unsigned int status;

	memset(req, 0, sizeof(*req));
	*why = "out of memory";
	if ((req->head = malloc(len + 1)) == NULL)
		return HTTP_STATUS_INTERNAL_SERVER_ERROR;
	memcpy(req->head, head, len);
	req->head[len] = '\0';
	p = req->head;
	end = req->head + len;

	*why = "malformed request";
	if ((line = next_line(&p, end)) == NULL)
		return HTTP_STATUS_BAD_REQUEST;
	if ((status = parse_request_line(req, line, why)) != 0)
		return status;
	for (;;)
	{
		if ((line = next_line(&p, end)) == NULL)
		{
			*why = "malformed header line";
			return HTTP_STATUS_BAD_REQUEST;
		}
		if (line[0] == '\0')
			break;
		if ((status = parse_header(req, line, why)) != 0)
			return status;
	}
	if ((status = read_framing(req, why)) != 0)
		return status;
	return read_target(req, why);
}

void
GatewayRequestFree(GatewayRequest *req)
{
	free(req->head);
	free(req->path);
	memset(req, 0, sizeof(*req));
}

/* the value of header name (lower case), NULL if absent */
const char *
GatewayRequestHeader(const GatewayRequest *req, const char *name)
{
	int			i;

	for (i = 0; i < req->nheaders; i++)
		if (strcmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* whether a comma-separated header value lists token (case-insensitive) */
bool
GatewayHeaderHasToken(const char *value, const char *token)
{
	size_t		n = strlen(token);

	while (*value)
	{
		const char *e;
		const char *t;

		while (*value == ' ' || *value == '\t' || *value == ',')
			value++;
		e = value;
		while (*e && *e != ',')
			e++;
		t = e;
		while (t > value && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t) (t - value) == n && pg_strncasecmp(value, token, n) == 0)
			return true;
		value = e;
	}
	return false;
}

/*
 * GatewayQueryNext
 *		The next parameter of a query string at *cursor (advanced): its name
 *		and value, percent-decoded with '+' as a space, malloc'd (a name
 *		without '=' has the value "").  False at the end, or for a parameter
 *		that cannot be decoded (the request was checked, so out of memory).
 */
bool
GatewayQueryNext(const char **cursor, char **name, char **value)
{
	const char *p = *cursor;
	const char *amp;
	const char *eq;

	*name = *value = NULL;
	while (p != NULL && *p == '&')
		p++;
	if (p == NULL || *p == '\0')
		return false;
	amp = strchr(p, '&');
	if (amp == NULL)
		amp = p + strlen(p);
	eq = memchr(p, '=', amp - p);
	*cursor = amp;
	if (!GatewayPercentDecode(p, (eq ? eq : amp) - p, true, name) ||
		!GatewayPercentDecode(eq ? eq + 1 : amp, eq ? (size_t) (amp - eq - 1) : 0, true, value))
	{
		free(*name);
		*name = NULL;
		return false;
	}
	return true;
}
