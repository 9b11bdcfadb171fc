/*-------------------------------------------------------------------------
 *
 * calls.c
 *	  Calls between objects: durable.call inside a handler.
 *
 * An object of the same host runs right here, inline, nested in the calling
 * call (invoke.c).  An object of another host is called like any call, but
 * the wait is a link of a call chain: this host records in shared memory
 * whom it waits on, in which chain (hosts.c).  A call of the same chain that
 * comes back to a waiting host is handed to its mailbox instead of its ring,
 * and the waiting host runs it nested in its waiting call (so chains that
 * come back work); a wait that would close a cycle with other chains ends in
 * ERROR 40P01 instead of hanging.
 *
 * IDENTIFICATION
 *	  src/host/calls.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/objects.h"
#include "shared/replies.h"

/*
 * check_wait_cycle
 *		ERROR 40P01 if following "waits on" from host target comes back to this
 *		host: a cycle of synchronous calls that would never end.  A host that
 *		waits in our own call chain ends the walk: it serves our chain's calls
 *		while it waits (its mailbox).
 */
static void
check_wait_cycle(int target, uint64 chain)
{
	int			h = target;
	int			steps;

	for (steps = 0; h >= 0 && steps <= DurableHostCount(); steps++)
	{
		uint64		host_chain;

		if (h == durable_host_number)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
					 errmsg("deadlock detected: a cycle of synchronous calls between objects"),
					 errdetail("Host %d waits on host %d, which waits (directly or not) on host %d.",
							   durable_host_number, target, durable_host_number),
					 errhint("Use durable.send() for one direction of the conversation.")));
		DurableHostWait(h, &h, &host_chain);
		if (host_chain == chain)
			break;
	}
}

/*
 * deliver_in_chain
 *		DurableDeliverFn of a call between objects: hand the request to the
 *		mailbox of a host that waits in our chain; otherwise check that the
 *		wait closes no cycle and let it go on the ring.
 */
static bool
deliver_in_chain(int hostno, const DurableRequest *req, uint32 *generation)
{
	if (DurableHostMailboxPut(hostno, req, generation))
		return true;
	check_wait_cycle(hostno, req->chain);
	return false;
}

/*
 * serve_mailbox
 *		While this host waits in a nested call: run the call of the same chain
 *		that another host handed to it, nested in the waiting call, and
 *		answer it.
 */
static void
serve_mailbox(void)
{
	DurableCall call;
	DurableRequest req;

	if (!DurableHostMailboxTake(durable_host_number, &req, false))
		return;
	DurableCallLoad(&req, &call);
	call.nested = true;
	DurableInvoke(&call, CurrentMemoryContext);
	DurableCallPublish(&call);
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
 *		This host's wait on another ended.  If it was itself serving a call of
 *		its chain while waiting in an outer call, it waits for the outer call
 *		again; else it waits no more.
 */
static void
end_wait(int outer_waiting_for, uint64 outer_chain)
{
	int			waited_for;
	uint64		chain;

	if (outer_waiting_for < 0)
		DurableHostRefuseMailbox();
	else
		DurableHostSwapWait(durable_host_number, outer_waiting_for, outer_chain,
							&waited_for, &chain);
}

/*
 * DurableHostCall
 *		durable.call inside a handler: run the call of (class, id) inline if
 *		its object lives on this host, else on its host while this host waits
 *		as a link of the call's chain.  Returns the result (NULL and *isnull
 *		for SQL NULL); an error is raised here.
 */
Jsonb *
DurableHostCall(const char *class_name, const char *id, const char *method, Jsonb *args,
				bool *isnull)
{
	int			hostno = DurableHostFor(class_name, id);
	DurableCallMsg msg;
	DurableReplyMsg reply;
	DurableReplyStatus status;
	uint64		chain;
	int			outer_waiting_for;
	uint64		outer_chain;

	if (hostno == durable_host_number)
		return DurableInvokeInline(class_name, id, method, args, isnull);

	memset(&msg, 0, sizeof(msg));
	msg.class_name = class_name;
	msg.id = id;
	msg.method = method;
	msg.args = args;
	chain = DurableChainStart();
	DurableHostSwapWait(durable_host_number, hostno, chain, &outer_waiting_for, &outer_chain);
	PG_TRY();
	{
		status = DurableCallHost(hostno, DURABLE_REQUEST_CALL, &msg, chain, deliver_in_chain,
								 serve_mailbox, false, &reply);
	}
	PG_CATCH();
	{
		end_wait(outer_waiting_for, outer_chain);
		PG_RE_THROW();
	}
	PG_END_TRY();
	end_wait(outer_waiting_for, outer_chain);
	return DurableReplyResult(status, &reply, class_name, id, method, isnull);
}
