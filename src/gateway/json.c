/*-------------------------------------------------------------------------
 *
 * json.c
 *	  All use of jansson: writing the args of lifecycle calls, reading the
 *	  tags a host sent.
 *
 * What clients send is read by text.c alone (one reader decides what a
 * client's JSON means).  jansson's json_object clashes with PostgreSQL's
 * fmgr prototypes, so jansson lives in this file alone, which includes only
 * postgres.h.  Everything here runs inside lws callbacks: it allocates with
 * malloc (results are freed with free), never with palloc, and never raises
 * an error.
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
 *		{"query": {...}, "headers": {...}, "remote_addr": "..."} and, for a
 *		socket that resumes (since >= 0), "since": n; malloc'd; NULL when out
 *		of memory.
 */
char *
DurableJsonConnectArgs(const char *const *query_names, const char *const *query_values,
					   int nquery, const char *const *header_names,
					   const char *const *header_values, int nheaders,
					   const char *remote_addr, int64 since)
{
	json_t	   *root = new_object();
	char	   *text;

	if (root == NULL)
		return NULL;
	json_object_set_new(root, "query", pairs_object(query_names, query_values, nquery));
	json_object_set_new(root, "headers", pairs_object(header_names, header_values, nheaders));
	json_object_set_new(root, "remote_addr", json_string(remote_addr ? remote_addr : ""));
	if (since >= 0)
		json_object_set_new(root, "since", json_integer((json_int_t) since));
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
