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
 * events, closes, the class directory: messages.h) in a singly linked list
 * in the shared message area, oldest first; the gateway drains it.
 *
 * Locking rules: the queue's head and tail (and the "next" link of the last
 * node) are protected by the LWLock of the tranche "pg_durable_objects
 * gateway"; pid is a few words under the spinlock; the epoch and the
 * counters are atomics.
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

/* a message on its way to the gateway; a singly linked list in the area */
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
	LWLock	   *queue_lock;		/* head, tail */
	dsa_pointer head;			/* oldest message */
	dsa_pointer tail;
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
		shared->head = InvalidDsaPointer;
		shared->tail = InvalidDsaPointer;
		pg_atomic_init_u64(&c->http_requests, 0);
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
 *		Never throws: when the gateway does not run, or shared memory is
 *		exhausted, the message is dropped (its sockets are gone, or the
 *		gateway closes them).
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
		dsa_free(area, dp);
		return false;
	}
	node = dsa_get_address(area, np);
	node->next = InvalidDsaPointer;
	node->message = dp;

	LWLockAcquire(shared->queue_lock, LW_EXCLUSIVE);
	if (DsaPointerIsValid(shared->tail))
		((GatewayNode *) dsa_get_address(area, shared->tail))->next = np;
	else
		shared->head = np;
	shared->tail = np;
	LWLockRelease(shared->queue_lock);
	DurableGatewayWake();
	return true;
}

/*
 * DurableGatewayDrain
 *		In the gateway: hand up to max queued messages, oldest first, to fn and
 *		free them.  The parts point into shared memory, valid only during the
 *		call, and are not NUL-terminated.  Returns how many were handled.
 */
int
DurableGatewayDrain(DurableGatewayMessageFn fn, void *arg, int max)
{
	dsa_area   *area = DurableArea();
	int			n = 0;

	while (n < max)
	{
		dsa_pointer np;
		GatewayNode *node = NULL;
		DurableParts parts;

		LWLockAcquire(shared->queue_lock, LW_EXCLUSIVE);
		np = shared->head;
		if (DsaPointerIsValid(np))
		{
			node = dsa_get_address(area, np);
			shared->head = node->next;
			if (!DsaPointerIsValid(node->next))
				shared->tail = InvalidDsaPointer;
		}
		LWLockRelease(shared->queue_lock);
		if (node == NULL)
			break;

		DurableMessageView(node->message, &parts);
		fn(&parts, arg);
		dsa_free(area, node->message);
		dsa_free(area, np);
		n++;
	}
	return n;
}
