/*-------------------------------------------------------------------------
 *
 * outbound.c
 *	  The output gate: what calls send to sockets waits for their commit.
 *
 * broadcast, socket_send and socket_close (sockets.c) only queue a message
 * here, tagged with the call and the subtransaction that made it.  A
 * subtransaction that rolls back drops its messages (including the call's
 * own subtransaction: a failing call sends nothing).  host.c publishes a
 * call's messages to the gateway only after the batch committed, in call
 * order, so sockets see them in commit order (G3, G5).
 *
 * IDENTIFICATION
 *	  src/host/outbound.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"

#include "access/xact.h"
#include "utils/memutils.h"

typedef struct Outbound
{
	DurableCall *owner;			/* the batch call it belongs to */
	SubTransactionId subid;		/* made in this subtransaction */
	DurableGatewayMsg *msg;		/* a copy in OutboundContext */
} Outbound;

static MemoryContext OutboundContext = NULL;
static List *outbound = NIL;
static DurableCall *outbound_owner = NULL;
static bool subxact_callback_registered = false;

static void
outbound_subxact(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	/* drop what the aborted subtransaction and its children queued */
	foreach(lc, outbound)
	{
		Outbound   *o = lfirst(lc);

		if (o->subid >= mySubid)
			outbound = foreach_delete_current(outbound, lc);
	}
}

/*
 * DurableOutboundReset
 *		Forget every queued message; host.c calls it when a transaction of
 *		calls starts.
 */
void
DurableOutboundReset(void)
{
	if (OutboundContext == NULL)
		OutboundContext = AllocSetContextCreate(TopMemoryContext, "durable outbound",
												ALLOCSET_DEFAULT_SIZES);
	if (!subxact_callback_registered)
	{
		RegisterSubXactCallback(outbound_subxact, NULL);
		subxact_callback_registered = true;
	}
	MemoryContextReset(OutboundContext);
	outbound = NIL;
	outbound_owner = NULL;
}

/*
 * DurableOutboundSetCall
 *		Messages queued from now on belong to call.
 */
void
DurableOutboundSetCall(DurableCall *call)
{
	outbound_owner = call;
}

/*
 * DurableOutboundQueue
 *		Hold a message of the running call until its batch committed.
 */
void
DurableOutboundQueue(const DurableGatewayMsg *msg)
{
	MemoryContext old;
	Outbound   *o;

	if (OutboundContext == NULL || outbound_owner == NULL)
		elog(ERROR, "socket message queued outside a durable call");
	old = MemoryContextSwitchTo(OutboundContext);
	o = palloc(sizeof(Outbound));
	o->owner = outbound_owner;
	o->subid = GetCurrentSubTransactionId();
	o->msg = DurableGatewayMsgCopy(msg);
	outbound = lappend(outbound, o);
	MemoryContextSwitchTo(old);
}

/*
 * DurableOutboundQueueAhead
 *		Hold msgs (a List of messages, in order) as messages of the running
 *		call, ahead of those it queued so far.
 */
void
DurableOutboundQueueAhead(List *msgs)
{
	MemoryContext old;
	ListCell   *lc;
	int			pos = 0;

	if (OutboundContext == NULL || outbound_owner == NULL)
		elog(ERROR, "socket message queued outside a durable call");
	foreach(lc, outbound)
	{
		if (((Outbound *) lfirst(lc))->owner == outbound_owner)
			break;
		pos++;
	}
	old = MemoryContextSwitchTo(OutboundContext);
	foreach(lc, msgs)
	{
		Outbound   *o = palloc(sizeof(Outbound));

		o->owner = outbound_owner;
		o->subid = GetCurrentSubTransactionId();
		o->msg = DurableGatewayMsgCopy(lfirst(lc));
		outbound = list_insert_nth(outbound, pos++, o);
	}
	MemoryContextSwitchTo(old);
}

/*
 * DurableOutboundPublish
 *		After commit: hand the messages of call to the gateway, in order.
 *		Never throws.
 */
void
DurableOutboundPublish(DurableCall *call)
{
	ListCell   *lc;

	foreach(lc, outbound)
	{
		Outbound   *o = lfirst(lc);

		if (o->owner == call)
			(void) DurableGatewaySend(o->msg);
	}
}
