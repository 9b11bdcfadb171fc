/*-------------------------------------------------------------------------
 *
 * replies.h
 *	  Reply slots: where a waiting caller gets the reply to its call
 *	  (replies.c).
 *
 * IDENTIFICATION
 *	  src/shared/replies.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_REPLIES_H
#define DURABLE_REPLIES_H

#include "shared/hosts.h"
#include "shared/messages.h"

extern void DurableRepliesShmemRequest(void);
extern void DurableRepliesShmemStartup(void);

/* the object a call goes to */
typedef struct DurableTarget
{
	int			db;				/* its database (durable_db of the caller) */
	Oid			owner;			/* its class owner */
	uint32		shard;			/* DurableObjectShard */
	uint64		object;			/* DurableObjectKey */
} DurableTarget;

extern uint64 DurableReplySlotBegin(uint64 *outer);
extern void DurableReplySlotResume(uint64 outer);
extern bool DurableReplySlotStart(int procno, uint64 seq);
extern bool DurableReplySlotPublish(int procno, uint64 seq, const DurableReplyMsg *reply);
extern void DurableReplySlotAbandon(uint64 seq);

extern DurableReplyStatus DurableCallObject(const DurableTarget *target, DurableRequestKind kind,
											const DurableCallMsg *msg, uint64 chain,
											bool in_chain, void (*while_waiting) (void),
											bool poll, int start_limit_ms,
											DurableReplyMsg *reply);
extern Jsonb *DurableReplyResult(DurableReplyStatus status, const DurableReplyMsg *reply,
								 const char *class_name, const char *id, const char *method,
								 bool *isnull);
#endif							/* DURABLE_REPLIES_H */
