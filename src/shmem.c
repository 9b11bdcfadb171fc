/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory: host rings, per-backend reply slots, message area.
 *
 * Callers (router.c) put requests on the ring of the host that owns the
 * object and wait on their latch; hosts (host.c) take requests from their
 * ring and publish replies into the caller's reply slot, found by pgprocno.
 * Request and reply payloads live in a DSA area created in place in the main
 * shared memory segment; it grows by DSM segments when payloads are large,
 * so nothing below durable.max_message_bytes is truncated or refused.
 *
 * Every reply slot has a slot-global sequence number: a host publishes a
 * reply only if the caller still waits for exactly that call, so a cancelled
 * caller's late reply is dropped instead of being read by its next call or by
 * the next backend that takes the same pgprocno.
 *
 * Shared memory holds plain data only; it is re-initialised on crash restart
 * (generations start again at 0, so they are compared with !=).
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"
#include "gateway.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "access/twophase.h"
#include "utils/memutils.h"

#define DURABLE_DSA_INITIAL_SIZE (4 * 1024 * 1024)

const double durable_latency_bounds_ms[DURABLE_LATENCY_BUCKETS] =
{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};
#define DURABLE_PART_NULL		PG_UINT32_MAX

typedef struct DurableReplySlot
{
	slock_t		mutex;
	uint64		last_seq;		/* last sequence number handed out */
	uint64		waiting_seq;	/* call the owner waits for; 0 = none */
	uint64		done_seq;		/* call whose reply is in "reply" */
	int32		status;			/* DurableReplyStatus of that reply */
	dsa_pointer reply;			/* DurableParts, or InvalidDsaPointer */
} DurableReplySlot;

/* a message on its way to the gateway; a singly linked list in the DSA area */
typedef struct GatewayNode
{
	dsa_pointer next;
	dsa_pointer message;
} GatewayNode;

typedef struct DurableShared
{
	int			nhosts;
	int			ring_capacity;
	int			nslots;
	int			dsa_tranche;
	DurableHostShared hosts[DURABLE_MAX_HOSTS];
	/* messages for the gateway, oldest at head */
	slock_t		gateway_mutex;
	int64		gateway_epoch;	/* start time of the running gateway, 0 none */
	dsa_pointer gateway_head;
	dsa_pointer gateway_tail;
	pg_atomic_uint32 classes_dirty; /* classes changed: host 0 tells the gateway */
	pg_atomic_uint64 storage_epoch; /* bumped by commits that wrote storage
									 * outside the hosts */
	pg_atomic_uint64 settings_epoch;	/* bumped by commits of ALTER ROLE/DATABASE
										 * ... SET */
} DurableShared;

static DurableShared *durable_shared = NULL;
static DurableRequest *durable_rings = NULL;
static DurableReplySlot *durable_slots = NULL;
static void *durable_dsa_place = NULL;
static dsa_area *durable_area = NULL;

static int
slot_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static int
ring_capacity(void)
{
	/* every backend can have one call waiting, with room for other sources */
	return slot_count() + 64;
}

static Size
shared_size(Size *rings_off, Size *slots_off, Size *dsa_off)
{
	Size		size = MAXALIGN(sizeof(DurableShared));

	*rings_off = size;
	size = add_size(size, MAXALIGN(mul_size(mul_size(durable_hosts, ring_capacity()),
											sizeof(DurableRequest))));
	*slots_off = size;
	size = add_size(size, MAXALIGN(mul_size(slot_count(), sizeof(DurableReplySlot))));
	*dsa_off = size;
	size = add_size(size, DURABLE_DSA_INITIAL_SIZE);
	return size;
}

/*
 * DurableShmemRequest
 *		shmem_request_hook: reserve our shared memory.  MaxBackends is known here.
 */
void
DurableShmemRequest(void)
{
	Size		a,
				b,
				c;

	RequestAddinShmemSpace(shared_size(&a, &b, &c));
}

/*
 * DurableShmemStartup
 *		shmem_startup_hook: create or attach our shared memory.  Runs in the
 *		postmaster at start and after every crash restart.
 */
void
DurableShmemStartup(void)
{
	bool		found;
	Size		rings_off,
				slots_off,
				dsa_off;
	Size		size = shared_size(&rings_off, &slots_off, &dsa_off);
	char	   *base;

	durable_shared = NULL;
	durable_area = NULL;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	base = ShmemInitStruct("pg_durable_objects", size, &found);
	durable_shared = (DurableShared *) base;
	durable_rings = (DurableRequest *) (base + rings_off);
	durable_slots = (DurableReplySlot *) (base + slots_off);
	durable_dsa_place = base + dsa_off;

	if (!found)
	{
		int			i;
		int			j;
		dsa_area   *area;

		memset(base, 0, dsa_off);
		SpinLockInit(&durable_shared->gateway_mutex);
		durable_shared->gateway_head = InvalidDsaPointer;
		durable_shared->gateway_tail = InvalidDsaPointer;
		pg_atomic_init_u32(&durable_shared->classes_dirty, 1);
		pg_atomic_init_u64(&durable_shared->storage_epoch, 0);
		pg_atomic_init_u64(&durable_shared->settings_epoch, 0);
		durable_shared->nhosts = durable_hosts;
		durable_shared->ring_capacity = ring_capacity();
		durable_shared->nslots = slot_count();
		durable_shared->dsa_tranche = LWLockNewTrancheId();
		for (i = 0; i < DURABLE_MAX_HOSTS; i++)
		{
			DurableHostShared *host = &durable_shared->hosts[i];

			SpinLockInit(&host->mutex);
			pg_atomic_init_u64(&host->calls, 0);
			pg_atomic_init_u64(&host->errors, 0);
			pg_atomic_init_u64(&host->batches, 0);
			pg_atomic_init_u32(&host->objects, 0);
			for (j = 0; j <= DURABLE_LATENCY_BUCKETS; j++)
				pg_atomic_init_u64(&host->latency[j], 0);
			pg_atomic_init_u64(&host->latency_sum_us, 0);
		}
		for (i = 0; i < durable_shared->nslots; i++)
		{
			SpinLockInit(&durable_slots[i].mutex);
			durable_slots[i].reply = InvalidDsaPointer;
		}
		area = dsa_create_in_place(durable_dsa_place, DURABLE_DSA_INITIAL_SIZE,
								   durable_shared->dsa_tranche, NULL);
		dsa_pin(area);
		dsa_detach(area);
	}
	LWLockRelease(AddinShmemInitLock);
	LWLockRegisterTranche(durable_shared->dsa_tranche, "pg_durable_objects");
}

/*
 * DurableShmemReady
 *		True when the library was preloaded and our shared memory exists.
 */
bool
DurableShmemReady(void)
{
	return durable_shared != NULL;
}

DurableHostShared *
DurableHost(int hostno)
{
	Assert(hostno >= 0 && hostno < durable_shared->nhosts);
	return &durable_shared->hosts[hostno];
}

int
DurableHostCount(void)
{
	return durable_shared->nhosts;
}

static dsa_area *
get_area(void)
{
	if (durable_area == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		LWLockRegisterTranche(durable_shared->dsa_tranche, "pg_durable_objects");
		durable_area = dsa_attach_in_place(durable_dsa_place, NULL);
		dsa_pin_mapping(durable_area);
		MemoryContextSwitchTo(old);
	}
	return durable_area;
}

/*
 * DurableMakeParts
 *		Point parts at n C strings (NULL: a NULL part).
 */
void
DurableMakeParts(DurableParts *parts, const char *const *data, int n)
{
	int			i;

	Assert(n <= DURABLE_MAX_PARTS);
	memset(parts, 0, sizeof(*parts));
	parts->nparts = n;
	for (i = 0; i < n; i++)
	{
		parts->data[i] = data[i];
		parts->isnull[i] = (data[i] == NULL);
		parts->len[i] = data[i] ? strlen(data[i]) : 0;
	}
}

/*
 * DurableMessageStore
 *		Copy parts into the shared area.  Returns InvalidDsaPointer when shared
 *		memory is exhausted, so that hosts can use it where they must not throw.
 */
dsa_pointer
DurableMessageStore(const DurableParts *parts)
{
	Size		size = sizeof(uint32) * (1 + parts->nparts);
	dsa_pointer dp;
	char	   *p;
	int			i;

	Assert(parts->nparts <= DURABLE_MAX_PARTS);
	for (i = 0; i < parts->nparts; i++)
		if (!parts->isnull[i])
			size += parts->len[i];

	dp = dsa_allocate_extended(get_area(), size, DSA_ALLOC_NO_OOM | DSA_ALLOC_HUGE);
	if (!DsaPointerIsValid(dp))
		return InvalidDsaPointer;

	p = dsa_get_address(get_area(), dp);
	((uint32 *) p)[0] = parts->nparts;
	for (i = 0; i < parts->nparts; i++)
		((uint32 *) p)[i + 1] = parts->isnull[i] ? DURABLE_PART_NULL : parts->len[i];
	p += sizeof(uint32) * (1 + parts->nparts);
	for (i = 0; i < parts->nparts; i++)
	{
		if (parts->isnull[i])
			continue;
		memcpy(p, parts->data[i], parts->len[i]);
		p += parts->len[i];
	}
	return dp;
}

/*
 * view_message
 *		Point parts at the parts of a stored message, in place (not
 *		NUL-terminated).  Allocates nothing.
 */
static void
view_message(char *p, DurableParts *parts)
{
	uint32	   *lens = (uint32 *) p;
	int			i;

	memset(parts, 0, sizeof(*parts));
	parts->nparts = Min(lens[0], DURABLE_MAX_PARTS);
	p += sizeof(uint32) * (1 + lens[0]);
	for (i = 0; i < parts->nparts; i++)
	{
		if (lens[i + 1] == DURABLE_PART_NULL)
		{
			parts->isnull[i] = true;
			continue;
		}
		parts->data[i] = p;
		parts->len[i] = lens[i + 1];
		p += lens[i + 1];
	}
}

/*
 * DurableMessageLoad
 *		Copy a stored message into palloc'd memory of the current context and
 *		free it in the shared area.  Every part is NUL-terminated.
 */
void
DurableMessageLoad(dsa_pointer message, DurableParts *parts)
{
	int			i;

	view_message(dsa_get_address(get_area(), message), parts);
	for (i = 0; i < parts->nparts; i++)
	{
		char	   *copy;

		if (parts->isnull[i])
			continue;
		copy = palloc(parts->len[i] + 1);
		memcpy(copy, parts->data[i], parts->len[i]);
		copy[parts->len[i]] = '\0';
		parts->data[i] = copy;
	}
	dsa_free(get_area(), message);
}

/*
 * DurableShmemAttachArea
 *		Attach the shared message area now (it is otherwise attached on first
 *		use), for processes that must not allocate later, like the gateway.
 */
void
DurableShmemAttachArea(void)
{
	(void) get_area();
}

void
DurableMessageFree(dsa_pointer message)
{
	if (DsaPointerIsValid(message))
		dsa_free(get_area(), message);
}

static DurableRequest *
ring_entry(int hostno, uint64 pos)
{
	return &durable_rings[(Size) hostno * durable_shared->ring_capacity +
						  pos % durable_shared->ring_capacity];
}

/*
 * DurableEnqueue
 *		Append a request to a host's ring; false if the ring is full.  Returns
 *		the host's generation so the caller can notice the host exiting.
 */
bool
DurableEnqueue(int hostno, const DurableRequest *req, uint32 *generation)
{
	DurableHostShared *host = DurableHost(hostno);
	bool		ok = false;
	int			procno = -1;

	SpinLockAcquire(&host->mutex);
	if (host->head - host->tail < (uint64) durable_shared->ring_capacity)
	{
		DurableRequest *entry = ring_entry(hostno, host->head);

		*entry = *req;
		entry->enqueued_at = GetCurrentTimestamp();
		host->head++;
		ok = true;
	}
	*generation = host->generation;
	if (host->pid != 0)
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
	DurableHostShared *host = DurableHost(hostno);
	int			n = 0;

	SpinLockAcquire(&host->mutex);
	while (n < max && host->tail != host->head)
	{
		reqs[n++] = *ring_entry(hostno, host->tail);
		host->tail++;
	}
	SpinLockRelease(&host->mutex);
	return n;
}

static DurableReplySlot *
my_slot(void)
{
	return &durable_slots[MyProc->pgprocno];
}

/*
 * DurableReplySlotBegin
 *		Start waiting for a new call; returns its sequence number.  Drops any
 *		reply left over from a call this slot's previous user abandoned.
 *		*outer gets the call the slot waited for until now (0: none), which a
 *		host in a chain of nested calls waits for again afterwards
 *		(DurableReplySlotResume): nested waits end in LIFO order.
 */
uint64
DurableReplySlotBegin(uint64 *outer)
{
	DurableReplySlot *slot = my_slot();
	dsa_pointer stale;
	uint64		seq;

	SpinLockAcquire(&slot->mutex);
	*outer = slot->waiting_seq;
	stale = slot->reply;
	slot->reply = InvalidDsaPointer;
	seq = ++slot->last_seq;
	slot->waiting_seq = seq;
	slot->done_seq = 0;
	slot->status = DURABLE_REPLY_NONE;
	SpinLockRelease(&slot->mutex);

	DurableMessageFree(stale);
	return seq;
}

/*
 * DurableReplySlotResume
 *		A nested wait ended: wait for the outer call again.
 */
void
DurableReplySlotResume(uint64 outer)
{
	DurableReplySlot *slot = my_slot();

	if (outer == 0)
		return;
	SpinLockAcquire(&slot->mutex);
	slot->waiting_seq = outer;
	SpinLockRelease(&slot->mutex);
}

/*
 * DurableReplySlotWaiting
 *		Whether the owner of slot procno still waits for call seq.  Hosts skip
 *		calls whose caller already gave up.
 */
bool
DurableReplySlotWaiting(int procno, uint64 seq)
{
	DurableReplySlot *slot = &durable_slots[procno];
	bool		waiting;

	SpinLockAcquire(&slot->mutex);
	waiting = (slot->waiting_seq == seq && slot->done_seq != seq);
	SpinLockRelease(&slot->mutex);
	return waiting;
}

/*
 * DurableReplySlotPublish
 *		Hand a reply to the caller waiting in slot procno for call seq, and wake
 *		it.  Never throws: if shared memory is exhausted the caller gets the
 *		status without payload.  Returns false if the caller no longer waits.
 */
bool
DurableReplySlotPublish(int procno, uint64 seq, DurableReplyStatus status,
						const DurableParts *parts)
{
	DurableReplySlot *slot = &durable_slots[procno];
	dsa_pointer dp = parts ? DurableMessageStore(parts) : InvalidDsaPointer;
	bool		delivered = false;

	/* out of shared memory: the status still arrives, without its payload */

	SpinLockAcquire(&slot->mutex);
	if (slot->waiting_seq == seq && slot->done_seq != seq)
	{
		slot->done_seq = seq;
		slot->status = status;
		slot->reply = dp;
		delivered = true;
	}
	SpinLockRelease(&slot->mutex);

	if (delivered)
		DurableWakeProc(procno);
	else
		DurableMessageFree(dp);
	return delivered;
}

/*
 * DurableReplySlotTake
 *		If the reply to call seq arrived, load it into parts (current memory
 *		context), end the wait and return its status; else DURABLE_REPLY_NONE.
 */
DurableReplyStatus
DurableReplySlotTake(uint64 seq, DurableParts *parts)
{
	DurableReplySlot *slot = my_slot();
	DurableReplyStatus status = DURABLE_REPLY_NONE;
	dsa_pointer dp = InvalidDsaPointer;

	SpinLockAcquire(&slot->mutex);
	if (slot->done_seq == seq)
	{
		status = slot->status;
		dp = slot->reply;
		slot->reply = InvalidDsaPointer;
		slot->waiting_seq = 0;
	}
	SpinLockRelease(&slot->mutex);

	memset(parts, 0, sizeof(*parts));
	if (DsaPointerIsValid(dp))
		DurableMessageLoad(dp, parts);
	return status;
}

/*
 * DurableReplySlotReady
 *		Whether the reply to call seq has arrived, without taking the slot's
 *		lock: for polling.  DurableReplySlotTake takes it.
 */
bool
DurableReplySlotReady(uint64 seq)
{
	volatile DurableReplySlot *slot = my_slot();

	return slot->done_seq == seq;
}

/*
 * DurableRingEmpty
 *		Whether a host's ring holds no request, without taking its lock: for
 *		polling.
 */
bool
DurableRingEmpty(int hostno)
{
	volatile DurableHostShared *host = DurableHost(hostno);

	return host->head == host->tail;
}

/*
 * DurableReplySlotAbandon
 *		The caller stops waiting for call seq (error, cancel): a host that has
 *		not started it yet skips it, and a late reply is dropped.
 */
void
DurableReplySlotAbandon(uint64 seq)
{
	DurableReplySlot *slot = my_slot();
	dsa_pointer dp = InvalidDsaPointer;

	SpinLockAcquire(&slot->mutex);
	if (slot->waiting_seq == seq)
	{
		slot->waiting_seq = 0;
		dp = slot->reply;
		slot->reply = InvalidDsaPointer;
	}
	SpinLockRelease(&slot->mutex);
	DurableMessageFree(dp);
}

void
DurableWakeProc(int procno)
{
	SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/*
 * DurableClassesDirty / DurableClassesTakeDirty
 *		Classes changed since host 0 last told the gateway (classdir.c).
 */
void
DurableClassesDirty(void)
{
	pg_atomic_write_u32(&durable_shared->classes_dirty, 1);
}

bool
DurableClassesTakeDirty(void)
{
	return pg_atomic_exchange_u32(&durable_shared->classes_dirty, 0) != 0;
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
	DurableGatewayShared *gw = DurableGateway();
	dsa_area   *area = get_area();
	dsa_pointer dp;
	dsa_pointer np;
	GatewayNode *node;

	if (gw == NULL || gw->pid == 0)
		return false;
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

	SpinLockAcquire(&durable_shared->gateway_mutex);
	if (DsaPointerIsValid(durable_shared->gateway_tail))
		((GatewayNode *) dsa_get_address(area, durable_shared->gateway_tail))->next = np;
	else
		durable_shared->gateway_head = np;
	durable_shared->gateway_tail = np;
	SpinLockRelease(&durable_shared->gateway_mutex);
	DurableGatewayWake();
	return true;
}

/*
 * DurableGatewayDrain
 *		In the gateway: hand up to max queued messages, oldest first, to fn and
 *		free them.  The parts point into shared memory, valid only during the
 *		call, and are not NUL-terminated.  Allocates nothing and never throws,
 *		so it is safe inside an lws callback.  Returns how many were handled.
 */
int
DurableGatewayDrain(DurableGatewayMessageFn fn, void *arg, int max)
{
	dsa_area   *area = get_area();
	int			n = 0;

	while (n < max)
	{
		dsa_pointer np;
		GatewayNode *node;
		DurableParts parts;

		SpinLockAcquire(&durable_shared->gateway_mutex);
		np = durable_shared->gateway_head;
		if (DsaPointerIsValid(np))
		{
			node = dsa_get_address(area, np);
			durable_shared->gateway_head = node->next;
			if (!DsaPointerIsValid(node->next))
				durable_shared->gateway_tail = InvalidDsaPointer;
		}
		SpinLockRelease(&durable_shared->gateway_mutex);
		if (!DsaPointerIsValid(np))
			break;

		node = dsa_get_address(area, np);
		view_message(dsa_get_address(area, node->message), &parts);
		fn(&parts, arg);
		dsa_free(area, node->message);
		dsa_free(area, np);
		n++;
	}
	return n;
}

/*
 * DurableGatewayEpoch / DurableSetGatewayEpoch
 *		The start time of the running gateway; sockets rows of another epoch
 *		belong to a gateway that is gone.
 */
int64
DurableGatewayEpoch(void)
{
	int64		epoch;

	SpinLockAcquire(&durable_shared->gateway_mutex);
	epoch = durable_shared->gateway_epoch;
	SpinLockRelease(&durable_shared->gateway_mutex);
	return epoch;
}

void
DurableSetGatewayEpoch(int64 epoch)
{
	SpinLockAcquire(&durable_shared->gateway_mutex);
	durable_shared->gateway_epoch = epoch;
	SpinLockRelease(&durable_shared->gateway_mutex);
}

/*
 * DurableStorageEpoch / DurableStorageEpochBump
 *		A counter moved by every commit that wrote durable._storage outside
 *		the hosts: the hosts' storage caches forget what they knew.
 */
uint64
DurableStorageEpoch(void)
{
	return pg_atomic_read_u64(&durable_shared->storage_epoch);
}

void
DurableStorageEpochBump(void)
{
	if (durable_shared)
		pg_atomic_fetch_add_u64(&durable_shared->storage_epoch, 1);
}

/*
 * DurableSettingsEpoch / DurableSettingsEpochBump
 *		A counter moved by every commit of ALTER ROLE/DATABASE ... SET: hosts
 *		read the settings of class owners again (sandbox.c).
 */
uint64
DurableSettingsEpoch(void)
{
	return pg_atomic_read_u64(&durable_shared->settings_epoch);
}

void
DurableSettingsEpochBump(void)
{
	if (durable_shared)
		pg_atomic_fetch_add_u64(&durable_shared->settings_epoch, 1);
}
