/*-------------------------------------------------------------------------
 *
 * hosts.c
 *	  The hosts' shared state: which host processes exist, whose code each
 *	  runs, what each is busy with, their mailboxes and counters.
 *
 * There are durable.max_hosts host slots.  A slot belongs to one class
 * owner: its host process runs the calls of that owner's classes only, so
 * code of one role never runs in a process where another role's code ran
 * (PL/pgSQL's compiled functions, a PL's session state, caches: nothing of
 * one owner can reach another).  An owner with work gets durable.hosts
 * "home" hosts, over which its objects are spread by hash (home k serves
 * shard % durable.hosts == k), and "extra" hosts (home -1) while its objects
 * are slow or its homes are busy (lanes.c decides).  A caller that needs a
 * host that does not exist reserves a free slot for it; the scheduler
 * (host/scheduler.c) starts the process, and stops hosts that stay idle.
 *
 * A slot also belongs to one database of durable.database (its number,
 * settings.c): the process connects to it, and a slot is found by
 * (database, owner, home), so that a role owning classes in two databases
 * has hosts in each and no call crosses.  The slots are one pool for all
 * databases.  Each database has its scheduler, whose pid, latch and wake
 * flags are kept here per database.
 *
 * Locking rules:
 *	- a slot's state, owner and home change under slots_lock (exclusive);
 *	  finding a slot takes it shared;
 *	- pid, procno, generation, work_pending, the chain a host waits in and
 *	  its mailbox are a few words under the slot's spinlock;
 *	- what a host is busy with, when it was last active, "polling" and the
 *	  counters are atomics (read without a lock: hints and statistics).
 * Shared memory is re-initialised on a crash restart (generations start
 * again at 0, so they are compared with !=).
 *
 * IDENTIFICATION
 *	  src/shared/hosts.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/hosts.h"

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
	/* under slots_lock */
	DurableHostState state;
	int			db;				/* its database's number in durable.database */
	Oid			owner;
	int			home;
	/* under mutex */
	slock_t		mutex;
	pid_t		pid;			/* 0 while no process runs */
	int			procno;			/* host's pgprocno, for its latch */
	uint32		generation;		/* bumped each time a host process exits */
	bool		work_pending;	/* sends committed for it since it last looked */
	uint64		waiting_chain;	/* the chain of calls its running call waits in; 0 none */
	bool		mailbox_full;	/* a call of waiting_chain handed to it directly */
	DurableRequest mailbox;
	/* atomics */
	volatile bool polling;		/* idle but awake, watching its ring */
	pg_atomic_uint64 busy_since;	/* TimestampTz its top-level call started; 0 idle */
	pg_atomic_uint64 busy_object;	/* DurableObjectKey of that call's object */
	pg_atomic_uint64 waits_for;	/* the object its innermost call waits for; 0 none */
	pg_atomic_uint64 last_active;	/* TimestampTz of its last call or start */
	pg_atomic_uint32 retire;	/* the scheduler asks it to leave if idle */
	pg_atomic_uint64 calls;
	pg_atomic_uint64 errors;
	pg_atomic_uint64 batches;
	pg_atomic_uint32 objects;	/* objects in memory */
	pg_atomic_uint64 latency[DURABLE_LATENCY_BUCKETS + 1];	/* per bucket */
	pg_atomic_uint64 latency_sum_us;
} HostSlot;

typedef struct HostsShared
{
	int			nslots;
	LWLock	   *slots_lock;
	slock_t		mutex;			/* the schedulers' pids and procnos */
	pid_t		scheduler_pid[DURABLE_MAX_DATABASES];
	int			scheduler_procno[DURABLE_MAX_DATABASES];
	pg_atomic_uint32 slot_wanted;	/* a caller found no free slot */
	pg_atomic_uint32 work_wanted;	/* per database, a bit: sends committed for
									 * hosts that could not start */
	pg_atomic_uint32 unreachable;	/* per database, a bit: its scheduler could
									 * not connect to it */
	HostSlot	hosts[FLEXIBLE_ARRAY_MEMBER];
} HostsShared;

static HostsShared *shared = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(HostsShared, hosts),
					mul_size(durable_max_hosts, sizeof(HostSlot)));
}

/*
 * DurableHostsShmemRequest
 *		shmem_request_hook: room for the host slots, and their lock.
 */
void
DurableHostsShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(shared_size()));
	RequestNamedLWLockTranche(HOSTS_TRANCHE, 1);
}

/*
 * DurableHostsShmemStartup
 *		shmem_startup_hook: create or attach the host slots.
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
		memset(shared, 0, shared_size());
		shared->nslots = durable_max_hosts;
		shared->slots_lock = &GetNamedLWLockTranche(HOSTS_TRANCHE)[0].lock;
		SpinLockInit(&shared->mutex);
		for (i = 0; i < DURABLE_MAX_DATABASES; i++)
			shared->scheduler_procno[i] = -1;
		pg_atomic_init_u32(&shared->slot_wanted, 0);
		pg_atomic_init_u32(&shared->work_wanted, 0);
		pg_atomic_init_u32(&shared->unreachable, 0);
		for (i = 0; i < shared->nslots; i++)
		{
			HostSlot   *host = &shared->hosts[i];

			host->state = DURABLE_HOST_FREE;
			host->home = -1;
			SpinLockInit(&host->mutex);
			pg_atomic_init_u64(&host->busy_since, 0);
			pg_atomic_init_u64(&host->busy_object, 0);
			pg_atomic_init_u64(&host->waits_for, 0);
			pg_atomic_init_u64(&host->last_active, 0);
			pg_atomic_init_u32(&host->retire, 0);
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

/* how many host slots there are (durable.max_hosts) */
int
DurableHostSlots(void)
{
	return shared->nslots;
}

static HostSlot *
slot(int hostno)
{
	Assert(hostno >= 0 && hostno < shared->nslots);
	return &shared->hosts[hostno];
}

/* ----------------------------------------------------------------------
 * The scheduler
 * ----------------------------------------------------------------------
 */

/*
 * DurableSchedulerAttach / DurableSchedulerDetach
 *		The scheduler of database db starts (connected to it), or leaves.
 */
void
DurableSchedulerAttach(int db)
{
	SpinLockAcquire(&shared->mutex);
	shared->scheduler_pid[db] = MyProcPid;
	shared->scheduler_procno[db] = MyProc->pgprocno;
	SpinLockRelease(&shared->mutex);
	pg_atomic_fetch_and_u32(&shared->unreachable, ~(((uint32) 1) << db));
}

void
DurableSchedulerDetach(int db)
{
	SpinLockAcquire(&shared->mutex);
	shared->scheduler_pid[db] = 0;
	shared->scheduler_procno[db] = -1;
	SpinLockRelease(&shared->mutex);
}

/* whether the scheduler of database db runs */
bool
DurableSchedulerRunning(int db)
{
	bool		running;

	SpinLockAcquire(&shared->mutex);
	running = shared->scheduler_pid[db] != 0;
	SpinLockRelease(&shared->mutex);
	return running;
}

/*
 * DurableSchedulerUnreachable / DurableDatabaseUnreachable
 *		The scheduler of database db could not connect to it (it does not
 *		exist, or refuses connections); or whether that was so at its last
 *		try.  Cleared when it connects.
 */
void
DurableSchedulerUnreachable(int db)
{
	pg_atomic_fetch_or_u32(&shared->unreachable, ((uint32) 1) << db);
}

bool
DurableDatabaseUnreachable(int db)
{
	return (pg_atomic_read_u32(&shared->unreachable) & (((uint32) 1) << db)) != 0;
}

/*
 * DurableWakeScheduler
 *		Wake every database's scheduler: a slot was reserved (its database's
 *		scheduler starts it), a host is wanted (any can make room), classes
 *		changed, a gateway started.  Rare: a latch per database.
 */
void
DurableWakeScheduler(void)
{
	int			procnos[DURABLE_MAX_DATABASES];
	int			i;

	SpinLockAcquire(&shared->mutex);
	memcpy(procnos, shared->scheduler_procno, sizeof(procnos));
	SpinLockRelease(&shared->mutex);
	for (i = 0; i < DURABLE_MAX_DATABASES; i++)
		if (procnos[i] >= 0)
			DurableWakeProc(procnos[i]);
}

/*
 * DurableWakeSchedulerForWork
 *		Sends were committed in this database for a home host that could not
 *		be started: its scheduler looks for due work.
 */
void
DurableWakeSchedulerForWork(void)
{
	Assert(durable_db >= 0);
	pg_atomic_fetch_or_u32(&shared->work_wanted, ((uint32) 1) << durable_db);
	DurableWakeScheduler();
}

/* the scheduler of database db: whether it was asked to look for due work */
bool
DurableSchedulerTakeWork(int db)
{
	uint32		bit = ((uint32) 1) << db;

	return (pg_atomic_fetch_and_u32(&shared->work_wanted, ~bit) & bit) != 0;
}

/* ----------------------------------------------------------------------
 * Slots
 * ----------------------------------------------------------------------
 */

/* the slot of owner's host home in database db (-1: an extra; then any extra), under slots_lock */
static int
find_locked(int db, Oid owner, int home)
{
	int			i;

	for (i = 0; i < shared->nslots; i++)
	{
		HostSlot   *host = &shared->hosts[i];

		if ((host->state == DURABLE_HOST_RESERVED || host->state == DURABLE_HOST_RUNNING) &&
			host->owner == owner && host->home == home && host->db == db)
			return i;
	}
	return -1;
}

/*
 * DurableHostFind
 *		The slot of owner's home host home in database db, reserved or
 *		running; -1 if none.
 */
int
DurableHostFind(int db, Oid owner, int home)
{
	int			found;

	LWLockAcquire(shared->slots_lock, LW_SHARED);
	found = find_locked(db, owner, home);
	LWLockRelease(shared->slots_lock);
	return found;
}

/* a slot given to a new host starts counting again (a new series in /metrics) */
static void
reset_counters(HostSlot *host)
{
	int			j;

	pg_atomic_write_u64(&host->calls, 0);
	pg_atomic_write_u64(&host->errors, 0);
	pg_atomic_write_u64(&host->batches, 0);
	pg_atomic_write_u32(&host->objects, 0);
	for (j = 0; j <= DURABLE_LATENCY_BUCKETS; j++)
		pg_atomic_write_u64(&host->latency[j], 0);
	pg_atomic_write_u64(&host->latency_sum_us, 0);
}

/*
 * DurableHostReserve
 *		A slot for owner's host home (home -1: a new extra host) in database
 *		db, reserved now if it does not exist yet; the scheduler of db starts
 *		its process.  -1 if every slot is taken (DurableHostNeedSlot tells the
 *		schedulers).
 */
int
DurableHostReserve(int db, Oid owner, int home)
{
	int			found = -1;
	int			i;

	LWLockAcquire(shared->slots_lock, LW_EXCLUSIVE);
	if (home >= 0)
		found = find_locked(db, owner, home);
	for (i = 0; found < 0 && i < shared->nslots; i++)
	{
		HostSlot   *host = &shared->hosts[i];

		if (host->state != DURABLE_HOST_FREE)
			continue;
		host->state = DURABLE_HOST_RESERVED;
		host->db = db;
		host->owner = owner;
		host->home = home;
		pg_atomic_write_u32(&host->retire, 0);
		pg_atomic_write_u64(&host->busy_since, 0);
		pg_atomic_write_u64(&host->waits_for, 0);
		pg_atomic_write_u64(&host->last_active, (uint64) GetCurrentTimestamp());
		reset_counters(host);
		found = i;
		DurableWakeScheduler();
	}
	LWLockRelease(shared->slots_lock);
	return found;
}

/* a copy of a slot's state, database, owner and home */
void
DurableHostSlotInfo(int hostno, DurableHostState *state, int *db, Oid *owner, int *home)
{
	HostSlot   *host = slot(hostno);

	LWLockAcquire(shared->slots_lock, LW_SHARED);
	*state = host->state;
	*db = host->db;
	*owner = host->owner;
	*home = host->home;
	LWLockRelease(shared->slots_lock);
}

/*
 * DurableHostFree
 *		The slot is free again: its process left (or could not start) and its
 *		ring was emptied.
 */
void
DurableHostFree(int hostno)
{
	HostSlot   *host = slot(hostno);

	LWLockAcquire(shared->slots_lock, LW_EXCLUSIVE);
	host->state = DURABLE_HOST_FREE;
	host->owner = InvalidOid;
	host->home = -1;
	LWLockRelease(shared->slots_lock);
}

/*
 * DurableHostStartExit
 *		A running host wants to leave: if idle(hostno) still holds under the
 *		slots lock (nothing queued, nothing held), it takes no new work from
 *		now on.  Returns whether it may exit.
 */
bool
DurableHostStartExit(int hostno, bool (*idle) (int hostno))
{
	HostSlot   *host = slot(hostno);
	bool		leaving = false;

	LWLockAcquire(shared->slots_lock, LW_EXCLUSIVE);
	if (host->state == DURABLE_HOST_RUNNING && idle(hostno))
	{
		host->state = DURABLE_HOST_EXITING;
		leaving = true;
	}
	LWLockRelease(shared->slots_lock);
	return leaving;
}

/*
 * DurableHostAttach / DurableHostDetach
 *		A host process starts in its slot (this process), or is gone: its exit
 *		callback answered everyone it held first.  Detach leaves the slot
 *		reserved for a successor unless the host was exiting on purpose.
 */
void
DurableHostAttach(int hostno)
{
	HostSlot   *host = slot(hostno);

	LWLockAcquire(shared->slots_lock, LW_EXCLUSIVE);
	if (host->state == DURABLE_HOST_RESERVED)
		host->state = DURABLE_HOST_RUNNING;
	LWLockRelease(shared->slots_lock);
	SpinLockAcquire(&host->mutex);
	host->pid = MyProcPid;
	host->procno = MyProc->pgprocno;
	SpinLockRelease(&host->mutex);
	pg_atomic_write_u64(&host->last_active, (uint64) GetCurrentTimestamp());
}

void
DurableHostDetach(int hostno)
{
	HostSlot   *host = slot(hostno);

	SpinLockAcquire(&host->mutex);
	host->pid = 0;
	host->generation++;
	host->waiting_chain = 0;
	SpinLockRelease(&host->mutex);
	pg_atomic_write_u64(&host->busy_since, 0);
	pg_atomic_write_u64(&host->waits_for, 0);
	pg_atomic_write_u32(&host->objects, 0);
	LWLockAcquire(shared->slots_lock, LW_EXCLUSIVE);
	if (host->state == DURABLE_HOST_RUNNING)
		host->state = DURABLE_HOST_RESERVED;	/* died: the scheduler starts another */
	else if (host->state == DURABLE_HOST_EXITING)
	{
		host->state = DURABLE_HOST_FREE;
		host->owner = InvalidOid;
		host->home = -1;
	}
	LWLockRelease(shared->slots_lock);
	DurableWakeScheduler();
}

/*
 * DurableHostProcess
 *		The host's pid (0: not running) and generation.
 */
void
DurableHostProcess(int hostno, pid_t *pid, uint32 *generation)
{
	HostSlot   *host = slot(hostno);

	SpinLockAcquire(&host->mutex);
	*pid = host->pid;
	*generation = host->generation;
	SpinLockRelease(&host->mutex);
}

/*
 * DurableHostNeedSlot / DurableHostSlotWanted
 *		A caller found every slot taken: the scheduler stops an idle host of
 *		another owner to make room.
 */
void
DurableHostNeedSlot(void)
{
	pg_atomic_write_u32(&shared->slot_wanted, 1);
	DurableWakeScheduler();
}

bool
DurableHostSlotWanted(void)
{
	return pg_atomic_exchange_u32(&shared->slot_wanted, 0) != 0;
}

/* ----------------------------------------------------------------------
 * What a host is busy with
 * ----------------------------------------------------------------------
 */

/* the host starts a top-level call of object */
void
DurableHostSetBusy(int hostno, uint64 object)
{
	HostSlot   *host = slot(hostno);

	pg_atomic_write_u64(&host->busy_object, object);
	pg_write_barrier();
	pg_atomic_write_u64(&host->busy_since, (uint64) GetCurrentTimestamp());
}

void
DurableHostSetIdle(int hostno)
{
	HostSlot   *host = slot(hostno);
	TimestampTz now = GetCurrentTimestamp();

	pg_atomic_write_u64(&host->busy_since, 0);
	pg_atomic_write_u64(&host->last_active, (uint64) now);
}

/* the host's innermost call now waits for object (0: waits no more) */
void
DurableHostSetWaitsFor(int hostno, uint64 object)
{
	pg_atomic_write_u64(&slot(hostno)->waits_for, object);
}

uint64
DurableHostWaitsFor(int hostno)
{
	return pg_atomic_read_u64(&slot(hostno)->waits_for);
}

/*
 * DurableHostBusy
 *		Whether the host has been in one call since before busy_before (0:
 *		whether it is in a call at all); *object gets that call's object.
 */
bool
DurableHostBusy(int hostno, TimestampTz busy_before, uint64 *object)
{
	HostSlot   *host = slot(hostno);
	TimestampTz since = (TimestampTz) pg_atomic_read_u64(&host->busy_since);

	if (since == 0 || (busy_before != 0 && since >= busy_before))
		return false;
	pg_read_barrier();
	if (object)
		*object = pg_atomic_read_u64(&host->busy_object);
	return true;
}

/* the scheduler asks an idle host to leave (its slot is wanted) */
void
DurableHostAskRetire(int hostno)
{
	pg_atomic_write_u32(&slot(hostno)->retire, 1);
	DurableWakeHost(hostno);
}

bool
DurableHostRetireAsked(int hostno)
{
	return pg_atomic_exchange_u32(&slot(hostno)->retire, 0) != 0;
}

TimestampTz
DurableHostLastActive(int hostno)
{
	return (TimestampTz) pg_atomic_read_u64(&slot(hostno)->last_active);
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

/* ----------------------------------------------------------------------
 * Waking
 * ----------------------------------------------------------------------
 */

void
DurableWakeProc(int procno)
{
	SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/* wake a host if its process runs */
void
DurableWakeHost(int hostno)
{
	HostSlot   *host = slot(hostno);
	int			procno = -1;

	SpinLockAcquire(&host->mutex);
	if (host->pid != 0)
		procno = host->procno;
	SpinLockRelease(&host->mutex);
	if (procno >= 0)
		DurableWakeProc(procno);
}

/*
 * DurableWakeHostForWork
 *		Tell a host that it has work besides its ring (sends committed for it,
 *		classes changed), and wake it.
 */
void
DurableWakeHostForWork(int hostno)
{
	HostSlot   *host = slot(hostno);

	SpinLockAcquire(&host->mutex);
	host->work_pending = true;
	SpinLockRelease(&host->mutex);
	DurableWakeHost(hostno);
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

/* ----------------------------------------------------------------------
 * Mailbox
 * ----------------------------------------------------------------------
 */

/*
 * DurableHostSwapChain
 *		The host's running call now waits in call chain chain (0: waits no
 *		more); *old_chain gets the chain it waited in before.
 */
void
DurableHostSwapChain(int hostno, uint64 chain, uint64 *old_chain)
{
	HostSlot   *host = slot(hostno);

	SpinLockAcquire(&host->mutex);
	*old_chain = host->waiting_chain;
	host->waiting_chain = chain;
	SpinLockRelease(&host->mutex);
}

/* the chain the host's running call waits in (0: none) */
uint64
DurableHostChain(int hostno)
{
	HostSlot   *host = slot(hostno);
	uint64		chain;

	SpinLockAcquire(&host->mutex);
	chain = host->waiting_chain;
	SpinLockRelease(&host->mutex);
	return chain;
}

/*
 * DurableHostMailboxPut
 *		If the host's running call waits in the chain of req (the chain came
 *		back to it) and its mailbox is empty, put the request there (it runs
 *		it nested in its waiting call) and wake it.  *generation gets the
 *		host's generation either way.
 */
DurableMailboxResult
DurableHostMailboxPut(int hostno, const DurableRequest *req, uint32 *generation)
{
	HostSlot   *host = slot(hostno);
	DurableMailboxResult result = DURABLE_MAILBOX_NOT_WAITING;
	int			procno = -1;

	SpinLockAcquire(&host->mutex);
	if (host->pid != 0 && host->waiting_chain != 0 && host->waiting_chain == req->chain)
	{
		result = DURABLE_MAILBOX_FULL;
		if (!host->mailbox_full)
		{
			host->mailbox = *req;
			host->mailbox_full = true;
			procno = host->procno;
			result = DURABLE_MAILBOX_HANDED;
		}
	}
	*generation = host->generation;
	SpinLockRelease(&host->mutex);
	if (result == DURABLE_MAILBOX_HANDED)
		DurableWakeProc(procno);
	return result;
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
		host->waiting_chain = 0;
	SpinLockRelease(&host->mutex);
	return have;
}

/* ----------------------------------------------------------------------
 * Counters
 * ----------------------------------------------------------------------
 */

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
 *		A copy of a host's state and counters (for the views and /metrics);
 *		queue_depth is the caller's to fill (lanes.c).
 */
void
DurableHostGetStats(int hostno, DurableHostStats *stats)
{
	HostSlot   *host = slot(hostno);
	int			b;

	memset(stats, 0, sizeof(*stats));
	DurableHostSlotInfo(hostno, &stats->state, &stats->db, &stats->owner, &stats->home);
	SpinLockAcquire(&host->mutex);
	stats->pid = host->pid;
	SpinLockRelease(&host->mutex);
	stats->busy_since = (TimestampTz) pg_atomic_read_u64(&host->busy_since);
	stats->waiting = pg_atomic_read_u64(&host->waits_for) != 0;
	stats->calls = pg_atomic_read_u64(&host->calls);
	stats->errors = pg_atomic_read_u64(&host->errors);
	stats->batches = pg_atomic_read_u64(&host->batches);
	stats->objects = pg_atomic_read_u32(&host->objects);
	for (b = 0; b <= DURABLE_LATENCY_BUCKETS; b++)
		stats->latency[b] = pg_atomic_read_u64(&host->latency[b]);
	stats->latency_sum_us = pg_atomic_read_u64(&host->latency_sum_us);
}
