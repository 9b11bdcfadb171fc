/*-------------------------------------------------------------------------
 *
 * classes.c
 *	  The gateway's copy of the class directory.
 *
 * The scheduler of each database sends the whole directory of its database
 * as a GATEWAY_MSG_CLASSES message whenever classes changed or the gateway
 * started (host/upkeep.c describes the encoding).  The gateway keeps one
 * directory per database of durable.database, each in its own memory as an
 * array sorted by name, and looks classes up with a binary search: no lock,
 * no shared memory and no limit on the number of classes.  Until the first
 * message of a database arrived its directory is "not loaded" and its
 * object routes answer 503.
 *
 * Runs inside lws callbacks: memory is malloc'd, nothing here throws; a
 * message that cannot be decoded or stored leaves the previous copy.
 *
 * IDENTIFICATION
 *	  src/gateway/classes.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <stdlib.h>

typedef struct GatewayClass
{
	char		name[DURABLE_MAX_CLASS_BYTES + 1];
	uint8		flags;			/* DURABLE_CLASS_* */
	Oid			owner;			/* the class owner: its calls go to its hosts */
	char	   *auto_request;	/* malloc'd, with DURABLE_CLASS_AUTO_RESPONSE */
	char	   *auto_response;
} GatewayClass;

typedef struct GatewayDirectory
{
	GatewayClass *classes;
	int			nclasses;
	bool		loaded;
} GatewayDirectory;

static GatewayDirectory dirs[DURABLE_MAX_DATABASES];

static void
free_classes(GatewayClass *list, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		free(list[i].auto_request);
		free(list[i].auto_response);
	}
	free(list);
}

/* read a 2-byte length at *p (bounded by end); -1 if it does not fit */
static int
read_length16(const unsigned char **p, const unsigned char *end)
{
	int			len;

	if (end - *p < 2)
		return -1;
	len = (*p)[0] | ((*p)[1] << 8);
	*p += 2;
	return (end - *p < len) ? -1 : len;
}

/* a malloc'd NUL-terminated copy of a length-prefixed string; NULL on failure */
static char *
read_string16(const unsigned char **p, const unsigned char *end)
{
	int			len = read_length16(p, end);
	char	   *s;

	if (len < 0 || len > DURABLE_MAX_AUTO_RESPONSE || (s = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(s, *p, len);
	s[len] = '\0';
	*p += len;
	return s;
}

static int
compare_classes(const void *a, const void *b)
{
	return strcmp(((const GatewayClass *) a)->name, ((const GatewayClass *) b)->name);
}

/*
 * GatewayClassesReplace
 *		A "classes" message of database db arrived: decode data[0..len-1] and
 *		make it that database's directory.  On a malformed message or out of
 *		memory the previous directory stays (the scheduler sends the next one
 *		when classes change).
 */
void
GatewayClassesReplace(int db, const char *data, size_t len)
{
	GatewayDirectory *dir;
	const unsigned char *p = (const unsigned char *) data;
	const unsigned char *end = p + len;
	GatewayClass *list;
	int			cap = 16;
	int			n = 0;

	if (db < 0 || db >= DurableDatabaseCount())
		return;
	dir = &dirs[db];
	list = malloc(sizeof(GatewayClass) * cap);
	if (list == NULL)
		return;
	while (p < end)
	{
		GatewayClass *c;
		int			namelen = *p++;

		if (namelen < 1 || namelen > DURABLE_MAX_CLASS_BYTES || end - p < namelen + 5)
			goto bad;
		if (n == cap)
		{
			GatewayClass *bigger = realloc(list, sizeof(GatewayClass) * cap * 2);

			if (bigger == NULL)
				goto bad;
			list = bigger;
			cap *= 2;
		}
		c = &list[n];
		memcpy(c->name, p, namelen);
		c->name[namelen] = '\0';
		p += namelen;
		c->flags = *p++;
		c->owner = (Oid) p[0] | ((Oid) p[1] << 8) | ((Oid) p[2] << 16) | ((Oid) p[3] << 24);
		p += 4;
		c->auto_request = c->auto_response = NULL;
		n++;
		if (c->flags & DURABLE_CLASS_AUTO_RESPONSE)
		{
			c->auto_request = read_string16(&p, end);
			c->auto_response = c->auto_request ? read_string16(&p, end) : NULL;
			if (c->auto_response == NULL)
				goto bad;
		}
	}
	qsort(list, n, sizeof(GatewayClass), compare_classes);
	free_classes(dir->classes, dir->nclasses);
	dir->classes = list;
	dir->nclasses = n;
	dir->loaded = true;
	return;

bad:
	free_classes(list, n);
}

/*
 * GatewayClassLookup
 *		Copy the entry of class name of database db into *out; false if
 *		there is none.  *is_loaded tells whether a directory of db ever
 *		arrived.
 */
bool
GatewayClassLookup(int db, const char *name, GatewayClassEntry *out, bool *is_loaded)
{
	GatewayDirectory *dir;
	GatewayClass key;
	GatewayClass *c;

	*is_loaded = false;
	if (db < 0 || db >= DurableDatabaseCount())
		return false;
	dir = &dirs[db];
	*is_loaded = dir->loaded;
	if (strlen(name) > DURABLE_MAX_CLASS_BYTES || dir->nclasses == 0)
		return false;
	strlcpy(key.name, name, sizeof(key.name));
	c = bsearch(&key, dir->classes, dir->nclasses, sizeof(GatewayClass), compare_classes);
	if (c == NULL)
		return false;
	memset(out, 0, sizeof(*out));
	out->db = db;
	strlcpy(out->name, c->name, sizeof(out->name));
	out->owner = c->owner;
	out->websocket = (c->flags & DURABLE_CLASS_WEBSOCKET) != 0;
	out->http = (c->flags & DURABLE_CLASS_HTTP) != 0;
	out->has_auto_response = (c->flags & DURABLE_CLASS_AUTO_RESPONSE) != 0;
	if (out->has_auto_response)
	{
		strlcpy(out->auto_request, c->auto_request, sizeof(out->auto_request));
		strlcpy(out->auto_response, c->auto_response, sizeof(out->auto_response));
	}
	return true;
}

/*
 * GatewayClassesLoaded
 *		Whether the directory of database db arrived (the gateway can route
 *		its object requests).
 */
bool
GatewayClassesLoaded(int db)
{
	return dirs[db].loaded;
}
