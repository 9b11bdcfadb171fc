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

extern uint64 DurableReplySlotBegin(uint64 *outer);
extern void DurableReplySlotResume(uint64 outer);
extern bool DurableReplySlotWaiting(int procno, uint64 seq);
extern bool DurableReplySlotPublish(int procno, uint64 seq, const DurableReplyMsg *reply);
extern void DurableReplySlotAbandon(uint64 seq);
/* puts a request where it belongs; false: the caller enqueues it on the ring */
typedef bool (*DurableDeliverFn) (int hostno, const DurableRequest *req, uint32 *generation);

extern DurableReplyStatus DurableCallHost(int hostno, DurableRequestKind kind,
										  const DurableCallMsg *msg, uint64 chain,
										  DurableDeliverFn deliver,
										  void (*while_waiting) (void), bool poll,
										  DurableReplyMsg *reply);
extern Jsonb *DurableReplyResult(DurableReplyStatus status, const DurableReplyMsg *reply,
								 const char *class_name, const char *id, const char *method,
								 bool *isnull);
extern DurableReplyStatus DurableWaitForReply(int hostno, uint64 seq, uint32 generation,
											  bool poll, DurableReplyMsg *reply,
											  void (*while_waiting) (void));

#endif							/* DURABLE_REPLIES_H */
