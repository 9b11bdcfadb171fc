/*-------------------------------------------------------------------------
 *
 * calls.c
 *	  Calls between objects: durable.call inside a handler.
 *
 * An object of the same class owner that no other host holds runs right
 * here, inline, nested in the calling call (invoke.c), and this host holds
 * it until its batch commits.  Any other object (another owner's, which
 * this process never runs, or one another host holds) is called like any
 * call, but the wait is a link of a call chain: this host records in shared
 * memory which object its innermost call waits for, and in which chain
 * (hosts.c).  A call of the same chain that comes back to an object this
 * waiting host holds is handed to its mailbox instead of its ring, and the
 * host runs it nested in its waiting call (so chains that come back work).
 * A wait that would close a cycle of waits between objects ends in ERROR
 * 40P01 instead of hanging (lanes.c follows the waits); it is checked when
 * the wait starts and again while it lasts.
 *
 * IDENTIFICATION
 *	  src/host/calls.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/lanes.h"
#include "shared/objects.h"
#include "shared/replies.h"

#include "utils/timestamp.h"

/* how often a waiting call looks for a cycle again */
#define CYCLE_RECHECK_MS 100
/* a cycle found must be found again, the same, this many times this far apart */
#define CYCLE_LOOKS 3
#define CYCLE_CONFIRM_US 20000

static uint64 waiting_for = 0;	/* the object this host's innermost call waits for */
static uint64 waiting_chain = 0;
static TimestampTz last_cycle_check = 0;

/*
 * check_cycle
 *		ERROR 40P01 if the wait for waiting_for closes a cycle of waits: the
 *		same cycle (the same objects in the same order) seen by CYCLE_LOOKS
 *		looks CYCLE_CONFIRM_US apart.  The walk reads other hosts' waits
 *		without a common lock, so one look can put together a wait that just
 *		ended with one that just began (seen once in 1,040 chains with one
 *		look, and under a load average of 10 with two looks 2 ms apart); a real
 *		cycle does not go away, so waiting 40 ms to be sure costs nothing.
 */
static void
check_cycle(void)
{
	uint64		path;
	uint64		again;
	int			look;

	last_cycle_check = GetCurrentTimestamp();
	if (!DurableWaitCloses(durable_host_number, waiting_for, waiting_chain, &path))
		return;
	for (look = 1; look < CYCLE_LOOKS; look++)
	{
		pg_usleep(CYCLE_CONFIRM_US);
		if (!DurableWaitCloses(durable_host_number, waiting_for, waiting_chain, &again) ||
			again != path)
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
			 errmsg("deadlock detected: a cycle of synchronous calls between objects"),
			 errdetail("The called object waits, directly or not, for an object this call holds."),
			 errhint("Use durable.send() for one direction of the conversation.")));
}

/*
 * serve_mailbox
 *		While this host waits in a nested call: run the call of the same chain
 *		that another host handed to it, nested in the waiting call, and
 *		answer it; and look for a cycle of waits now and then.
 */
static void
serve_mailbox(void)
{
	DurableCall call;
	DurableRequest req;

	if (DurableHostMailboxTake(durable_host_number, &req, false))
	{
		DurableCallLoad(&req, &call);
		call.nested = true;
		if (!DurableHostHoldObject(req.object, &call.cache_valid))
			DurableCallFail(&call, ERRCODE_T_R_DEADLOCK_DETECTED,
							"durable call could not be served: its object moved",
							"The call was not run.");
		else
		{
			DurableInvoke(&call, CurrentMemoryContext);
			DurableCallPublish(&call);
		}
	}
	if (TimestampDifferenceExceeds(last_cycle_check, GetCurrentTimestamp(), CYCLE_RECHECK_MS))
		check_cycle();
}

/*
 * DurableHostRefuseMailbox
 *		This host stops waiting: answer a call still in its mailbox with an
 *		error instead of leaving its caller waiting.
 */
void
DurableHostRefuseMailbox(void)
{
	DurableRequest req;

	if (!DurableHostMailboxTake(durable_host_number, &req, true))
		return;
	DurableMessageFree(req.message);
	DurableRequestRefuse(&req, ERRCODE_T_R_DEADLOCK_DETECTED,
						 "durable call could not be served: its caller's chain ended",
						 "The call was not run.");
}

/*
 * end_wait
 *		This host's wait on another object ended.  If it was itself serving a
 *		call of its chain while its outer call waited, the outer wait goes
 *		on; else it waits no more.
 */
static void
end_wait(uint64 outer_object, uint64 outer_chain)
{
	uint64		chain;

	waiting_for = outer_object;
	waiting_chain = outer_chain;
	DurableHostSetWaitsFor(durable_host_number, outer_object);
	if (outer_object == 0)
		DurableHostRefuseMailbox();
	else
		DurableHostSwapChain(durable_host_number, outer_chain, &chain);
}

/*
 * DurableHostCall
 *		durable.call inside a handler, of (class, id) owned by owner: run it
 *		inline if this host may run it now, else on the host that runs it
 *		while this host waits as a link of the call's chain.  Returns the
 *		result (NULL and *isnull for SQL NULL); an error is raised here.
 */
Jsonb *
DurableHostCall(const char *class_name, const char *id, const char *method, Jsonb *args,
				Oid owner, bool *isnull)
{
	DurableTarget target;
	DurableCallMsg msg;
	DurableReplyMsg reply;
	DurableReplyStatus status;
	uint64		outer_object = waiting_for;
	uint64		outer_chain = waiting_chain;
	uint64		chain;
	bool		cache_valid;

	target.db = durable_db;
	target.owner = owner;
	target.shard = DurableObjectShard(class_name, id);
	target.object = DurableObjectKey(class_name, id);
	if (owner == durable_host_owner && DurableHostHoldObject(target.object, &cache_valid))
		return DurableInvokeInline(class_name, id, method, args, cache_valid, isnull);

	memset(&msg, 0, sizeof(msg));
	msg.class_name = class_name;
	msg.id = id;
	msg.method = method;
	msg.args = args;
	chain = DurableChainStart();
	DurableInvokeBeforeCross();	/* from now on the calling call must not be run again */

	/* record the wait before looking for a cycle: see DurableWaitCloses */
	waiting_for = target.object;
	waiting_chain = chain;
	DurableHostSwapChain(durable_host_number, chain, &outer_chain);
	DurableHostSetWaitsFor(durable_host_number, target.object);
	PG_TRY();
	{
		check_cycle();
		status = DurableCallObject(&target, DURABLE_REQUEST_CALL, &msg, chain, true,
								   serve_mailbox, false, 0, &reply);
	}
	PG_CATCH();
	{
		end_wait(outer_object, outer_chain);
		PG_RE_THROW();
	}
	PG_END_TRY();
	end_wait(outer_object, outer_chain);
	return DurableReplyResult(status, &reply, class_name, id, method, isnull);
}

/*
 * DurableCallsReset
 *		After an error outside a call: this host waits for nothing.
 */
void
DurableCallsReset(void)
{
	waiting_for = 0;
	waiting_chain = 0;
	DurableHostSetWaitsFor(durable_host_number, 0);
	DurableHostRefuseMailbox();
}
