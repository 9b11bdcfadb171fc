/*-------------------------------------------------------------------------
 *
 * running.c
 *	  What this process runs: which host it is, the objects whose handlers
 *	  run now, and the chain of calls they belong to.
 *
 * A host runs one call at a time, but a handler may call an object of the
 * same host, which then runs nested in it (calls.c): so the running objects
 * are a stack, innermost last (at most RUNNING_MAX deep).  The storage,
 * alarm and socket functions act on the innermost object.  Calling back into
 * an object that is already running is a cycle of synchronous calls: 40P01.
 *
 * A chain is the id of a tree of calls between objects that started with
 * one top-level call; hosts waiting for each other in one chain serve its
 * calls that come back to them (calls.c).  0 means no chain yet.
 *
 * IDENTIFICATION
 *	  src/host/running.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"

#include "miscadmin.h"
#include "utils/acl.h"

#define RUNNING_MAX 32

int			durable_host_number = -1;
Oid			durable_host_owner = InvalidOid;
int			durable_host_home = -1;
/* the running top-level call has made a call on another host (it must not run twice) */
volatile sig_atomic_t durable_call_crossed = false;

static const char *running_class[RUNNING_MAX];
static const char *running_id[RUNNING_MAX];
static Oid	running_owner[RUNNING_MAX];
static int64 running_socket[RUNNING_MAX];
static const char *running_method[RUNNING_MAX];
static int	nrunning = 0;
static uint64 current_chain = 0;
static uint64 chains_started = 0;

/*
 * DurableInHost
 *		True in a host worker process.
 */
bool
DurableInHost(void)
{
	return durable_host_number >= 0;
}

/* how many handlers run now in this process (0: none) */
int
DurableRunningDepth(void)
{
	return nrunning;
}

/*
 * DurableRunningPush
 *		A handler of class class_name (owned by owner) starts for object id,
 *		method method, started by a frame of socket (0: none).  ERROR 40P01 if the object
 *		already runs (a cycle of calls), 54000 past RUNNING_MAX.  The strings
 *		must live until DurableRunningPop.
 */
void
DurableRunningPush(const char *class_name, const char *id, const char *method, Oid owner,
				   int64 socket)
{
	int			i;

	for (i = 0; i < nrunning; i++)
		if (strcmp(running_class[i], class_name) == 0 && strcmp(running_id[i], id) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
					 errmsg("deadlock detected: object %s(%s) is already running a call",
							class_name, id),
					 errdetail("A cycle of synchronous calls came back to an object that waits for its own call."),
					 errhint("Use durable.send() for one direction of the conversation.")));
	if (nrunning >= RUNNING_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("calls between objects nest deeper than %d", RUNNING_MAX)));
	running_class[nrunning] = class_name;
	running_id[nrunning] = id;
	running_owner[nrunning] = owner;
	running_socket[nrunning] = socket;
	running_method[nrunning] = method;
	nrunning++;
}

/* the innermost handler ended (also on error) */
void
DurableRunningPop(void)
{
	Assert(nrunning > 0);
	nrunning--;
}

/*
 * DurableCurrentMethod
 *		The method of the innermost running handler (history.c records it
 *		with the changes it makes), NULL outside one.
 */
const char *
DurableCurrentMethod(void)
{
	return nrunning > 0 ? running_method[nrunning - 1] : NULL;
}

/*
 * DurableCurrentSocket
 *		The socket whose frame started the running call, 0 if none (or if the
 *		running handler is a nested call of another object).
 */
int64
DurableCurrentSocket(void)
{
	return nrunning > 0 ? running_socket[nrunning - 1] : 0;
}

/*
 * DurableCurrentObject
 *		The object whose handler is running.  ERROR 55000 outside a handler,
 *		and 42501 for a role without its class owner's privileges (a
 *		SECURITY DEFINER function of another role that the handler called
 *		must not reach the object's storage, alarms or sockets); function
 *		names the SQL function asking, for the message.
 */
void
DurableCurrentObject(const char *function, const char **class_name, const char **id)
{
	if (nrunning == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s can only be called inside an object handler", function),
				 errhint("Call the object with durable.call() and use %s in its handler.",
						 function)));
	if (!has_privs_of_role(GetUserId(), running_owner[nrunning - 1]))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s of durable object %s(%s) is only for its class owner",
						function, running_class[nrunning - 1], running_id[nrunning - 1]),
				 errdetail("It was called as role \"%s\", from code of another role the handler called.",
						   GetUserNameFromId(GetUserId(), false))));
	*class_name = running_class[nrunning - 1];
	*id = running_id[nrunning - 1];
}

/* the chain of the running call (0: none yet) */
uint64
DurableChain(void)
{
	return current_chain;
}

void
DurableChainSet(uint64 chain)
{
	current_chain = chain;
}

/*
 * DurableChainStart
 *		The running call is about to wait for another host: give it a chain if
 *		it has none (unique: the host number in the high bits).
 */
uint64
DurableChainStart(void)
{
	if (current_chain == 0)
		current_chain = ((uint64) (durable_host_number + 1) << 48) |
			(++chains_started & (((uint64) 1 << 48) - 1));
	return current_chain;
}
