/*-------------------------------------------------------------------------
 *
 * hosts.c
 *	  The hosts' shared state: who runs, their request rings, their waits in
 *	  chains of calls, their counters.
 *
 * Each host has a slot in shared memory.  Callers (sessions, other hosts,
 * the gateway) put requests on the ring of the host that owns the object and
 * wake it through its latch; the host takes them in batches.
 *
 * Locking rules:
 *	- the ring of a host (head, tail and its entries) is protected by that
 *	  host's LWLock of the named tranche "pg_durable_objects hosts": a batch
 *	  copies up to durable.max_batch entries under it;
 *	- pid, procno, generation, work_pending, the host's wait in a chain of
 *	  calls and its mailbox are a few words under the host's spinlock;
 *	- "polling" is read and written without a lock (a hint for callers);
 *	- the counters are atomics.
 * Shared memory is re-initialised on a crash restart (generations start
 * again at 0, so they are compared with !=).
 *
 * IDENTIFICATION
 *	  src/shared/hosts.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/hosts.h"

#include "access/twophase.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#define HOSTS_TRANCHE "pg_durable_objects hosts"

const double durable_latency_bounds_ms[DURABLE_LATENCY_BUCKETS] =
{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};

typedef struct HostSlot
{
	slock_t		mutex;			/* pid ... mailbox */
	pid_t		pid;			/* 0 while the host is not running */
	int			procno;			/* host's pgprocno, for its latch */
	uint32		generation;		/* bumped each time a host exits */
	bool		work_pending;	/* sends committed for it since it last looked */
	int			waiting_for;	/* 1 + host it waits on in a chain of calls; 0 none */
	uint64		waiting_chain;	/* the call chain of that wait */
	bool		mailbox_full;	/* a call of waiting_chain handed to it directly */
	DurableRequest mailbox;
	volatile bool polling;		/* idle but awake, watching its ring */
	LWLock	   *ring_lock;		/* head, tail and the ring's entries */
	uint64		head;			/* next ring position to write */
	uint64		tail;			/* next ring position to read */
	pg_atomic_uint64 calls;
	pg_atomic_uint64 errors;
	pg_atomic_uint64 batches;
	pg_atomic_uint32 objects;	/* objects in memory */
	pg_atomic_uint64 latency[DURABLE_LATENCY_BUCKETS + 1];	/* per bucket */
	pg_atomic_uint64 latency_sum_us;
} HostSlot;

typedef struct HostsShared
{
	int			nhosts;
	int			ring_capacity;
	HostSlot	hosts[DURABLE_MAX_HOSTS];
	DurableRequest rings[FLEXIBLE_ARRAY_MEMBER];	/* nhosts * ring_capacity */
} HostsShared;

static HostsShared *shared = NULL;

static int
ring_capacity(void)
{
	/* every backend can have one call waiting, with room for other sources */
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts + 64;
}

static Size
shared_size(void)
{
	return add_size(offsetof(HostsShared, rings),
					mul_size(mul_size(durable_hosts, ring_capacity()), sizeof(DurableRequest)));
}

/*
 * DurableHostsShmemRequest
 *		shmem_request_hook: room for the hosts' state, and their ring locks.
 */
void
DurableHostsShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(shared_size()));
	RequestNamedLWLockTranche(HOSTS_TRANCHE, DURABLE_MAX_HOSTS);
}

/*
 * DurableHostsShmemStartup
 *		shmem_startup_hook: create or attach the hosts' state.
 */
void
DurableHostsShmemStartup(void)
{
	bool		found;
	int			i;
	int			j;

	shared = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pg_durable_objects hosts", shared_size(), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche(HOSTS_TRANCHE);

		memset(shared, 0, offsetof(HostsShared, rings));
		shared->nhosts = durable_hosts;
		shared->ring_capacity = ring_capacity();
		for (i = 0; i < DURABLE_MAX_HOSTS; i++)
		{
			HostSlot   *host = &shared->hosts[i];

			SpinLockInit(&host->mutex);
			host->ring_lock = &locks[i].lock;
			pg_atomic_init_u64(&host->calls, 0);
			pg_atomic_init_u64(&host->errors, 0);
			pg_atomic_init_u64(&host->batches, 0);
			pg_atomic_init_u32(&host->objects, 0);
			for (j = 0; j <= DURABLE_LATENCY_BUCKETS; j++)
				pg_atomic_init_u64(&host->latency[j], 0);
			pg_atomic_init_u64(&host->latency_sum_us, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * DurableShmemReady
 *		True when the library was preloaded and our shared memory exists.
 */
bool
DurableShmemReady(void)
{
	return shared != NULL;
}

int
DurableHostCount(void)
{
	return shared->nhosts;
}

static HostSlot *
slot(int hostno)
{
	Assert(hostno >= 0 && hostno < shared->nhosts);
	return &shared->hosts[hostno];
}

/*
 * DurableHostAttach / DurableHostDetach
 *		A host worker starts (this process), or is gone: its exit callback
 *		answered everyone it held first.
 */
void
DurableHostAttach(int hostno)
{
	HostSlot   *host = slot(hostno);

	SpinLockAcquire(&host->mutex);
	host->pid = MyProcPid;
	host->procno = MyProc->pgprocno;
	SpinLockRelease(&host->mutex);
}

void
DurableHostDetach(int hostno)
{
	HostSlot   *host = slot(hostno);

	SpinLockAcquire(&host->mutex);
	host->pid = 0;
	host->generation++;
	SpinLockRelease(&host->mutex);
}

/*
 * DurableHostState
 *		The host's pid (0: not running) and generation.
 */
void
DurableHostState(int hostno, pid_t *pid, uint32 *generation)
{
	HostSlot   *host = slot(hostno);

	SpinLockAcquire(&host->mutex);
	*pid = host->pid;
	*generation = host->generation;
	SpinLockRelease(&host->mutex);
}

static DurableRequest *
ring_entry(int hostno, uint64 pos)
{
	return &shared->rings[(Size) hostno * shared->ring_capacity + pos % shared->ring_capacity];
}

/*
 * DurableEnqueue
 *		Append a request to a host's ring and wake it; false if the ring is
 *		full.  Returns the host's generation so the caller can notice the host
 *		exiting.
 */
bool
DurableEnqueue(int hostno, const DurableRequest *req, uint32 *generation)
{
	HostSlot   *host = slot(hostno);
	bool		ok = false;
	int			procno = -1;
	pid_t		pid;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(host->ring_lock, LW_EXCLUSIVE);
	if (host->head - host->tail < (uint64) shared->ring_capacity)
	{
		DurableRequest *entry = ring_entry(hostno, host->head);

		*entry = *req;
		entry->enqueued_at = now;
		host->head++;
		ok = true;
	}
	LWLockRelease(host->ring_lock);

	SpinLockAcquire(&host->mutex);
	*generation = host->generation;
	pid = host->pid;
	if (pid != 0)
		procno = host->procno;
	SpinLockRelease(&host->mutex);

	if (ok && procno >= 0)
		DurableWakeProc(procno);
	return ok;
}

/*
 * DurableDequeue
 *		Take up to max requests from a host's ring, oldest first.
 */
int
DurableDequeue(int hostno, DurableRequest *reqs, int max)
{
	HostSlot   *host = slot(hostno);
	int			n = 0;

	LWLockAcquire(host->ring_lock, LW_EXCLUSIVE);
	while (n < max && host->tail != host->head)
	{
		reqs[n++] = *ring_entry(hostno, host->tail);
		host->tail++;
	}
	LWLockRelease(host->ring_lock);
	return n;
}

/*
 * DurableRingEmpty
 *		Whether a host's ring holds no request, without taking its lock: for
 *		polling.
 */
bool
DurableRingEmpty(int hostno)
{
	volatile HostSlot *host = slot(hostno);

	return host->head == host->tail;
}

/*
 * DurableHostSetPolling / DurableHostPolling
 *		The host is idle but awake, watching its ring: a caller may watch its
 *		reply slot instead of sleeping.
 */
void
DurableHostSetPolling(int hostno, bool polling)
{
	slot(hostno)->polling = polling;
	pg_memory_barrier();
}

bool
DurableHostPolling(int hostno)
{
	return slot(hostno)->polling;
}

void
DurableWakeProc(int procno)
{
	SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/*
 * DurableWakeHostForWork
 *		Tell a host that it has work besides its ring (sends committed for it,
 *		classes changed, a new gateway), and wake it.
 */
void
DurableWakeHostForWork(int hostno)
{
	HostSlot   *host = slot(hostno);
	int			procno = -1;

	SpinLockAcquire(&host->mutex);
	host->work_pending = true;
	if (host->pid != 0)
		procno = host->procno;
	SpinLockRelease(&host->mutex);
	if (procno >= 0)
		DurableWakeProc(procno);
}

/*
 * DurableHostTakeWorkPending
 *		Whether work was announced since the host last asked.
 */
bool
DurableHostTakeWorkPending(int hostno)
{
	HostSlot   *host = slot(hostno);
	bool		pending;

	SpinLockAcquire(&host->mutex);
	pending = host->work_pending;
	host->work_pending = false;
	SpinLockRelease(&host->mutex);
	return pending;
}

/*
 * DurableHostSwapWait
 *		The host now waits on host waiting_for (-1: on nobody) in call chain
 *		chain; returns the wait it had before.
 */
void
DurableHostSwapWait(int hostno, int waiting_for, uint64 chain,
					int *old_waiting_for, uint64 *old_chain)
{
	HostSlot   *host = slot(hostno);

	SpinLockAcquire(&host->mutex);
	*old_waiting_for = host->waiting_for - 1;
	*old_chain = host->waiting_chain;
	host->waiting_for = waiting_for + 1;
	host->waiting_chain = chain;
	SpinLockRelease(&host->mutex);
}

/*
 * DurableHostWait
 *		Whom the host waits on (-1: nobody), in which chain.
 */
void
DurableHostWait(int hostno, int *waiting_for, uint64 *chain)
{
	HostSlot   *host = slot(hostno);

	SpinLockAcquire(&host->mutex);
	*waiting_for = host->waiting_for - 1;
	*chain = host->waiting_chain;
	SpinLockRelease(&host->mutex);
}

/*
 * DurableHostMailboxPut
 *		If the host waits in call chain req->chain and its mailbox is empty,
 *		put the request there (it runs it nested in its waiting call) and wake
 *		it.  *generation gets the host's generation either way.
 */
bool
DurableHostMailboxPut(int hostno, const DurableRequest *req, uint32 *generation)
{
	HostSlot   *host = slot(hostno);
	bool		handed = false;
	int			procno = -1;

	SpinLockAcquire(&host->mutex);
	if (host->pid != 0 && host->waiting_chain == req->chain && !host->mailbox_full)
	{
		host->mailbox = *req;
		host->mailbox_full = true;
		procno = host->procno;
		handed = true;
	}
	*generation = host->generation;
	SpinLockRelease(&host->mutex);
	if (handed)
		DurableWakeProc(procno);
	return handed;
}

/*
 * DurableHostMailboxTake
 *		Take the request in the host's mailbox, if any; with stop_waiting the
 *		host also stops waiting (no more calls are handed to it).
 */
bool
DurableHostMailboxTake(int hostno, DurableRequest *req, bool stop_waiting)
{
	HostSlot   *host = slot(hostno);
	bool		have;

	SpinLockAcquire(&host->mutex);
	have = host->mailbox_full;
	if (have)
		*req = host->mailbox;
	host->mailbox_full = false;
	if (stop_waiting)
	{
		host->waiting_for = 0;
		host->waiting_chain = 0;
	}
	SpinLockRelease(&host->mutex);
	return have;
}

/*
 * DurableHostAddBatch
 *		Count a batch of calls (calls of them failed with errors).
 */
void
DurableHostAddBatch(int hostno, uint64 calls, uint64 errors)
{
	HostSlot   *host = slot(hostno);

	pg_atomic_fetch_add_u64(&host->calls, calls);
	pg_atomic_fetch_add_u64(&host->errors, errors);
	if (calls > 0)
		pg_atomic_fetch_add_u64(&host->batches, 1);
}

/*
 * DurableHostRecordLatency
 *		Count a request's time from enqueue to answer in the histogram.
 */
void
DurableHostRecordLatency(int hostno, int64 us)
{
	HostSlot   *host = slot(hostno);
	int			b;

	if (us < 0)
		return;
	for (b = 0; b < DURABLE_LATENCY_BUCKETS; b++)
		if ((double) us <= durable_latency_bounds_ms[b] * 1000.0)
			break;
	pg_atomic_fetch_add_u64(&host->latency[b], 1);
	pg_atomic_fetch_add_u64(&host->latency_sum_us, (uint64) us);
}

void
DurableHostSetObjects(int hostno, uint32 objects)
{
	pg_atomic_write_u32(&slot(hostno)->objects, objects);
}

/*
 * DurableHostGetStats
 *		A copy of a host's state and counters (for the views and /metrics).
 *		Takes no LWLock: the queue depth is read as it is.
 */
void
DurableHostGetStats(int hostno, DurableHostStats *stats)
{
	volatile HostSlot *host = slot(hostno);
	int			b;

	SpinLockAcquire(&slot(hostno)->mutex);
	stats->pid = host->pid;
	SpinLockRelease(&slot(hostno)->mutex);
	stats->queue_depth = host->head - host->tail;
	stats->calls = pg_atomic_read_u64(&slot(hostno)->calls);
	stats->errors = pg_atomic_read_u64(&slot(hostno)->errors);
	stats->batches = pg_atomic_read_u64(&slot(hostno)->batches);
	stats->objects = pg_atomic_read_u32(&slot(hostno)->objects);
	for (b = 0; b <= DURABLE_LATENCY_BUCKETS; b++)
		stats->latency[b] = pg_atomic_read_u64(&slot(hostno)->latency[b]);
	stats->latency_sum_us = pg_atomic_read_u64(&slot(hostno)->latency_sum_us);
}
