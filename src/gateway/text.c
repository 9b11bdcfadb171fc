/*-------------------------------------------------------------------------
 *
 * text.c
 *	  What clients send as text: UTF-8 validation and the one JSON reader.
 *
 * WebSocket text frames, close reasons and HTTP call bodies must be UTF-8
 * (RFC 6455 section 8.1; RFC 8259).  GatewayUtf8Feed validates a stream of
 * bytes a piece at a time, so that a message sent in fragments fails at the
 * first byte that cannot start or continue a character.
 *
 * Every decision the gateway takes from a client's JSON (is it JSON, is it a
 * "call", which method, which id and args) is taken here, by one scanner,
 * with the rule PostgreSQL's jsonb uses for duplicate keys: the last one
 * wins, keys compared after their escapes are decoded.  So the handler,
 * which reads the same text as jsonb, sees the args the gateway chose.  The
 * scanner is iterative (no recursion) and allocates nothing; id and args are
 * passed on as their exact text, so numbers keep every digit.
 *
 * Runs inside lws callbacks: memory is malloc'd, nothing here throws.
 *
 * IDENTIFICATION
 *	  src/gateway/text.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <stdlib.h>

/* deepest nesting of arrays and objects the scanner follows */
#define JSON_MAX_DEPTH		8192

/*
 * The state of a streaming UTF-8 check: 0 at a character boundary, else the
 * continuation bytes still expected (bits 16..) and the range the next one
 * must be in (bits 8..15 the lowest, 0..7 the highest).
 */
#define UTF8_STATE(need, lo, hi)	(((uint32) (need) << 16) | ((uint32) (lo) << 8) | (hi))

/*
 * GatewayUtf8Feed
 *		Check the next len bytes of a UTF-8 stream; *state carries an
 *		unfinished character from one call to the next (start at 0).  False
 *		at the first byte that makes the stream invalid (an overlong form, a
 *		surrogate, a code point above U+10FFFF, a stray continuation byte).
 *		The stream is complete and valid when it ends with *state == 0.
 */
bool
GatewayUtf8Feed(uint32 *state, const unsigned char *s, size_t len)
{
	uint32		st = *state;
	const unsigned char *end = s + len;

	while (s < end)
	{
		unsigned char b = *s;

		if (st == 0)
		{
			if (b < 0x80)
			{
				/* a run of ASCII, eight bytes at a time where aligned */
				s++;
				while (end - s >= 8 && ((uintptr_t) s & 7) == 0 &&
					   (*(const uint64 *) s & UINT64CONST(0x8080808080808080)) == 0)
					s += 8;
				continue;
			}
			if (b >= 0xC2 && b <= 0xDF)
				st = UTF8_STATE(1, 0x80, 0xBF);
			else if (b == 0xE0)
				st = UTF8_STATE(2, 0xA0, 0xBF);
			else if (b == 0xED)
				st = UTF8_STATE(2, 0x80, 0x9F);
			else if (b >= 0xE1 && b <= 0xEF)
				st = UTF8_STATE(2, 0x80, 0xBF);
			else if (b == 0xF0)
				st = UTF8_STATE(3, 0x90, 0xBF);
			else if (b >= 0xF1 && b <= 0xF3)
				st = UTF8_STATE(3, 0x80, 0xBF);
			else if (b == 0xF4)
				st = UTF8_STATE(3, 0x80, 0x8F);
			else
			{
				*state = st;
				return false;
			}
		}
		else
		{
			if (b < ((st >> 8) & 0xFF) || b > (st & 0xFF))
			{
				*state = st;
				return false;
			}
			st = (st >> 16) == 1 ? 0 : UTF8_STATE((st >> 16) - 1, 0x80, 0xBF);
		}
		s++;
	}
	*state = st;
	return true;
}

/* whether s[0..len-1] is complete, valid UTF-8 */
bool
GatewayUtf8Valid(const char *s, size_t len)
{
	uint32		state = 0;

	return GatewayUtf8Feed(&state, (const unsigned char *) s, len) && state == 0;
}

/* ----------------------------------------------------------------------
 * the JSON scanner
 * ----------------------------------------------------------------------
 */

static inline const char *
skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* the value of a hex digit, -1 if c is not one */
int
GatewayHexValue(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* the 4 hex digits at p as a number, -1 if they are not */
static int
hex4(const char *p, const char *end)
{
	int			v = 0;
	int			i;

	if (end - p < 4)
		return -1;
	for (i = 0; i < 4; i++)
	{
		int			h = GatewayHexValue(p[i]);

		if (h < 0)
			return -1;
		v = (v << 4) | h;
	}
	return v;
}

/*
 * scan_string
 *		p is past the opening quote: returns the position past the closing
 *		one, NULL if the string is not valid (a raw control character, a bad
 *		escape, a lone surrogate escape, invalid UTF-8).
 */
static const char *
scan_string(const char *p, const char *end)
{
	uint32		utf8 = 0;

	while (p < end)
	{
		const char *run = p;

		/* a run of plain characters */
		while (p < end && *p != '"' && *p != '\\' && (unsigned char) *p >= 0x20)
			p++;
		if (!GatewayUtf8Feed(&utf8, (const unsigned char *) run, p - run))
			return NULL;
		if (p >= end || (unsigned char) *p < 0x20)
			return NULL;
		if (*p == '"')
			return utf8 == 0 ? p + 1 : NULL;
		if (utf8 != 0 || ++p >= end)
			return NULL;
		switch (*p)
		{
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				p++;
				break;
			case 'u':
				{
					int			c = hex4(p + 1, end);

					if (c < 0 || (c >= 0xDC00 && c <= 0xDFFF))
						return NULL;
					p += 5;
					if (c >= 0xD800 && c <= 0xDBFF)
					{
						/* a high surrogate needs a low one right after */
						int			lo;

						if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
							return NULL;
						lo = hex4(p + 2, end);
						if (lo < 0xDC00 || lo > 0xDFFF)
							return NULL;
						p += 6;
					}
					break;
				}
			default:
				return NULL;
		}
	}
	return NULL;
}

/* past a JSON number at p, NULL if it is not one */
static const char *
scan_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return NULL;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (p < end && *p == '.')
	{
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

/* past the literal word at p, NULL if it is not there */
static const char *
scan_word(const char *p, const char *end, const char *word)
{
	size_t		n = strlen(word);

	if ((size_t) (end - p) < n || memcmp(p, word, n) != 0)
		return NULL;
	return p + n;
}

/*
 * decode_char
 *		The next character of a string's raw text (between its quotes) at
 *		*p, escapes decoded, as a code point; advances *p.  The text was
 *		validated by scan_string.
 */
static int
decode_char(const char **p)
{
	const char *s = *p;
	int			c;

	if (*s != '\\')
	{
		*p = s + 1;
		return (unsigned char) *s;	/* byte by byte: comparisons are bytewise */
	}
	switch (s[1])
	{
		case 'b':
			c = '\b';
			break;
		case 'f':
			c = '\f';
			break;
		case 'n':
			c = '\n';
			break;
		case 'r':
			c = '\r';
			break;
		case 't':
			c = '\t';
			break;
		case 'u':
			c = hex4(s + 2, s + 6);
			*p = s + 6;
			if (c >= 0xD800 && c <= 0xDBFF)
			{
				c = 0x10000 + ((c - 0xD800) << 10) + (hex4(s + 8, s + 12) - 0xDC00);
				*p = s + 12;
			}
			return -c - 1;		/* an escaped code point, see below */
		default:
			c = s[1];
			break;
	}
	*p = s + 2;
	return c;
}

/*
 * string_equals
 *		Whether the string whose raw text is raw[0..len-1] (between its
 *		quotes) is name, an ASCII word, once decoded.
 */
static bool
string_equals(const char *raw, size_t len, const char *name)
{
	const char *p = raw;
	const char *end = raw + len;

	while (p < end)
	{
		int			c = decode_char(&p);

		if (c < 0)
			c = -c - 1;			/* \u escapes of ASCII count as the letter */
		if (*name == '\0' || c != (unsigned char) *name)
			return false;
		name++;
	}
	return *name == '\0';
}

/* past a string key at p (at its opening quote) and the colon after it; NULL if bad */
static const char *
scan_key(const char *p, const char *end, const char **key, size_t *keylen)
{
	if (p >= end || *p != '"')
		return NULL;
	*key = p + 1;
	if ((p = scan_string(p + 1, end)) == NULL)
		return NULL;
	*keylen = p - 1 - *key;
	p = skip_space(p, end);
	if (p >= end || *p != ':')
		return NULL;
	return p + 1;
}

/*
 * GatewayJsonScan
 *		Validate text as one JSON value (RFC 8259, UTF-8, at most
 *		JSON_MAX_DEPTH levels deep).  If it is an object, members[i].value
 *		and .len are set to the exact text of the value of the top-level
 *		member named members[i].name (the last one, as jsonb keeps), or NULL
 *		when absent.  Returns -1 for text that is not JSON, else 1 for an
 *		object and 0 for any other value.
 */
int
GatewayJsonScan(const char *text, size_t len, GatewayJsonMember *members, int nmembers)
{
	const char *p = text;
	const char *end = text + len;
	uint8		stack[JSON_MAX_DEPTH / 8];	/* a bit per level: 1 object, 0 array */
	int			depth = 0;
	bool		top_object;
	const char *key = NULL;		/* of the current top-level member */
	size_t		keylen = 0;
	const char *value_start = NULL; /* of the current top-level member */
	const char *k;
	size_t		klen;
	bool		in_object;
	int			i;

	for (i = 0; i < nmembers; i++)
		members[i].value = NULL;
	p = skip_space(p, end);
	top_object = (p < end && *p == '{');

value:
	p = skip_space(p, end);
	if (p >= end)
		return -1;
	if (depth == 1 && top_object)
		value_start = p;
	switch (*p)
	{
		case '{':
		case '[':
			if (depth >= JSON_MAX_DEPTH)
				return -1;
			if (*p == '{')
				stack[depth / 8] |= (1 << (depth % 8));
			else
				stack[depth / 8] &= ~(1 << (depth % 8));
			depth++;
			p = skip_space(p + 1, end);
			if (p < end && (*p == '}' || *p == ']'))
				goto close;
			if (stack[(depth - 1) / 8] & (1 << ((depth - 1) % 8)))
			{
				if ((p = scan_key(p, end, &k, &klen)) == NULL)
					return -1;
				if (depth == 1)
				{
					key = k;
					keylen = klen;
				}
			}
			goto value;
		case '"':
			p = scan_string(p + 1, end);
			break;
		case 't':
			p = scan_word(p, end, "true");
			break;
		case 'f':
			p = scan_word(p, end, "false");
			break;
		case 'n':
			p = scan_word(p, end, "null");
			break;
		default:
			p = scan_number(p, end);
			break;
	}
	if (p == NULL)
		return -1;

after:
	if (depth == 1 && top_object)
	{
		for (i = 0; i < nmembers; i++)
			if (string_equals(key, keylen, members[i].name))
			{
				members[i].value = value_start;
				members[i].len = p - value_start;
			}
	}
	p = skip_space(p, end);
	if (depth == 0)
		return (p == end) ? (top_object ? 1 : 0) : -1;
	if (p >= end)
		return -1;
	if (*p == ',')
	{
		p++;
		if (stack[(depth - 1) / 8] & (1 << ((depth - 1) % 8)))
		{
			if ((p = scan_key(skip_space(p, end), end, &k, &klen)) == NULL)
				return -1;
			if (depth == 1)
			{
				key = k;
				keylen = klen;
			}
		}
		goto value;
	}

close:
	in_object = (stack[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
	if (p >= end || *p != (in_object ? '}' : ']'))
		return -1;
	depth--;
	p++;
	goto after;
}

/*
 * GatewayJsonString
 *		The string whose exact JSON text (quotes included) is raw[0..len-1],
 *		decoded, malloc'd and NUL-terminated, its length in *outlen; NULL if
 *		the text is not a string or memory ran out.  The text was validated
 *		by GatewayJsonScan.
 */
char *
GatewayJsonString(const char *raw, size_t len, size_t *outlen)
{
	const char *p;
	const char *end;
	char	   *out;
	char	   *o;

	if (len < 2 || raw[0] != '"' || raw[len - 1] != '"')
		return NULL;
	p = raw + 1;
	end = raw + len - 1;
	/* a decoded string is never longer than its text */
	if ((out = malloc(len)) == NULL)
		return NULL;
	o = out;
	while (p < end)
	{
		int			c = decode_char(&p);

		if (c >= 0)
			*o++ = (char) c;
		else
		{
			/* an escaped code point: as UTF-8 */
			c = -c - 1;
			if (c < 0x80)
				*o++ = (char) c;
			else if (c < 0x800)
			{
				*o++ = (char) (0xC0 | (c >> 6));
				*o++ = (char) (0x80 | (c & 0x3F));
			}
			else if (c < 0x10000)
			{
				*o++ = (char) (0xE0 | (c >> 12));
				*o++ = (char) (0x80 | ((c >> 6) & 0x3F));
				*o++ = (char) (0x80 | (c & 0x3F));
			}
			else
			{
				*o++ = (char) (0xF0 | (c >> 18));
				*o++ = (char) (0x80 | ((c >> 12) & 0x3F));
				*o++ = (char) (0x80 | ((c >> 6) & 0x3F));
				*o++ = (char) (0x80 | (c & 0x3F));
			}
		}
	}
	*o = '\0';
	*outlen = o - out;
	return out;
}

/* a malloc'd copy of raw[0..len-1] */
static char *
copy_text(const char *raw, size_t len)
{
	char	   *s = malloc(len + 1);

	if (s != NULL)
	{
		memcpy(s, raw, len);
		s[len] = '\0';
	}
	return s;
}

/*
 * GatewayParseFrame
 *		Read one client frame (a text message).  Returns FRAME_NOT_JSON if it
 *		is not JSON, FRAME_BAD_CALL (with *error set) for a "call" frame
 *		without a usable method, else FRAME_CALL or FRAME_OTHER.  For a call,
 *		frame->id (JSON text, "null" when absent), frame->method and
 *		frame->args (JSON text, "{}" when absent) are malloc'd; free them
 *		with GatewayFreeFrame.  A frame is a call when its member "type" (the
 *		last one) is the string "call".
 */
GatewayFrameKind
GatewayParseFrame(const char *text, size_t len, GatewayFrame *frame, const char **error)
{
	GatewayJsonMember m[4] = {{"type"}, {"method"}, {"id"}, {"args"}};
	char	   *type;
	size_t		n;
	bool		is_call;
	int			kind;

	memset(frame, 0, sizeof(*frame));
	*error = NULL;
	kind = GatewayJsonScan(text, len, m, lengthof(m));
	if (kind < 0)
		return FRAME_NOT_JSON;
	if (kind == 0 || m[0].value == NULL)
		return FRAME_OTHER;
	type = GatewayJsonString(m[0].value, m[0].len, &n);
	is_call = type != NULL && n == 4 && memcmp(type, "call", 4) == 0;
	free(type);
	if (!is_call)
		return FRAME_OTHER;

	frame->id = m[2].value ? copy_text(m[2].value, m[2].len) : strdup("null");
	frame->method = m[1].value ? GatewayJsonString(m[1].value, m[1].len, &n) : NULL;
	if (frame->method == NULL || n == 0)
	{
		*error = "a call frame needs a method name";
		return FRAME_BAD_CALL;
	}
	if (frame->method[0] == '$' || strlen(frame->method) != n)
	{
		*error = "method names starting with \"$\" are reserved for the system";
		return FRAME_BAD_CALL;
	}
	frame->args = m[3].value ? copy_text(m[3].value, m[3].len) : strdup("{}");
	return (frame->id && frame->args) ? FRAME_CALL : FRAME_NOT_JSON;
}

void
GatewayFreeFrame(GatewayFrame *frame)
{
	free(frame->id);
	free(frame->method);
	free(frame->args);
	memset(frame, 0, sizeof(*frame));
}

/*
 * GatewayJsonValid
 *		Whether text is one JSON value (for HTTP call bodies).
 */
bool
GatewayJsonValid(const char *text, size_t len)
{
	return GatewayJsonScan(text, len, NULL, 0) >= 0;
}
