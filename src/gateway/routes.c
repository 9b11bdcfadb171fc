/*-------------------------------------------------------------------------
 *
 * routes.c
 *	  /objects/{class}/{id}[/{method}]: which object a request is for, its
 *	  class, and handing a call to the object's host.
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
 * GatewayParseObjectPath
 *		/objects/{class}/{id}[/{method}] into its parts.  libwebsockets has
 *		already percent-decoded the path, so the id may contain "/" (sent as
 *		%2F); with want_method the last segment is the method.  Returns false
 *		for anything else.
 */
bool
GatewayParseObjectPath(const char *path, char *class_name, char **id, char **method,
				  bool want_method)
{
	const char *p = path + strlen("/objects/");
	const char *slash = strchr(p, '/');
	char	   *rest;
	char	   *last;

	*id = NULL;
	if (method)
		*method = NULL;
	if (strncmp(path, "/objects/", 9) != 0 || slash == NULL ||
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
 *		The class entry, or the HTTP status to refuse with: 404 unknown, 503
 *		directory not loaded yet.
 */
unsigned int
GatewayLookupClass(const char *class_name, GatewayClassEntry *entry)
{
	bool		loaded;

	if (!DurableClassNameValid(class_name))
		return HTTP_STATUS_NOT_FOUND;
	if (GatewayClassLookup(class_name, entry, &loaded))
		return 0;
	return loaded ? HTTP_STATUS_NOT_FOUND : HTTP_STATUS_SERVICE_UNAVAILABLE;
}

/* the SQLSTATE and message of a refusal by GatewayLookupClass */
const char *
GatewayRefusalState(unsigned int status)
{
	return status == HTTP_STATUS_NOT_FOUND ? DURABLE_STATE_NO_CLASS : DURABLE_STATE_STARTING;
}

const char *
GatewayRefusalMessage(unsigned int status)
{
	return status == HTTP_STATUS_NOT_FOUND ? "unknown class" : "the server is starting up";
}

/*
 * GatewayEnqueue
 *		Hand a call (a frame, a lifecycle event or an HTTP call) to the host
 *		that runs (class, id) (shared/lanes.c).  Never throws; false if the
 *		class is unknown, the host's queue is full, no host can be had or
 *		shared memory is exhausted.
 */
bool
GatewayEnqueue(const char *class_name, const char *id, const char *method, const char *args,
			   int64 socket, uint64 token, const char *frame_id)
{
	DurableCallMsg msg;
	DurableRequest req;
	GatewayClassEntry cls;
	bool		loaded;
	uint32		generation;
	int			hostno;

	if (!GatewayClassLookup(class_name, &cls, &loaded))
		return false;

	memset(&msg, 0, sizeof(msg));
	msg.class_name = class_name;
	msg.id = id;
	msg.method = method;
	msg.args_text = args;
	msg.socket = socket;
	msg.token = token;
	msg.frame_id = frame_id;

	memset(&req, 0, sizeof(req));
	req.caller = -1;
	req.kind = DURABLE_REQUEST_GATEWAY;
	req.object = DurableObjectKey(class_name, id);
	req.message = DurableCallMsgStore(DURABLE_REQUEST_GATEWAY, &msg);
	if (!DsaPointerIsValid(req.message))
		return false;
	if (DurableSubmit(cls.owner, DurableObjectShard(class_name, id), &req, &hostno,
					  &generation) != DURABLE_SUBMIT_OK)
	{
		DurableMessageFree(req.message);
		return false;
	}
	return true;
}
