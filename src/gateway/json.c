/*-------------------------------------------------------------------------
 *
 * json.c
 *	  All use of jansson: reading WebSocket frames and writing call args.
 *
 * The gateway (gateway_objects.c) parses what clients send and builds the
 * args of the lifecycle calls here.  jansson's json_object clashes with
 * PostgreSQL's fmgr prototypes, so jansson lives in this file alone, which
 * includes only postgres.h.  Everything here runs inside lws callbacks: it
 * allocates with malloc (results are freed with free), never with palloc,
 * and never raises an error.
 *
 * IDENTIFICATION
 *	  src/gateway/json.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <jansson.h>

#include "gateway/json.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

/*
 * new_object
 *		An empty JSON object.  Not json_object(): the postgres executable
 *		exports a function of that name (the SQL json_object), and the
 *		dynamic linker would bind our call to it.
 */
static json_t *
new_object(void)
{
	return json_pack("{}");
}

/* ----------------------------------------------------------------------
 * raw members: the exact text of a member's value, for numbers that jansson
 * (doubles, 64-bit integers) would not keep exactly
 * ----------------------------------------------------------------------
 */

static const char *
skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* past one JSON value (already validated by jansson), or NULL */
static const char *
skip_value(const char *p, const char *end)
{
	int			depth = 0;

	p = skip_space(p, end);
	do
	{
		if (p >= end)
			return NULL;
		if (*p == '"')
		{
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\')
					p++;
			if (p >= end)
				return NULL;
			p++;
		}
		else if (*p == '{' || *p == '[')
		{
			depth++;
			p++;
		}
		else if (*p == '}' || *p == ']')
		{
			depth--;
			p++;
		}
		else if (depth > 0 && (*p == ',' || *p == ':' || *p == ' ' || *p == '\t' ||
							   *p == '\n' || *p == '\r'))
			p++;
		else
		{
			/* a number, true, false or null */
			while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
				   *p != '\t' && *p != '\n' && *p != '\r')
				p++;
		}
	} while (depth > 0);
	return p;
}

/*
 * raw_member
 *		The text of the value of top-level member key (the last one, as
 *		jansson keeps), malloc'd; NULL if absent or its key is escaped.
 */
static char *
raw_member(const char *text, size_t len, const char *key)
{
	const char *end = text + len;
	const char *p = skip_space(text, end);
	const char *found = NULL;
	size_t		found_len = 0;
	size_t		klen = strlen(key);

	if (p >= end || *p != '{')
		return NULL;
	p++;
	for (;;)
	{
		const char *k;
		const char *v;
		const char *vend;

		p = skip_space(p, end);
		if (p >= end || *p != '"')
			break;
		k = p + 1;
		p = skip_value(p, end);
		if (p == NULL)
			return NULL;
		p = skip_space(p, end);
		if (p >= end || *p != ':')
			return NULL;
		v = skip_space(p + 1, end);
		vend = skip_value(v, end);
		if (vend == NULL)
			return NULL;
		if ((size_t) (p - k) >= klen + 1 && k[klen] == '"' && memcmp(k, key, klen) == 0 &&
			skip_space(k + klen + 1, end) == p)
		{
			found = v;
			found_len = vend - v;
		}
		p = skip_space(vend, end);
		if (p < end && *p == ',')
		{
			p++;
			continue;
		}
		break;
	}
	return found ? strndup(found, found_len) : NULL;
}

/*
 * DurableJsonParseFrame
 *		Read one client frame.  Returns FRAME_NOT_JSON if it is not JSON,
 *		FRAME_BAD_CALL (with *error set) for a "call" frame without a usable
 *		method, else FRAME_CALL or FRAME_OTHER.  For a call, frame->id (JSON
 *		text, "null" when absent), frame->method and frame->args (JSON text,
 *		"{}" when absent) are malloc'd; free them with DurableJsonFreeFrame.
 */
DurableFrameKind
DurableJsonParseFrame(const char *text, size_t len, DurableFrame *frame,
					  const char **error)
{
	json_error_t jerr;
	json_t	   *root;
	json_t	   *type;
	json_t	   *method;
	json_t	   *args;
	json_t	   *id;
	DurableFrameKind kind = FRAME_OTHER;

	memset(frame, 0, sizeof(*frame));
	*error = NULL;
	root = json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &jerr);
	if (root == NULL)
		return FRAME_NOT_JSON;

	type = json_is_object(root) ? json_object_get(root, "type") : NULL;
	if (type == NULL || !json_is_string(type) || strcmp(json_string_value(type), "call") != 0)
	{
		json_decref(root);
		return FRAME_OTHER;
	}

	/* id and args keep their exact text; the host reads them with jsonb */
	id = json_object_get(root, "id");
	frame->id = id ? raw_member(text, len, "id") : strdup("null");
	if (frame->id == NULL)
		frame->id = json_dumps(id, DUMP_FLAGS);
	method = json_object_get(root, "method");
	args = json_object_get(root, "args");
	if (method == NULL || !json_is_string(method) || json_string_length(method) == 0)
	{
		*error = "a call frame needs a method name";
		kind = FRAME_BAD_CALL;
	}
	else if (json_string_value(method)[0] == '$' ||
			 strlen(json_string_value(method)) != json_string_length(method))
	{
		*error = "method names starting with \"$\" are reserved for the system";
		kind = FRAME_BAD_CALL;
	}
	else
	{
		frame->method = strdup(json_string_value(method));
		frame->args = args ? raw_member(text, len, "args") : strdup("{}");
		if (frame->args == NULL && args)
			frame->args = json_dumps(args, DUMP_FLAGS);
		kind = (frame->id && frame->method && frame->args) ? FRAME_CALL : FRAME_NOT_JSON;
	}
	json_decref(root);
	return kind;
}

void
DurableJsonFreeFrame(DurableFrame *frame)
{
	free(frame->id);
	free(frame->method);
	free(frame->args);
	memset(frame, 0, sizeof(*frame));
}

/*
 * DurableJsonValid
 *		Whether text is one JSON value (for HTTP call bodies).
 */
bool
DurableJsonValid(const char *text, size_t len)
{
	json_error_t jerr;
	json_t	   *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &jerr);

	if (root == NULL)
		return false;
	json_decref(root);
	return true;
}

static json_t *
pairs_object(const char *const *names, const char *const *values, int n)
{
	json_t	   *obj = new_object();
	int			i;

	for (i = 0; obj != NULL && i < n; i++)
	{
		json_t	   *v = json_string(values[i] ? values[i] : "");

		/* not UTF-8: keep the key, with an empty value */
		if (v == NULL)
			v = json_string("");
		if (json_object_set_new(obj, names[i], v) != 0)
			continue;
	}
	return obj;
}

/*
 * DurableJsonConnectArgs
 *		{"query": {...}, "headers": {...}, "remote_addr": "..."}, malloc'd;
 *		NULL when out of memory.
 */
char *
DurableJsonConnectArgs(const char *const *query_names, const char *const *query_values,
					   int nquery, const char *const *header_names,
					   const char *const *header_values, int nheaders,
					   const char *remote_addr)
{
	json_t	   *root = new_object();
	char	   *text;

	if (root == NULL)
		return NULL;
	json_object_set_new(root, "query", pairs_object(query_names, query_values, nquery));
	json_object_set_new(root, "headers", pairs_object(header_names, header_values, nheaders));
	json_object_set_new(root, "remote_addr", json_string(remote_addr ? remote_addr : ""));
	text = json_dumps(root, DUMP_FLAGS);
	json_decref(root);
	return text;
}

/*
 * DurableJsonCloseArgs
 *		{"socket": n, "code": n, "reason": "...", "tags": [...]}, malloc'd.
 *		tags_json is a JSON array (from the host's acceptance).
 */
char *
DurableJsonCloseArgs(int64 socket, int code, const char *reason, const char *tags_json)
{
	json_error_t jerr;
	json_t	   *root = new_object();
	json_t	   *tags = tags_json ? json_loads(tags_json, 0, &jerr) : NULL;
	char	   *text;

	if (root == NULL)
		return NULL;
	json_object_set_new(root, "socket", json_integer((json_int_t) socket));
	json_object_set_new(root, "code", json_integer(code));
	json_object_set_new(root, "reason", json_string(reason ? reason : ""));
	json_object_set_new(root, "tags", tags ? tags : json_pack("[]"));
	text = json_dumps(root, DUMP_FLAGS);
	json_decref(root);
	return text;
}

/*
 * DurableJsonTags
 *		Read a JSON array of strings into a malloc'd array of malloc'd
 *		strings; returns how many (0 on anything unexpected).
 */
int
DurableJsonTags(const char *tags_json, char ***tags)
{
	json_error_t jerr;
	json_t	   *arr = json_loads(tags_json, 0, &jerr);
	size_t		i;
	int			n = 0;

	*tags = NULL;
	if (arr == NULL)
		return 0;
	if (json_is_array(arr) && json_array_size(arr) > 0)
	{
		*tags = calloc(json_array_size(arr), sizeof(char *));
		for (i = 0; *tags != NULL && i < json_array_size(arr); i++)
		{
			json_t	   *t = json_array_get(arr, i);

			if (json_is_string(t))
				(*tags)[n++] = strdup(json_string_value(t));
		}
	}
	json_decref(arr);
	return n;
}
