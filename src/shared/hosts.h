/*-------------------------------------------------------------------------
 *
 * hosts.h
 *	  The hosts' shared state: which host processes exist, whose code each
 *	  runs, what each is busy with, their mailboxes and counters (hosts.c).
 *
 * IDENTIFICATION
 *	  src/shared/hosts.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_HOSTS_H
#define DURABLE_HOSTS_H

#include "shared/settings.h"

#include "datatype/timestamp.h"
#include "utils/dsa.h"

/*
 * One call waiting for a host: an entry of a host's ring (lanes.c) or of its
 * mailbox.  The message (messages.h) lives in the shared message area; the
 * host frees it.
 */
typedef struct DurableRequest
{
	uint64		seq;			/* the caller's reply slot sequence number */
	int32		caller;			/* pgprocno of the waiting caller, or -1 */
	int16		kind;			/* DurableRequestKind (messages.h) */
	int16		db;				/* the database of the call (set by DurableSubmit) */
	dsa_pointer message;
	uint64		chain;			/* call chain of a call between objects; 0 none */
	uint64		object;			/* DurableObjectKey of the called object */
	TimestampTz enqueued_at;	/* for the latency histogram */
} DurableRequest;

/* the life of a host slot */
typedef enum DurableHostState
{
	DURABLE_HOST_FREE = 0,		/* no host */
	DURABLE_HOST_RESERVED,		/* given to an owner; the scheduler starts its process */
	DURABLE_HOST_RUNNING,		/* its process runs */
	DURABLE_HOST_EXITING		/* its process is leaving; takes no new work */
} DurableHostState;

/* upper bounds (ms) of the call latency histogram's buckets; one more for +Inf */
#define DURABLE_LATENCY_BUCKETS 14
extern const double durable_latency_bounds_ms[DURABLE_LATENCY_BUCKETS];

/* a copy of one host's state and counters */
typedef struct DurableHostStats
{
	DurableHostState state;
	pid_t		pid;			/* 0: not running */
	int			db;				/* in which database */
	Oid			owner;			/* whose classes it runs */
	int			home;			/* which of the owner's durable.hosts; -1: an extra */
	TimestampTz busy_since;		/* its running call started then; 0: idle */
	bool		waiting;		/* that call waits for another object */
	uint64		queue_depth;
	uint64		calls;
	uint64		errors;
	uint64		batches;
	uint32		objects;
	uint64		latency[DURABLE_LATENCY_BUCKETS + 1];
	uint64		latency_sum_us;
} DurableHostStats;

extern void DurableHostsShmemRequest(void);
extern void DurableHostsShmemStartup(void);
extern bool DurableShmemReady(void);
extern int	DurableHostSlots(void);

/* the scheduler process of each database */
extern void DurableSchedulerAttach(int db);
extern void DurableSchedulerDetach(int db);
extern bool DurableSchedulerRunning(int db);
extern void DurableSchedulerUnreachable(int db);
extern bool DurableDatabaseUnreachable(int db);
extern void DurableWakeScheduler(void);
extern void DurableWakeSchedulerForWork(void);
extern bool DurableSchedulerTakeWork(int db);

/* slots: which owner's host is where */
extern int	DurableHostFind(int db, Oid owner, int home);
extern int	DurableHostReserve(int db, Oid owner, int home);
extern void DurableHostSlotInfo(int hostno, DurableHostState *state, int *db, Oid *owner,
								int *home);
extern void DurableHostFree(int hostno);
extern bool DurableHostStartExit(int hostno, bool (*idle) (int hostno));
extern void DurableHostAttach(int hostno);
extern void DurableHostDetach(int hostno);
extern void DurableHostProcess(int hostno, pid_t *pid, uint32 *generation);
extern void DurableHostNeedSlot(void);
extern bool DurableHostSlotWanted(void);

/* what a host is busy with */
extern void DurableHostSetBusy(int hostno, uint64 object);
extern void DurableHostSetIdle(int hostno);
extern void DurableHostSetWaitsFor(int hostno, uint64 object);
extern uint64 DurableHostWaitsFor(int hostno);
extern void DurableHostAskRetire(int hostno);
extern bool DurableHostRetireAsked(int hostno);
extern bool DurableHostBusy(int hostno, TimestampTz busy_before, uint64 *object);
extern TimestampTz DurableHostLastActive(int hostno);
extern void DurableHostSetPolling(int hostno, bool polling);
extern bool DurableHostPolling(int hostno);

/* waking */
extern void DurableWakeProc(int procno);
extern void DurableWakeHost(int hostno);
extern void DurableWakeHostForWork(int hostno);
extern bool DurableHostTakeWorkPending(int hostno);

/* the mailbox of a host that waits in a chain of calls between objects */
extern void DurableHostSwapChain(int hostno, uint64 chain, uint64 *old_chain);
extern uint64 DurableHostChain(int hostno);
typedef enum DurableMailboxResult
{
	DURABLE_MAILBOX_HANDED,		/* in the mailbox, the host woken */
	DURABLE_MAILBOX_FULL,		/* the host waits, but its mailbox holds another call */
	DURABLE_MAILBOX_NOT_WAITING /* the host does not wait in a call */
} DurableMailboxResult;

extern DurableMailboxResult DurableHostMailboxPut(int hostno, const DurableRequest *req,
												  uint32 *generation);
extern bool DurableHostMailboxTake(int hostno, DurableRequest *req, bool stop_waiting);

/* counters */
extern void DurableHostAddBatch(int hostno, uint64 calls, uint64 errors);
extern void DurableHostRecordLatency(int hostno, int64 us);
extern void DurableHostSetObjects(int hostno, uint32 objects);
extern void DurableHostGetStats(int hostno, DurableHostStats *stats);

#endif							/* DURABLE_HOSTS_H */
