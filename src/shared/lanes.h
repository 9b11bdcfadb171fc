/*-------------------------------------------------------------------------
 *
 * lanes.h
 *	  Where calls wait and which host runs each object: the hosts' rings and
 *	  the objects' lanes (lanes.c).
 *
 * IDENTIFICATION
 *	  src/shared/lanes.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_LANES_H
#define DURABLE_LANES_H

#include "shared/hosts.h"

/* kind of a ring entry that was handed to another host (skipped) */
#define DURABLE_REQUEST_MOVED (-1)

typedef enum DurableSubmitResult
{
	DURABLE_SUBMIT_OK,
	DURABLE_SUBMIT_FULL,		/* the host's ring, or the lane table, is full */
	DURABLE_SUBMIT_NO_HOST		/* every host slot is taken (DurableHostNeedSlot was called) */
} DurableSubmitResult;

extern void DurableLanesShmemRequest(void);
extern void DurableLanesShmemStartup(void);

/* callers: sessions, the gateway, hosts calling other objects */
extern DurableSubmitResult DurableSubmit(int db, Oid owner, uint32 shard, DurableRequest *req,
										 int *hostno, uint32 *generation, bool *was_polling);
extern DurableMailboxResult DurableSubmitToWaitingHost(DurableRequest *req, int *hostno,
													   uint32 *generation);

/* hosts */
extern bool DurableTake(int hostno, bool alone_ok, DurableRequest *req, bool *alone,
						bool *cache_valid);
extern bool DurableClaim(int hostno, uint64 object, bool *cache_valid);
extern void DurableRelease(uint64 object);
extern void DurableSetRunning(uint64 object, bool running);
extern int	DurableDrain(int hostno, DurableRequest *reqs, int max);
extern bool DurableHostIdle(int hostno);
extern void DurableRingOpen(int hostno);
extern int	DurableReserveHost(int db, Oid owner, int home);
extern bool DurableRingEmpty(int hostno);
extern uint64 DurableRingDepth(int hostno);

/* the scheduler */
extern int	DurableMoveQueued(int hostno, uint64 busy_object);
extern void DurableMarkSlow(uint64 object);

/* waits between objects */
extern bool DurableWaitCloses(int hostno, uint64 target, uint64 chain, uint64 *path);

#endif							/* DURABLE_LANES_H */
