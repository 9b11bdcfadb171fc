/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  The gateway's tables of open sockets and of the objects they belong to.
 *
 * Sockets are found by id (messages from hosts name them), objects by
 * database, class and id (a broadcast names the object, its message the
 * database); an object entry exists while it has
 * sockets (events come numbered by the hosts).  Chained hash tables of
 * fixed bucket counts, malloc'd at start.
 *
 * IDENTIFICATION
 *	  src/gateway/registry.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <stdlib.h>

#include "common/hashfn.h"

#define SOCKET_BUCKETS		16384
#define OBJECT_BUCKETS		16384

static GatewayObjSocket **socket_buckets = NULL;
static GwObject **object_buckets = NULL;

/*
 * GatewayRegistryStart
 *		At gateway start, before serving: the tables.
 */
void
GatewayRegistryStart(void)
{
	socket_buckets = calloc(SOCKET_BUCKETS, sizeof(GatewayObjSocket *));
	object_buckets = calloc(OBJECT_BUCKETS, sizeof(GwObject *));
	if (socket_buckets == NULL || object_buckets == NULL)
		ereport(FATAL, (errmsg("pg_durable_objects gateway: out of memory")));
}

/* the open socket with this id, or NULL */
GatewayObjSocket *
GatewayFindSocket(int64 id)
{
	GatewayObjSocket *s = socket_buckets[(uint64) id % SOCKET_BUCKETS];

	while (s && s->id != id)
		s = s->next_in_bucket;
	return s;
}

static uint32
object_hash(int db, const char *key, size_t keylen)
{
	return (hash_bytes((const unsigned char *) key, (int) keylen) + (uint32) db) % OBJECT_BUCKETS;
}

static size_t
object_key(char *buf, const char *class_name, const char *id, size_t idlen)
{
	size_t		clen = strlen(class_name);

	memcpy(buf, class_name, clen + 1);
	memcpy(buf + clen + 1, id, idlen);
	return clen + 1 + idlen;
}

/*
 * GatewayFindObject
 *		The entry of object (class, id) of database db; with create, made if
 *		missing (NULL when out of memory).
 */
GwObject *
GatewayFindObject(int db, const char *class_name, const char *id, size_t idlen, bool create)
{
	char		key[DURABLE_MAX_CLASS_BYTES + 1 + DURABLE_MAX_ID_BYTES];
	size_t		keylen = object_key(key, class_name, id, idlen);
	uint32		b = object_hash(db, key, keylen);
	GwObject   *o = object_buckets[b];

	while (o && (o->db != db || o->keylen != keylen || memcmp(o->key, key, keylen) != 0))
		o = o->next_in_bucket;
	if (o || !create)
		return o;
	o = calloc(1, sizeof(GwObject));
	if (o == NULL || (o->key = malloc(keylen + 1)) == NULL)
	{
		free(o);
		return NULL;
	}
	memcpy(o->key, key, keylen);
	o->key[keylen] = '\0';		/* the id part is a C string too */
	o->keylen = keylen;
	o->db = db;
	o->next_in_bucket = object_buckets[b];
	object_buckets[b] = o;
	return o;
}

static void
drop_object_if_empty(GwObject *o)
{
	GwObject  **pp;

	if (o->sockets != NULL)
		return;
	for (pp = &object_buckets[object_hash(o->db, o->key, o->keylen)]; *pp;
		 pp = &(*pp)->next_in_bucket)
	{
		if (*pp == o)
		{
			*pp = o->next_in_bucket;
			break;
		}
	}
	free(o->key);
	free(o);
}

/*
 * GatewayAddSocket
 *		A new socket of its object (s->object set): into both tables.
 */
void
GatewayAddSocket(GatewayObjSocket *s)
{
	uint64		b = (uint64) s->id % SOCKET_BUCKETS;

	s->next_in_object = s->object->sockets;
	s->object->sockets = s;
	s->next_in_bucket = socket_buckets[b];
	socket_buckets[b] = s;
}

/*
 * GatewayRemoveSocket
 *		The socket is gone: out of both tables, and its object's entry too
 *		when it was the last.
 */
void
GatewayRemoveSocket(GatewayObjSocket *s)
{
	GatewayObjSocket **pp;
	GwObject   *o = s->object;

	for (pp = &o->sockets; *pp; pp = &(*pp)->next_in_object)
		if (*pp == s)
		{
			*pp = s->next_in_object;
			break;
		}
	for (pp = &socket_buckets[(uint64) s->id % SOCKET_BUCKETS]; *pp; pp = &(*pp)->next_in_bucket)
		if (*pp == s)
		{
			*pp = s->next_in_bucket;
			break;
		}
	drop_object_if_empty(o);
}

/*
 * GatewayAllSocketIds
 *		The ids of every open socket, malloc'd (*n of them); NULL when there
 *		are none or memory is short.
 */
int64 *
GatewayAllSocketIds(int *n)
{
	int64	   *ids = NULL;
	int			cap = 0;
	int			b;

	*n = 0;
	for (b = 0; b < SOCKET_BUCKETS; b++)
	{
		GatewayObjSocket *s;

		for (s = socket_buckets[b]; s; s = s->next_in_bucket)
		{
			if (*n == cap)
			{
				int64	   *bigger = realloc(ids, sizeof(int64) * (cap = Max(64, cap * 2)));

				if (bigger == NULL)
					return ids;
				ids = bigger;
			}
			ids[(*n)++] = s->id;
		}
	}
	return ids;
}

/* the class and id of a socket's object */
const char *
GatewaySocketClass(GatewayObjSocket *s)
{
	return s->object->key;
}

const char *
GatewaySocketObjectId(GatewayObjSocket *s)
{
	return s->object->key + strlen(s->object->key) + 1;
}

/* the database of a socket's object */
int
GatewaySocketDb(GatewayObjSocket *s)
{
	return s->object->db;
}
