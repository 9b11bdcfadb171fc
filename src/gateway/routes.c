/*-------------------------------------------------------------------------
 *
 * routes.c
 *	  [/db/{database}]/objects/{class}/{id}[/{method}]: which object a
 *	  request is for, its database and class, and handing a call to the
 *	  object's host.
 *
 * Each database of durable.database is reached under /db/{its name}; plain
 * /objects/... is the first database (so a single database keeps the URLs
 * it always had).  The database is part of everything that follows: the
 * class is looked up in that database's directory (classes.c), the call goes
 * to a host of that database (shared/lanes.c), the socket's object entry is
 * that database's (registry.c).
 *
 * GatewayEnqueue is the one place the gateway hands a call to a host.  It
 * stores the call in the shared message area counted in the client's
 * account (area.c), and says GATEWAY_WAIT rather than refusing when there
 * is no room: in the host's queue, in the client's share
 * (durable.client_area_bytes) or in the gateway's half of the area
 * (durable.message_area_bytes); the caller then waits (backlog.c).  Only a
 * call the area cannot store at all (at its limit, or the operating system
 * refusing shared memory, an ERROR caught here) is GATEWAY_REFUSED.
 *
 * IDENTIFICATION
 *	  src/gateway/routes.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"
#include "shared/lanes.h"
#include "shared/objects.h"

#include <stdlib.h>

/*
 * GatewayObjectRoute
 *		Whether path is under /objects or /db/{name}/objects; the rest of it
 *		from "/objects" on, with *db the database's number (-1 for a name
 *		durable.database does not list), or NULL.
 */
const char *
GatewayObjectRoute(const char *path, int *db)
{
	char		name[NAMEDATALEN];
	const char *end;

	*db = 0;
	if (strncmp(path, "/db/", 4) == 0)
	{
		path += 4;
		end = strchr(path, '/');
		if (end == NULL || end - path >= NAMEDATALEN)
			return NULL;
		memcpy(name, path, end - path);
		name[end - path] = '\0';
		*db = DurableDatabaseNumber(name);
		path = end;
	}
	if (strcmp(path, "/objects") == 0 || strncmp(path, "/objects/", 9) == 0)
		return path;
	return NULL;
}

/*
 * GatewayParseObjectPath
 *		[/db/{database}]/objects/{class}/{id}[/{method}] into its parts.  The
 *		path is percent-decoded already (request.c), so the id may contain
 *		"/" (sent as %2F); with want_method the last segment is the method.
 *		Returns false for anything else, also for a database durable.database
 *		does not list.
 */
bool
GatewayParseObjectPath(const char *path, int *db, char *class_name, char **id, char **method,
					   bool want_method)
{
	const char *p;
	const char *slash;
	char	   *rest;
	char	   *last;

	*id = NULL;
	if (method)
		*method = NULL;
	path = GatewayObjectRoute(path, db);
	if (path == NULL || *db < 0 || strncmp(path, "/objects/", 9) != 0)
		return false;
	p = path + strlen("/objects/");
	slash = strchr(p, '/');
	if (slash == NULL ||
		slash - p > DURABLE_MAX_CLASS_BYTES || slash == p)
		return false;
	memcpy(class_name, p, slash - p);
	class_name[slash - p] = '\0';
	rest = strdup(slash + 1);
	if (rest == NULL)
		return false;
	if (want_method)
	{
		last = strrchr(rest, '/');
		if (last == NULL || last[1] == '\0')
		{
			free(rest);
			return false;
		}
		*last = '\0';
		*method = strdup(last + 1);
		if (*method == NULL)
		{
			free(rest);
			return false;
		}
	}
	if (rest[0] == '\0' || strlen(rest) > DURABLE_MAX_ID_BYTES)
	{
		free(rest);
		if (method)
		{
			free(*method);
			*method = NULL;
		}
		return false;
	}
	*id = rest;
	return true;
}

/*
 * GatewayLookupClass
 *		The class entry of database db, or the HTTP status to refuse with: 404
 *		unknown, 503 that database's directory not loaded yet.
 */
unsigned int
GatewayLookupClass(int db, const char *class_name, GatewayClassEntry *entry)
{
	bool		loaded;

	if (!DurableClassNameValid(class_name))
		return HTTP_STATUS_NOT_FOUND;
	if (GatewayClassLookup(db, class_name, entry, &loaded))
		return 0;
	return loaded ? HTTP_STATUS_NOT_FOUND : HTTP_STATUS_SERVICE_UNAVAILABLE;
}

/* the SQLSTATE and message (for database db) of a refusal by GatewayLookupClass */
const char *
GatewayRefusalState(unsigned int status)
{
	return status == HTTP_STATUS_NOT_FOUND ? DURABLE_STATE_NO_CLASS : DURABLE_STATE_STARTING;
}

const char *
GatewayRefusalMessage(int db, unsigned int status)
{
	if (status == HTTP_STATUS_NOT_FOUND)
		return "unknown class";
	if (DurableDatabaseUnreachable(db))
		return "the database cannot be connected to";
	return "the server is starting up";
}

/*
 * The homes (database, owner, shard % durable.hosts) whose calls found their
 * host's queue full in this round of retries, a bit each by hash: later
 * calls of the round for them wait without trying (a collision only makes a
 * call wait a round).
 */
static uint64 full_homes = 0;

static uint64
home_bit(int db, Oid owner, uint32 shard)
{
	return UINT64CONST(1) << ((owner * 31 + db * 7 + shard % (uint32) durable_hosts) % 64);
}

/*
 * GatewayEnqueueRound
 *		A new round of retries (backlog.c): hosts found full may have room.
 */
void
GatewayEnqueueRound(void)
{
	full_homes = 0;
}

/*
 * GatewayEnqueue
 *		Hand a call (a frame, a lifecycle event or an HTTP call) to the host
 *		that runs (class, id) of database db (shared/lanes.c), counted in the message area's
 *		account (0: not counted).  Never throws.  GATEWAY_WAIT when there is
 *		no room now (a home found full stays so until the next round) or no
 *		host can be had yet, GATEWAY_REFUSED when the class is unknown or the
 *		area cannot store the call.
 */
GatewayEnqueueResult
GatewayEnqueue(int db, const char *class_name, const char *id, const char *method,
			   const char *args, int64 socket, uint64 token, const char *frame_id,
			   uint32 account)
{
	DurableCallMsg msg;
	DurableRequest req;
	DurableAreaBudget budget;
	GatewayClassEntry cls;
	bool		loaded;
	uint32		generation;
	int			hostno;
	uint32		shard = DurableObjectShard(class_name, id);
	MemoryContext ctx = CurrentMemoryContext;
	volatile dsa_pointer dp = InvalidDsaPointer;
	volatile bool failed = false;

	if (!GatewayClassLookup(db, class_name, &cls, &loaded))
		return GATEWAY_REFUSED;
	if ((full_homes & home_bit(db, cls.owner, shard)) != 0)
		return GATEWAY_WAIT;

	memset(&msg, 0, sizeof(msg));
	msg.class_name = class_name;
	msg.id = id;
	msg.method = method;
	msg.args_text = args;
	msg.socket = socket;
	msg.token = token;
	msg.frame_id = frame_id;
	memset(&budget, 0, sizeof(budget));
	budget.account = account;
	/* room for one largest message, base64-encoded when it was binary */
	budget.account_limit = Max((uint64) durable_client_area_bytes,
							   (uint64) durable_max_message_bytes / 3 * 4 + 65536);
	budget.total_limit = (uint64) durable_message_area_bytes * 1024 / 2;
	msg.budget = account != 0 ? &budget : NULL;

	PG_TRY();
	{
		dp = DurableCallMsgStore(DURABLE_REQUEST_GATEWAY, &msg);
	}
	PG_CATCH();
	{
		GatewayCatchError(ctx, "storing a call in the message area");
		failed = true;
	}
	PG_END_TRY();
	if (!failed && !DsaPointerIsValid(dp) && budget.over)
		return GATEWAY_WAIT;
	if (failed || !DsaPointerIsValid(dp))
	{
		pg_atomic_fetch_add_u64(&DurableGatewayStats()->calls_refused, 1);
		return GATEWAY_REFUSED;
	}

	memset(&req, 0, sizeof(req));
	req.caller = -1;
	req.kind = DURABLE_REQUEST_GATEWAY;
	req.object = DurableObjectKeyIn(db, class_name, id);
	req.message = dp;
	if (DurableSubmit(db, cls.owner, shard, &req, &hostno, &generation, NULL) !=
		DURABLE_SUBMIT_OK)
	{
		DurableMessageFree(dp);
		full_homes |= home_bit(db, cls.owner, shard);
		return GATEWAY_WAIT;
	}
	return GATEWAY_QUEUED;
}
