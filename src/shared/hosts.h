/*-------------------------------------------------------------------------
 *
 * hosts.h
 *	  The hosts' shared state: who runs, their request rings, their waits in
 *	  chains of calls, their counters (hosts.c).
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
 * One entry of a host's ring: a call for one of its objects.  The message
 * (messages.h) lives in the shared message area; the host frees it.
 */
typedef struct DurableRequest
{
	uint64		seq;			/* the caller's reply slot sequence number */
	int32		caller;			/* pgprocno of the waiting caller, or -1 */
	int32		kind;			/* DurableRequestKind (messages.h) */
	dsa_pointer message;
	uint64		chain;			/* call chain of a call between objects; 0 none */
	TimestampTz enqueued_at;	/* for the latency histogram */
} DurableRequest;

/* upper bounds (ms) of the call latency histogram's buckets; one more for +Inf */
#define DURABLE_LATENCY_BUCKETS 14
extern const double durable_latency_bounds_ms[DURABLE_LATENCY_BUCKETS];

/* a copy of one host's counters */
typedef struct DurableHostStats
{
	pid_t		pid;			/* 0: not running */
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
extern int	DurableHostCount(void);

/* a host's life */
extern void DurableHostAttach(int hostno);
extern void DurableHostDetach(int hostno);
extern void DurableHostState(int hostno, pid_t *pid, uint32 *generation);

/* its ring */
extern bool DurableEnqueue(int hostno, const DurableRequest *req, uint32 *generation);
extern int	DurableDequeue(int hostno, DurableRequest *reqs, int max);
extern bool DurableRingEmpty(int hostno);
extern void DurableHostSetPolling(int hostno, bool polling);
extern bool DurableHostPolling(int hostno);

/* waking */
extern void DurableWakeProc(int procno);
extern void DurableWakeHostForWork(int hostno);
extern bool DurableHostTakeWorkPending(int hostno);

/* waits in chains of calls between objects, and the mailbox of a waiting host */
extern void DurableHostSwapWait(int hostno, int waiting_for, uint64 chain,
								int *old_waiting_for, uint64 *old_chain);
extern void DurableHostWait(int hostno, int *waiting_for, uint64 *chain);
extern bool DurableHostMailboxPut(int hostno, const DurableRequest *req, uint32 *generation);
extern bool DurableHostMailboxTake(int hostno, DurableRequest *req, bool stop_waiting);

/* counters */
extern void DurableHostAddBatch(int hostno, uint64 calls, uint64 errors);
extern void DurableHostRecordLatency(int hostno, int64 us);
extern void DurableHostSetObjects(int hostno, uint32 objects);
extern void DurableHostGetStats(int hostno, DurableHostStats *stats);

#endif							/* DURABLE_HOSTS_H */
