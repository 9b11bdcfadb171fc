/*-------------------------------------------------------------------------
 *
 * lanes.c
 *	  Where calls wait and which host runs each object: the hosts' rings and
 *	  the objects' lanes.
 *
 * Every call waits in the ring of one host.  Which one is decided by the
 * object's lane: an entry of a shared hash table that exists while the
 * object has calls queued or taken but not yet committed, and names the one
 * host that runs them.  So an object runs on one host at a time, its calls in
 * the order they arrived (G1, G5), while the object is free to run anywhere
 * once its lane is gone.  A new lane goes to the object's home host (shard %
 * durable.hosts among the hosts of its class owner), unless:
 *	- that host has been busy in one call for longer than
 *	  durable.busy_threshold: then to another host of the owner that is not
 *	  (or a new extra host);
 *	- the object itself is slow (a call of it ran longer than the threshold
 *	  within the last SLOW_MEMORY_MS): then to an extra host of the owner,
 *	  so that its calls never stall the objects of the home hosts.
 * Hosts are per database too (hosts.c): an object's key is seeded with its
 * database (objects.c), so the same class and id in two databases are two
 * lanes on hosts of their own databases.
 * And the scheduler moves the queued calls of objects away from a host that
 * is stuck in a long call (DurableMoveQueued), for objects that have nothing
 * taken there.
 *
 * A host's storage cache is only right for an object if no other host ran
 * the object since; the runners table (a direct-mapped record of the last
 * host to run an object) tells a host when to forget what it cached.
 *
 * Deadlocks are found between objects: a host records which object its
 * innermost call waits for (hosts.c); DurableWaitCloses follows these waits
 * from object to object, and through hosts holding an object in a batch
 * not yet committed, to see if a new wait would come back to the waiting
 * host.
 *
 * Locking rules (acquire in this order; never the other way):
 *	1. one lane partition lock (LANE_PARTITIONS of them, by object key): the
 *	   lane, and the slow and runners entries of that partition;
 *	2. hosts.c's slots lock (routing reserves a host while holding 1);
 *	3. ring locks, several only in host number order: head, tail, entries.
 * A ring entry's object can only be taken, moved or added while its lane's
 * partition lock is held, so an object never has calls in two rings.
 *
 * IDENTIFICATION
 *	  src/shared/lanes.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/lanes.h"

#include "access/twophase.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#define LANES_TRANCHE "pg_durable_objects lanes"
#define RINGS_TRANCHE "pg_durable_objects rings"
#define LANE_PARTITIONS 16		/* a power of 2 */
#define SLOW_SLOTS 1024			/* this and RUNNER_BUCKETS: multiples of LANE_PARTITIONS */
#define RUNNER_BUCKETS 16384	/* of RUNNER_WAYS entries each */
#define RUNNER_WAYS 4
#define SLOW_MEMORY_MS 10000	/* an object stays slow this long after a slow call */
#define WAIT_WALK_MAX 10000		/* steps of a deadlock search */

typedef struct Lane
{
	uint64		object;			/* hash key: DurableObjectKey */
	int			hostno;			/* the host that runs it */
	int			queued;			/* its calls in that host's ring */
	int			active;			/* its calls that host took and has not committed */
	bool		running;		/* nested on that host's stack of running calls now (its
								 * top-level call's object is the host's busy object) */
} Lane;

typedef struct SlowEntry
{
	uint64		object;
	TimestampTz until;
} SlowEntry;

typedef struct RunnerBucket
{
	uint64		object[RUNNER_WAYS];
	int32		hostno[RUNNER_WAYS];
	uint32		next;			/* the way to replace next */
} RunnerBucket;

typedef struct Ring
{
	LWLock	   *lock;
	uint64		head;			/* next position to write */
	uint64		tail;			/* next position to read */
	bool		closed;			/* its host is leaving: takes nothing new */
	pg_atomic_uint32 lanes;		/* lanes that name this host */
} Ring;

typedef struct LanesShared
{
	int			nslots;
	int			ring_capacity;
	LWLock	   *partitions[LANE_PARTITIONS];
	SlowEntry	slow[SLOW_SLOTS];
	RunnerBucket runners[RUNNER_BUCKETS];
	Ring		rings[FLEXIBLE_ARRAY_MEMBER];
	/* then nslots * ring_capacity DurableRequest entries */
} LanesShared;

static LanesShared *shared = NULL;
static DurableRequest *entries = NULL;
static HTAB *lanes = NULL;

static int
ring_capacity(void)
{
	/* every backend can have one call waiting, with room for other sources */
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts + 64;
}

static Size
rings_offset(void)
{
	return MAXALIGN(add_size(offsetof(LanesShared, rings),
							 mul_size(durable_max_hosts, sizeof(Ring))));
}

static Size
shared_size(void)
{
	return add_size(rings_offset(),
					mul_size(mul_size(durable_max_hosts, ring_capacity()),
							 sizeof(DurableRequest)));
}

/* most lanes at once: every queued call, and every host's batch and nesting */
static long
max_lanes(void)
{
	return (long) durable_max_hosts * (ring_capacity() + 2 * DURABLE_MAX_BATCH);
}

/* lanes are hashed by the low bits of the object key (already a hash) */
static uint32
lane_hash(const void *key, Size keysize)
{
	return (uint32) *(const uint64 *) key;
}

/*
 * DurableLanesShmemRequest / DurableLanesShmemStartup
 *		shmem hooks: the rings, the lane table and their locks.
 */
void
DurableLanesShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(shared_size()));
	RequestAddinShmemSpace(hash_estimate_size(max_lanes(), sizeof(Lane)));
	RequestNamedLWLockTranche(LANES_TRANCHE, LANE_PARTITIONS);
	RequestNamedLWLockTranche(RINGS_TRANCHE, durable_max_hosts);
}

void
DurableLanesShmemStartup(void)
{
	HASHCTL		info;
	bool		found;
	int			i;

	shared = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("pg_durable_objects lanes", shared_size(), &found);
	entries = (DurableRequest *) ((char *) shared + rings_offset());
	if (!found)
	{
		LWLockPadded *partition_locks = GetNamedLWLockTranche(LANES_TRANCHE);
		LWLockPadded *ring_locks = GetNamedLWLockTranche(RINGS_TRANCHE);

		memset(shared, 0, rings_offset());
		shared->nslots = durable_max_hosts;
		shared->ring_capacity = ring_capacity();
		for (i = 0; i < LANE_PARTITIONS; i++)
			shared->partitions[i] = &partition_locks[i].lock;
		for (i = 0; i < shared->nslots; i++)
		{
			shared->rings[i].lock = &ring_locks[i].lock;
			pg_atomic_init_u32(&shared->rings[i].lanes, 0);
		}
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(uint64);
	info.entrysize = sizeof(Lane);
	info.hash = lane_hash;
	info.num_partitions = LANE_PARTITIONS;
	lanes = ShmemInitHash("pg_durable_objects lane table", max_lanes(), max_lanes(), &info,
						  HASH_ELEM | HASH_FUNCTION | HASH_PARTITION | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
}

/* ----------------------------------------------------------------------
 * Rings (the caller holds the ring's lock)
 * ----------------------------------------------------------------------
 */

static Ring *
ring(int hostno)
{
	Assert(hostno >= 0 && hostno < shared->nslots);
	return &shared->rings[hostno];
}

static DurableRequest *
ring_entry(int hostno, uint64 pos)
{
	return &entries[(Size) hostno * shared->ring_capacity + pos % shared->ring_capacity];
}

static bool
ring_has_room(int hostno, int n)
{
	Ring	   *r = ring(hostno);

	return !r->closed && r->head - r->tail + n <= (uint64) shared->ring_capacity;
}

static void
ring_append(int hostno, const DurableRequest *req)
{
	Ring	   *r = ring(hostno);

	*ring_entry(hostno, r->head) = *req;
	r->head++;
}

/* drop moved entries at the ring's tail */
static void
ring_skip_moved(int hostno)
{
	Ring	   *r = ring(hostno);

	while (r->tail != r->head && ring_entry(hostno, r->tail)->kind == DURABLE_REQUEST_MOVED)
		r->tail++;
}

/* lock two rings in host number order */
static void
lock_rings(int a, int b)
{
	LWLockAcquire(ring(Min(a, b))->lock, LW_EXCLUSIVE);
	LWLockAcquire(ring(Max(a, b))->lock, LW_EXCLUSIVE);
}

static void
unlock_rings(int a, int b)
{
	LWLockRelease(ring(a)->lock);
	LWLockRelease(ring(b)->lock);
}

/* ----------------------------------------------------------------------
 * Lanes (the caller holds the object's partition lock)
 * ----------------------------------------------------------------------
 */

static LWLock *
partition_lock(uint64 object)
{
	return shared->partitions[(uint32) object % LANE_PARTITIONS];
}

static Lane *
lane_find(uint64 object)
{
	return hash_search_with_hash_value(lanes, &object, (uint32) object, HASH_FIND, NULL);
}

/* a new lane of object on host hostno; NULL if the table is full */
static Lane *
lane_create(uint64 object, int hostno)
{
	bool		found;
	Lane	   *lane = hash_search_with_hash_value(lanes, &object, (uint32) object,
												   HASH_ENTER_NULL, &found);

	if (lane == NULL)
		return NULL;
	Assert(!found);
	lane->hostno = hostno;
	lane->queued = 0;
	lane->active = 0;
	lane->running = false;
	pg_atomic_fetch_add_u32(&ring(hostno)->lanes, 1);
	return lane;
}

/* the lane is done with: remove it if nothing is queued or taken */
static void
lane_maybe_remove(Lane *lane)
{
	if (lane->queued > 0 || lane->active > 0)
		return;
	pg_atomic_fetch_sub_u32(&ring(lane->hostno)->lanes, 1);
	(void) hash_search_with_hash_value(lanes, &lane->object, (uint32) lane->object,
									   HASH_REMOVE, NULL);
}

static bool
slow_locked(uint64 object)
{
	SlowEntry  *e = &shared->slow[object % SLOW_SLOTS];

	return e->object == object && e->until > GetCurrentTimestamp();
}

/*
 * runner_take
 *		Host hostno runs object now: whether it was also the last host to run
 *		it (its cached storage of the object is still right).  An object the
 *		table forgot counts as run elsewhere.
 */
static bool
runner_take(uint64 object, int hostno)
{
	RunnerBucket *b = &shared->runners[object % RUNNER_BUCKETS];
	bool		same;
	int			i;

	for (i = 0; i < RUNNER_WAYS; i++)
		if (b->object[i] == object)
			break;
	if (i == RUNNER_WAYS)
	{
		i = b->next;
		b->next = (b->next + 1) % RUNNER_WAYS;
		b->object[i] = object;
		b->hostno[i] = -1;
	}
	same = b->hostno[i] == hostno;
	b->hostno[i] = hostno;
	return same;
}

/*
 * lane_running
 *		Whether the lane's object is running on its host now: nested in a
 *		call (running), or as the host's top-level call (its busy object).
 */
static bool
lane_running(Lane *lane)
{
	uint64		busy = 0;

	return lane->running ||
		(DurableHostBusy(lane->hostno, 0, &busy) && busy == lane->object);
}

/* ----------------------------------------------------------------------
 * Choosing a host
 * ----------------------------------------------------------------------
 */

/*
 * DurableReserveHost
 *		DurableHostReserve, and open the slot's ring at once (it was closed
 *		when the slot's last process left): calls may queue before the new
 *		process has started.  -1 if no slot is free.
 */
int
DurableReserveHost(int db, Oid owner, int home)
{
	int			hostno = DurableHostReserve(db, owner, home);

	if (hostno >= 0)
		DurableRingOpen(hostno);
	return hostno;
}

/* whether a host has been in one call for longer than durable.busy_threshold */
static bool
host_stuck(int hostno)
{
	TimestampTz before = GetCurrentTimestamp() - (TimestampTz) durable_busy_threshold * 1000;

	return DurableHostBusy(hostno, before, NULL);
}

/*
 * other_host
 *		A host of owner in database db other than avoid that is not stuck,
 *		preferring home hosts (extras with extra_first), then the least
 *		queued; else a new extra host; -1 if none can be had.
 */
static int
other_host(int db, Oid owner, int avoid, bool extra_first)
{
	int			best = -1;
	int			best_rank = INT_MAX;
	int			i;

	for (i = 0; i < shared->nslots; i++)
	{
		DurableHostState state;
		int			d;
		Oid			o;
		int			home;
		int			rank;

		if (i == avoid)
			continue;
		DurableHostSlotInfo(i, &state, &d, &o, &home);
		if (o != owner || d != db || (state != DURABLE_HOST_RUNNING && state != DURABLE_HOST_RESERVED) ||
			host_stuck(i))
			continue;
		rank = (int) Min(ring(i)->head - ring(i)->tail, 100000);
		if ((home < 0) != extra_first)
			rank += 200000;
		if (rank < best_rank)
		{
			best = i;
			best_rank = rank;
		}
	}
	if (best >= 0)
		return best;
	return DurableReserveHost(db, owner, -1);
}

/*
 * route
 *		The host for a new lane of an object of owner in database db with this
 *		shard: its home (reserved if need be), unless the home is stuck or the
 *		object is slow (see the file header).  -1: no host slot is free.
 */
static int
route(int db, Oid owner, uint32 shard, bool slow)
{
	int			home = DurableHostFind(db, owner, (int) (shard % (uint32) durable_hosts));
	int			other;

	if (slow)
	{
		other = other_host(db, owner, home, true);
		if (other >= 0)
			return other;
	}
	if (home < 0)
		return DurableReserveHost(db, owner, (int) (shard % (uint32) durable_hosts));
	if (host_stuck(home))
	{
		other = other_host(db, owner, home, false);
		if (other >= 0)
			return other;
	}
	return home;
}

/* ----------------------------------------------------------------------
 * Callers
 * ----------------------------------------------------------------------
 */

/* after a request went into hostno's ring */
static void
submitted(int hostno, uint32 *generation)
{
	pid_t		pid;

	DurableHostProcess(hostno, &pid, generation);
	DurableWakeHost(hostno);
}

/*
 * DurableSubmit
 *		Put call req (req->object set) of an object of owner in database db,
 *		with this shard, on the ring of the host that runs it (see the file
 *		header) and wake that host; req->db is set to db.  *hostno and *generation get where it went, *was_polling
 *		(unless NULL) whether that host was polling its ring (its caller may
 *		then watch for the reply rather than sleep).
 */
DurableSubmitResult
DurableSubmit(int db, Oid owner, uint32 shard, DurableRequest *req, int *hostno,
			  uint32 *generation, bool *was_polling)
{
	uint64		object = req->object;
	LWLock	   *plock = partition_lock(object);
	Lane	   *lane;
	int			target;
	bool		ok;
	bool		closed;

	req->enqueued_at = GetCurrentTimestamp();
	req->db = (int16) db;
	for (;;)
	{
		LWLockAcquire(plock, LW_EXCLUSIVE);
		lane = lane_find(object);
		if (lane == NULL)
		{
			target = route(db, owner, shard, slow_locked(object));
			if (target < 0)
			{
				LWLockRelease(plock);
				DurableHostNeedSlot();
				return DURABLE_SUBMIT_NO_HOST;
			}
			lane = lane_create(object, target);
			if (lane == NULL)
			{
				LWLockRelease(plock);
				return DURABLE_SUBMIT_FULL;
			}
		}
		target = lane->hostno;
		LWLockAcquire(ring(target)->lock, LW_EXCLUSIVE);
		ok = ring_has_room(target, 1);
		closed = ring(target)->closed;
		if (ok)
		{
			/* before the host can see the call: polling, it would stop at once */
			if (was_polling != NULL)
				*was_polling = DurableHostPolling(target);
			ring_append(target, req);
		}
		LWLockRelease(ring(target)->lock);
		if (ok)
			lane->queued++;
		else
			lane_maybe_remove(lane);
		LWLockRelease(plock);
		if (ok)
		{
			*hostno = target;
			submitted(target, generation);
			return DURABLE_SUBMIT_OK;
		}
		/* a ring that closed (its host is leaving) sends us elsewhere; a full one stops */
		if (!closed)
			return DURABLE_SUBMIT_FULL;
	}
}

/*
 * DurableSubmitToWaitingHost
 *		A call between objects: if the called object is held (taken, not
 *		committed, not running) by a host whose running call waits in the
 *		same chain of calls (the chain came back to it), hand the call to that
 *		host's mailbox: it runs it nested in its waiting call, as part of the
 *		same chain.  DURABLE_MAILBOX_FULL: such a host holds it, but its
 *		mailbox is taken (try again soon: its ring would not be read before
 *		its wait ends); NOT_WAITING: no such host.
 */
DurableMailboxResult
DurableSubmitToWaitingHost(DurableRequest *req, int *hostno, uint32 *generation)
{
	LWLock	   *plock = partition_lock(req->object);
	Lane	   *lane;
	DurableMailboxResult result = DURABLE_MAILBOX_NOT_WAITING;

	LWLockAcquire(plock, LW_EXCLUSIVE);
	lane = lane_find(req->object);
	if (lane != NULL && lane->active > 0 && !lane_running(lane))
	{
		result = DurableHostMailboxPut(lane->hostno, req, generation);
		if (result == DURABLE_MAILBOX_HANDED)
			*hostno = lane->hostno;
	}
	LWLockRelease(plock);
	return result;
}

/* ----------------------------------------------------------------------
 * Hosts
 * ----------------------------------------------------------------------
 */

/*
 * move_locked
 *		Move every queued call of lane's object from its host's ring to host
 *		to's ring, in order, and the lane with them (partition lock held).
 *		False if to's ring has no room for them.
 */
static bool
move_locked(Lane *lane, int to)
{
	int			from = lane->hostno;
	Ring	   *f = ring(from);
	uint64		pos;
	int			n = 0;
	bool		ok;

	Assert(lane->active == 0 && from != to);
	lock_rings(from, to);
	for (pos = f->tail; pos != f->head; pos++)
	{
		DurableRequest *e = ring_entry(from, pos);

		if (e->object == lane->object && e->kind != DURABLE_REQUEST_MOVED)
			n++;
	}
	ok = ring_has_room(to, n);
	if (ok)
	{
		for (pos = f->tail; pos != f->head; pos++)
		{
			DurableRequest *e = ring_entry(from, pos);

			if (e->object != lane->object || e->kind == DURABLE_REQUEST_MOVED)
				continue;
			ring_append(to, e);
			e->kind = DURABLE_REQUEST_MOVED;
			e->message = InvalidDsaPointer;
		}
		ring_skip_moved(from);
		lane->queued = n;
		lane->hostno = to;
		pg_atomic_fetch_sub_u32(&f->lanes, 1);
		pg_atomic_fetch_add_u32(&ring(to)->lanes, 1);
	}
	unlock_rings(from, to);
	if (ok)
		DurableWakeHost(to);
	return ok;
}

/* the first entry of a ring that was not moved away; false if none */
static bool
first_entry(int hostno, uint64 *pos, uint64 *object)
{
	Ring	   *r = ring(hostno);
	uint64		p;
	bool		found = false;

	LWLockAcquire(r->lock, LW_SHARED);
	for (p = r->tail; p != r->head; p++)
	{
		DurableRequest *e = ring_entry(hostno, p);

		if (e->kind != DURABLE_REQUEST_MOVED)
		{
			*pos = p;
			*object = e->object;
			found = true;
			break;
		}
	}
	LWLockRelease(r->lock);
	return found;
}

/*
 * DurableTake
 *		The next call in host hostno's ring, oldest first: the host now holds
 *		its object until DurableRelease (after commit).  *alone: the object
 *		is slow, its call runs in a transaction of its own (only taken with
 *		alone_ok: when the host's batch is empty; else false is returned and
 *		it stays first).  *cache_valid: no other host ran the object since
 *		this one did.  (A slow object whose call is already queued here runs
 *		here: handing it to an extra host now would make it wait for that
 *		host to start.)  False when the ring is empty.
 */
bool
DurableTake(int hostno, bool alone_ok, DurableRequest *req, bool *alone, bool *cache_valid)
{
	Ring	   *r = ring(hostno);
	uint64		pos;
	uint64		object;

	while (first_entry(hostno, &pos, &object))
	{
		LWLock	   *plock = partition_lock(object);
		Lane	   *lane;
		bool		taken = false;

		LWLockAcquire(plock, LW_EXCLUSIVE);
		lane = lane_find(object);
		*alone = slow_locked(object);
		if (*alone && !alone_ok)
		{
			LWLockRelease(plock);
			return false;
		}
		LWLockAcquire(r->lock, LW_EXCLUSIVE);
		ring_skip_moved(hostno);
		if (r->tail == pos && ring_entry(hostno, pos)->object == object)
		{
			*req = *ring_entry(hostno, pos);
			r->tail++;
			ring_skip_moved(hostno);
			taken = true;
		}
		LWLockRelease(r->lock);
		if (taken)
		{
			Assert(lane != NULL && lane->hostno == hostno);
			lane->queued--;
			lane->active++;
			*cache_valid = runner_take(object, hostno);
		}
		LWLockRelease(plock);
		if (taken)
			return true;
	}
	return false;
}

/*
 * DurableClaim
 *		Host hostno is about to run object outside its ring (a call between
 *		objects run inline, a due alarm or send, a call handed to its
 *		mailbox): hold it until DurableRelease, unless another host holds it.
 *		*cache_valid as for DurableTake.
 */
bool
DurableClaim(int hostno, uint64 object, bool *cache_valid)
{
	LWLock	   *plock = partition_lock(object);
	Lane	   *lane;
	bool		claimed = false;

	LWLockAcquire(plock, LW_EXCLUSIVE);
	lane = lane_find(object);
	if (lane == NULL)
		lane = lane_create(object, hostno);
	if (lane != NULL && lane->hostno == hostno)
	{
		lane->active++;
		*cache_valid = runner_take(object, hostno);
		claimed = true;
	}
	LWLockRelease(plock);
	return claimed;
}

/*
 * DurableRelease
 *		A call of object that its host took or claimed committed (or rolled
 *		back): the host holds it once less.
 */
void
DurableRelease(uint64 object)
{
	LWLock	   *plock = partition_lock(object);
	Lane	   *lane;

	LWLockAcquire(plock, LW_EXCLUSIVE);
	lane = lane_find(object);
	if (lane != NULL && lane->active > 0)
	{
		lane->active--;
		lane_maybe_remove(lane);
	}
	LWLockRelease(plock);
}

/* an object starts running nested on its host's stack (or stops) */
void
DurableSetRunning(uint64 object, bool running)
{
	LWLock	   *plock = partition_lock(object);
	Lane	   *lane;

	LWLockAcquire(plock, LW_EXCLUSIVE);
	lane = lane_find(object);
	if (lane != NULL)
		lane->running = running;
	LWLockRelease(plock);
}

/*
 * DurableDrain
 *		A host that exits: take up to max calls left in its ring (to refuse
 *		them), closing the ring to new ones.
 */
int
DurableDrain(int hostno, DurableRequest *reqs, int max)
{
	Ring	   *r = ring(hostno);
	int			n = 0;
	int			i;

	LWLockAcquire(r->lock, LW_EXCLUSIVE);
	r->closed = true;
	while (n < max && r->tail != r->head)
	{
		DurableRequest *e = ring_entry(hostno, r->tail++);

		if (e->kind != DURABLE_REQUEST_MOVED)
			reqs[n++] = *e;
	}
	LWLockRelease(r->lock);
	for (i = 0; i < n; i++)
	{
		LWLock	   *plock = partition_lock(reqs[i].object);
		Lane	   *lane;

		LWLockAcquire(plock, LW_EXCLUSIVE);
		lane = lane_find(reqs[i].object);
		if (lane != NULL && lane->queued > 0)
		{
			lane->queued--;
			lane_maybe_remove(lane);
		}
		LWLockRelease(plock);
	}
	return n;
}

/*
 * DurableHostIdle
 *		Whether nothing is queued for host hostno and no lane names it (for
 *		DurableHostStartExit, which calls it under the slots lock); if so,
 *		its ring is closed: a caller that still routes to it goes elsewhere.
 */
bool
DurableHostIdle(int hostno)
{
	Ring	   *r = ring(hostno);
	bool		idle;

	LWLockAcquire(r->lock, LW_EXCLUSIVE);
	idle = r->tail == r->head && pg_atomic_read_u32(&r->lanes) == 0;
	if (idle)
		r->closed = true;
	LWLockRelease(r->lock);
	return idle;
}

/* a new process in the slot: its ring takes calls again */
void
DurableRingOpen(int hostno)
{
	Ring	   *r = ring(hostno);

	LWLockAcquire(r->lock, LW_EXCLUSIVE);
	r->closed = false;
	LWLockRelease(r->lock);
}

/*
 * DurableRingEmpty
 *		Whether a host's ring holds no request, without taking its lock: for
 *		polling.
 */
bool
DurableRingEmpty(int hostno)
{
	volatile Ring *r = ring(hostno);

	return r->head == r->tail;
}

uint64
DurableRingDepth(int hostno)
{
	volatile Ring *r = ring(hostno);

	return r->head - r->tail;
}

/* ----------------------------------------------------------------------
 * The scheduler
 * ----------------------------------------------------------------------
 */

/*
 * DurableMarkSlow
 *		A call of object ran longer than durable.busy_threshold: for
 *		SLOW_MEMORY_MS its new lanes go to extra hosts.
 */
void
DurableMarkSlow(uint64 object)
{
	LWLock	   *plock = partition_lock(object);
	SlowEntry  *e = &shared->slow[object % SLOW_SLOTS];

	LWLockAcquire(plock, LW_EXCLUSIVE);
	e->object = object;
	e->until = GetCurrentTimestamp() + (TimestampTz) SLOW_MEMORY_MS * 1000;
	LWLockRelease(plock);
}

/*
 * DurableMoveQueued
 *		Host hostno is stuck in a long call of busy_object: move the queued
 *		calls of the other objects that it holds nothing of to other hosts of
 *		its owner.  Returns how many objects moved.
 */
int
DurableMoveQueued(int hostno, uint64 busy_object)
{
	Ring	   *r = ring(hostno);
	uint64		objects[64];
	int			n = 0;
	int			moved = 0;
	int			i;
	uint64		pos;
	DurableHostState state;
	int			db;
	Oid			owner;
	int			home;

	DurableHostSlotInfo(hostno, &state, &db, &owner, &home);
	if (state != DURABLE_HOST_RUNNING)
		return 0;
	LWLockAcquire(r->lock, LW_SHARED);
	for (pos = r->tail; pos != r->head && n < lengthof(objects); pos++)
	{
		DurableRequest *e = ring_entry(hostno, pos);
		bool		seen = false;

		if (e->kind == DURABLE_REQUEST_MOVED || e->object == busy_object)
			continue;
		for (i = 0; i < n && !seen; i++)
			seen = objects[i] == e->object;
		if (!seen)
			objects[n++] = e->object;
	}
	LWLockRelease(r->lock);

	for (i = 0; i < n; i++)
	{
		LWLock	   *plock = partition_lock(objects[i]);
		Lane	   *lane;
		int			to;

		LWLockAcquire(plock, LW_EXCLUSIVE);
		lane = lane_find(objects[i]);
		if (lane != NULL && lane->hostno == hostno && lane->active == 0 && lane->queued > 0 &&
			(to = other_host(db, owner, hostno, slow_locked(objects[i]))) >= 0 &&
			move_locked(lane, to))
			moved++;
		LWLockRelease(plock);
	}
	return moved;
}

/* ----------------------------------------------------------------------
 * Waits between objects
 * ----------------------------------------------------------------------
 */

/*
 * DurableWaitCloses
 *		Would a call of host hostno's innermost object, in chain chain, that
 *		waits for object target close a cycle of waits?  Follows the waits
 *		from target: a running object waits for what its host's innermost
 *		call waits for; an object held by a host's uncommitted batch waits
 *		for that host's top-level call (unless that call waits in our chain:
 *		then the host serves the call in its mailbox);
 *		a free or merely queued object waits for nothing (the scheduler moves
 *		queued calls off a stuck host).  True if the waits come back to our
 *		host, with *path a hash of the objects the walk went through (two
 *		walks that found the same cycle give the same).  The caller records
 *		its own wait first (DurableHostSetWaitsFor), so that of two calls
 *		closing a cycle at the same moment at least one sees it.
 */
bool
DurableWaitCloses(int hostno, uint64 target, uint64 chain, uint64 *path)
{
	uint64		object = target;
	int			steps;

	*path = 0;
	for (steps = 0; object != 0 && steps < WAIT_WALK_MAX; steps++)
	{
		LWLock	   *plock = partition_lock(object);
		Lane	   *lane;
		int			h = -1;
		bool		running = false;

		*path = hash_combine64(*path, object);

		LWLockAcquire(plock, LW_SHARED);
		lane = lane_find(object);
		if (lane != NULL && lane->active > 0)
		{
			h = lane->hostno;
			running = lane_running(lane);
		}
		LWLockRelease(plock);
		if (h < 0)
			return false;
		if (running)
		{
			if (h == hostno)
				break;
			object = DurableHostWaitsFor(h);
		}
		else
		{
			/* a host waiting in our chain serves the call in its mailbox */
			if (DurableHostChain(h) != 0 && DurableHostChain(h) == chain)
				return false;
			if (h == hostno)
				break;
			if (!DurableHostBusy(h, 0, &object))
				return false;
		}
	}
	return object != 0 && steps < WAIT_WALK_MAX;
}
