/*-------------------------------------------------------------------------
 *
 * objects.c
 *	  Names of objects: the rules for class names, ids, methods and
 *	  payload sizes, and the hashes that place an object.
 *
 * An object is (class, id).  A class name matches ^[a-z_][a-z0-9_]{0,62}$
 * (DurableClassNameValid is the one definition of that rule: SQL checks and
 * the gateway's routes use it), an id has 1 to 512 bytes, a method must not
 * be empty nor start with "$" (lifecycle methods are the system's).  Objects
 * are placed by stable hashes of class and id.
 *
 * IDENTIFICATION
 *	  src/shared/objects.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/objects.h"

#include "common/hashfn.h"

/*
 * DurableClassNameValid
 *		Whether name matches ^[a-z_][a-z0-9_]{0,62}$.  Never throws, allocates
 *		nothing (the gateway calls it).
 */
bool
DurableClassNameValid(const char *name)
{
	size_t		i;

	if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return false;
	for (i = 1; name[i]; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
			  name[i] == '_'))
			return false;
	return i <= DURABLE_MAX_CLASS_BYTES;
}

/*
 * DurableCheckClassName
 *		ERROR 22023 unless name is a valid class name.
 */
void
DurableCheckClassName(const char *name)
{
	if (!DurableClassNameValid(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid class name \"%s\"", name),
				 errdetail("A class name is a lower-case letter or underscore followed by up to 62 lower-case letters, digits or underscores.")));
}

/*
 * DurableCheckId
 *		ERROR 22023 unless id has 1..512 bytes.
 */
void
DurableCheckId(const char *id)
{
	size_t		len = strlen(id);

	if (len < 1 || len > DURABLE_MAX_ID_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("object id must have 1 to %d bytes, not %zu",
						DURABLE_MAX_ID_BYTES, len)));
}

/*
 * DurableCheckMethod
 *		ERROR 22023 for an empty method or a lifecycle method ("$...").
 */
void
DurableCheckMethod(const char *method)
{
	if (method[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method name must not be empty")));
	if (method[0] == '$')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method \"%s\" is reserved for the system", method),
				 errdetail("Method names starting with \"$\" are lifecycle methods called by the system.")));
}

/*
 * DurableCheckMessageSize
 *		ERROR 54000 if a payload exceeds durable.max_message_bytes.
 */
void
DurableCheckMessageSize(Size size, const char *what)
{
	if (size > (Size) durable_max_message_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large", what),
				 errdetail("It takes %zu bytes; durable.max_message_bytes is %d.",
						   size, durable_max_message_bytes)));
}

/* class NUL id, the bytes both hashes of an object are made of; returns its length */
static int
object_bytes(const char *class_name, const char *id, char *key)
{
	size_t		clen = Min(strlen(class_name), DURABLE_MAX_CLASS_BYTES);
	size_t		ilen = Min(strlen(id), DURABLE_MAX_ID_BYTES);

	memcpy(key, class_name, clen);
	key[clen] = '\0';
	memcpy(key + clen + 1, id, ilen);
	return (int) (clen + 1 + ilen);
}

/*
 * DurableObjectShard
 *		Stable hash of object (class, id), stored with its alarms and sends:
 *		its home host is shard % durable.hosts among its owner's hosts.
 */
uint32
DurableObjectShard(const char *class_name, const char *id)
{
	char		key[DURABLE_MAX_CLASS_BYTES + 1 + DURABLE_MAX_ID_BYTES];

	/* no allocation: the gateway calls this inside lws callbacks */
	return hash_bytes((unsigned char *) key, object_bytes(class_name, id, key));
}

/*
 * DurableObjectKeyIn
 *		64-bit hash of object (class, id) of database number db, never 0: the
 *		key of its lane (shared/lanes.c).  The database is the hash's seed (the
 *		first database's keys are those of a single database).  Two objects
 *		with the same key would only share a lane, running one after the
 *		other; a ring request also carries its database, and a host refuses
 *		one of another database.
 */
uint64
DurableObjectKeyIn(int db, const char *class_name, const char *id)
{
	char		key[DURABLE_MAX_CLASS_BYTES + 1 + DURABLE_MAX_ID_BYTES];
	uint64		h = hash_bytes_extended((unsigned char *) key,
										object_bytes(class_name, id, key),
										UINT64CONST(0x4455524142) + (uint64) db);

	return h != 0 ? h : 1;
}

/*
 * DurableObjectKey
 *		The key of object (class, id) of the database this process serves
 *		(a session that passed DurableCheckReady, a host).
 */
uint64
DurableObjectKey(const char *class_name, const char *id)
{
	Assert(durable_db >= 0);
	return DurableObjectKeyIn(durable_db, class_name, id);
}
