/*-------------------------------------------------------------------------
 *
 * gateway_link.c
 *	  What other processes share with the gateway: its state, its queue of
 *	  messages from the hosts, and the eventfd that wakes it.
 *
 * The gateway has no database connection and no latch it waits on: it waits
 * in libwebsockets' poll().  _PG_init creates an eventfd in the postmaster;
 * every child inherits it, and anyone who has something for the gateway
 * writes it (DurableGatewayWake).  Hosts queue their messages (replies,
 * events, closes, the class directory: messages.h) for the gateway.
 *
 * The queue is a stack of nodes in the shared message area: a host pushes
 * its node on top (writing only the node it just allocated), the gateway
 * takes the whole stack at once and turns it around into its own FIFO list,
 * so it sees the messages in the order they were pushed.  So nobody reads or
 * writes another process's node while holding the lock, and nothing that
 * may map a segment of the area (dsa_get_address) or fail runs under it.
 *
 * Locking rules: the top of the stack is protected by the LWLock of the
 * tranche "pg_durable_objects gateway" (a node's "next" link is written
 * under it, before the node is on the stack); pid is a few words under the
 * spinlock; the epoch and the counters are atomics.
 *
 * IDENTIFICATION
 *	  src/shared/gateway_link.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/gateway_link.h"
#include "shared/settings.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#define GATEWAY_TRANCHE "pg_durable_objects gateway"

/* a message on its way to the gateway; a node of the stack in the area */
typedef struct GatewayNode
{
	dsa_pointer next;
	dsa_pointer message;
} GatewayNode;

typedef struct GatewayShared
{
	slock_t		mutex;			/* pid */
	pid_t		pid;			/* 0 while the gateway is not running */
	pg_atomic_uint64 epoch;		/* start time of the running gateway, 0 none */
	LWLock	   *queue_lock;		/* top */
	dsa_pointer top;			/* newest message */
	/* the gateway's alone (kept here so that a restarted gateway frees them) */
	dsa_pointer fifo;			/* messages taken off the stack, oldest first */
	dsa_pointer taken;			/* a stack taken but not yet turned around */
	DurableGatewayCounters counters;
} GatewayShared;

/* the eventfd that wakes the gateway; created in _PG_init, inherited */
static int	wake_fd = -1;

static GatewayShared *shared = NULL;


/*
 * DurableGatewayInit
 *		_PG_init, in the postmaster while preloading: create the wake eventfd.
 *		It survives crash restarts (which do not re-run _PG_init) and every
 *		child inherits it.
 */
void
DurableGatewayInit(void)
{
	if (!DurableGatewayEnabled() || wake_fd >= 0)
		return;
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wake_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create eventfd for the pg_durable_objects gateway: %m")));
}

/*
 * DurableGatewayLinkShmemRequest / DurableGatewayLinkShmemStartup
 *		shmem hooks: the gateway's shared state.
 */
void
DurableGatewayLinkShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(GatewayShared)));
	RequestNamedLWLockTranche(GATEWAY_TRANCHE, 1);
}

void
DurableGatewayLinkShmemStartup(void)
{
	bool		found;

	shared = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pg_durable_objects gateway", sizeof(GatewayShared), &found);
	if (!found)
	{
		DurableGatewayCounters *c = &shared->counters;

		memset(shared, 0, sizeof(GatewayShared));
		SpinLockInit(&shared->mutex);
		pg_atomic_init_u64(&shared->epoch, 0);
		shared->queue_lock = &GetNamedLWLockTranche(GATEWAY_TRANCHE)[0].lock;
		shared->top = InvalidDsaPointer;
		shared->fifo = InvalidDsaPointer;
		shared->taken = InvalidDsaPointer;
		pg_atomic_init_u64(&c->http_requests, 0);
		pg_atomic_init_u64(&c->calls_waited, 0);
		pg_atomic_init_u64(&c->calls_refused, 0);
		pg_atomic_init_u64(&c->protocol_closes, 0);
		pg_atomic_init_u32(&c->sockets_open, 0);
		pg_atomic_init_u64(&c->next_socket, 0);
		pg_atomic_init_u64(&c->frames_in, 0);
		pg_atomic_init_u64(&c->frames_out, 0);
		pg_atomic_init_u64(&c->bytes_in, 0);
		pg_atomic_init_u64(&c->bytes_out, 0);
		pg_atomic_init_u64(&c->slow_closes, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * DurableGatewayStats
 *		The gateway's counters; NULL when the library was not preloaded.
 */
DurableGatewayCounters *
DurableGatewayStats(void)
{
	return shared ? &shared->counters : NULL;
}

/*
 * DurableGatewayStarted / DurableGatewayStopped
 *		In the gateway: it runs from now on (a new epoch: socket rows of
 *		earlier gateways are stale), or it is gone.
 */
void
DurableGatewayStarted(void)
{
	SpinLockAcquire(&shared->mutex);
	shared->pid = MyProcPid;
	SpinLockRelease(&shared->mutex);
	pg_atomic_write_u32(&shared->counters.sockets_open, 0);
	pg_atomic_write_u64(&shared->epoch, (uint64) GetCurrentTimestamp());
}

void
DurableGatewayStopped(void)
{
	pg_atomic_write_u64(&shared->epoch, 0);
	SpinLockAcquire(&shared->mutex);
	shared->pid = 0;
	SpinLockRelease(&shared->mutex);
	pg_atomic_write_u32(&shared->counters.sockets_open, 0);
}

/* the gateway's pid, 0 when it does not run */
pid_t
DurableGatewayPid(void)
{
	pid_t		pid;

	if (shared == NULL)
		return 0;
	SpinLockAcquire(&shared->mutex);
	pid = shared->pid;
	SpinLockRelease(&shared->mutex);
	return pid;
}

/*
 * DurableGatewayEpoch
 *		The start time of the running gateway (0: none); socket rows of
 *		another epoch belong to a gateway that is gone.
 */
int64
DurableGatewayEpoch(void)
{
	return shared ? (int64) pg_atomic_read_u64(&shared->epoch) : 0;
}

/*
 * DurableGatewayWake
 *		Make the gateway's event loop run.  Never blocks, never throws and is
 *		async-signal-safe; wakes coalesce.
 */
void
DurableGatewayWake(void)
{
	uint64		one = 1;
	int			fd = wake_fd;

	if (fd >= 0)
	{
		ssize_t		rc pg_attribute_unused();

		rc = write(fd, &one, sizeof(one));
	}
}

/* the wake eventfd, for the gateway's event loop (-1 when disabled) */
int
DurableGatewayWakeFd(void)
{
	return wake_fd;
}

/*
 * DurableGatewayPush
 *		Queue a message for the gateway and wake it; whether it was queued.
 *		When the gateway does not run, or the area is at its limit, the
 *		message is dropped (its sockets are gone, or the gateway closes
 *		them).  May raise the ERROR of a full /dev/shm (area.c).
 */
bool
DurableGatewayPush(const DurableParts *message)
{
	dsa_area   *area;
	dsa_pointer dp;
	dsa_pointer np;
	GatewayNode *node;

	if (DurableGatewayPid() == 0)
		return false;
	area = DurableArea();
	dp = DurableMessageStore(message);
	if (!DsaPointerIsValid(dp))
		return false;
	np = dsa_allocate_extended(area, sizeof(GatewayNode), DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(np))
	{
		DurableMessageFree(dp);
		return false;
	}
	node = dsa_get_address(area, np);
	node->message = dp;

	LWLockAcquire(shared->queue_lock, LW_EXCLUSIVE);
	node->next = shared->top;
	shared->top = np;
	LWLockRelease(shared->queue_lock);
	DurableGatewayWake();
	return true;
}

/*
 * take_stack
 *		In the gateway, when its FIFO list is empty: take every message
 *		pushed so far and make them the FIFO list, oldest first.  The nodes
 *		are mapped first and changed only then, so that an ERROR while
 *		mapping a segment leaves them as they were (in "taken", for the next
 *		try, before anything pushed since).
 */
static void
take_stack(void)
{
	dsa_area   *area = DurableArea();
	dsa_pointer np;
	dsa_pointer reversed = InvalidDsaPointer;

	if (!DsaPointerIsValid(shared->taken))
	{
		LWLockAcquire(shared->queue_lock, LW_EXCLUSIVE);
		shared->taken = shared->top;
		shared->top = InvalidDsaPointer;
		LWLockRelease(shared->queue_lock);
	}
	for (np = shared->taken; DsaPointerIsValid(np);)
		np = ((GatewayNode *) dsa_get_address(area, np))->next;

	/* every node is mapped: turn the stack around */
	for (np = shared->taken; DsaPointerIsValid(np);)
	{
		GatewayNode *node = dsa_get_address(area, np);
		dsa_pointer next = node->next;

		node->next = reversed;
		reversed = np;
		np = next;
	}
	shared->taken = InvalidDsaPointer;
	shared->fifo = reversed;
}

/*
 * DurableGatewayDrain
 *		In the gateway: hand up to max queued messages, oldest first, to fn and
 *		free them.  The parts point into shared memory, valid only during the
 *		call, and are not NUL-terminated.  Returns how many were handled.  A
 *		message whose segment cannot be mapped raises an ERROR and is lost.
 */
int
DurableGatewayDrain(DurableGatewayMessageFn fn, void *arg, int max)
{
	dsa_area   *area = DurableArea();
	int			n = 0;

	while (n < max)
	{
		dsa_pointer np = shared->fifo;
		GatewayNode *node;
		dsa_pointer message;
		DurableParts parts;

		if (!DsaPointerIsValid(np))
		{
			take_stack();
			if (!DsaPointerIsValid(shared->fifo))
				break;
			continue;
		}
		node = dsa_get_address(area, np);
		shared->fifo = node->next;
		message = node->message;
		dsa_free(area, np);
		PG_TRY();
		{
			DurableMessageView(message, &parts);
			fn(&parts, arg);
		}
		PG_CATCH();
		{
			DurableMessageFree(message);
			PG_RE_THROW();
		}
		PG_END_TRY();
		DurableMessageFree(message);
		n++;
	}
	return n;
}
