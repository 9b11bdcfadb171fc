/*-------------------------------------------------------------------------
 *
 * host_int.h
 *	  Declarations shared by the files of the host worker.
 *
 * The host's files, from the bottom up: running.c (what runs), sandbox.c
 * (what a handler starts with and leaves), outbound.c (messages held until
 * commit), events.c (event streams), storage_cache.c, storage.c, alarm.c, sockets.c, work.c (alarms
 * and sends), versions.c (objects' versions), invoke.c (one call), call_io.c (a call in and its outcome
 * out), calls.c (calls between objects), residency.c, upkeep.c (host 0),
 * poll.c and host.c (the loop).  Each uses only files before it.
 *
 * IDENTIFICATION
 *	  src/host/host_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_HOST_INT_H
#define DURABLE_HOST_INT_H

#include <signal.h>

#include "host/host.h"
#include "shared/catalog.h"
#include "shared/hosts.h"
#include "shared/messages.h"

#include "utils/timestamp.h"

/* where a call comes from */
typedef enum DurableCallSource
{
	DURABLE_SOURCE_REQUEST = 0,	/* a ring request: a session, a host or the gateway */
	DURABLE_SOURCE_ALARM,		/* a due alarm (work.c) */
	DURABLE_SOURCE_SEND			/* a committed durable.send (work.c) */
} DurableCallSource;

/* one call as the host runs it */
typedef struct DurableCall
{
	/* from the request */
	DurableCallSource source;
	DurableRequest req;			/* DURABLE_SOURCE_REQUEST */
	int64		outbox_seq;		/* DURABLE_SOURCE_SEND */
	char	   *alarm_name;		/* DURABLE_SOURCE_ALARM */
	TimestampTz alarm_at;		/* the attempt's time, to claim exactly this alarm */
	int			attempt;		/* failed attempts before this one (alarm, send) */
	char	   *class_name;
	char	   *id;
	uint64		object;			/* DurableObjectKey(class_name, id) */
	bool		cache_valid;	/* no other host ran the object since this one */
	bool		alone;			/* a slow object's call: runs in a transaction of its own */
	bool		preemptable;	/* other objects wait for its batch: see DurableInvoke */
	bool		preempted;		/* rolled back at durable.busy_threshold, to run alone */
	char	   *method;
	Jsonb	   *args;
	/* DURABLE_REQUEST_GATEWAY: a socket frame, a socket event or an HTTP call */
	char	   *args_text;		/* args as JSON text, parsed in the call */
	int64		socket;			/* 0 for HTTP */
	uint64		token;			/* the gateway's token of an HTTP call */
	char	   *frame_id;		/* JSON id of a "call" frame, or NULL */
	/* outcome */
	bool		skipped;		/* caller left before the call started */
	DurableReplyStatus status;
	Jsonb	   *result;			/* DURABLE_REPLY_OK; NULL for SQL NULL */
	ErrorData  *error;			/* DURABLE_REPLY_ERROR */
	bool		nested;			/* served while this host waits in its chain */
	bool		connect_accept; /* $connect: the handler's answer */
	int			connect_code;
	char	   *connect_reason;
	char	   *connect_tags;	/* JSON array text */
	bool		resume;			/* $connect of a socket that resumes after resume_since */
	int64		resume_since;
	int64		resume_mark;	/* the object's newest seq before that $connect ran */
	bool		async_commit;	/* its class commits asynchronously */
	/* state migrations (versions.c, invoke.c) */
	bool		migrate_first;	/* the object must run $migrate before this call */
	bool		migrating;		/* this is that $migrate: from, to below */
	int32		migrate_from;
	int32		migrate_to;
} DurableCall;

/* running.c */
extern int	durable_host_number;	/* -1 outside host workers */
extern Oid	durable_host_owner;		/* whose classes this host runs */
extern int	durable_host_home;		/* which of the owner's home hosts; -1: an extra */
extern volatile sig_atomic_t durable_call_crossed;	/* the running call called another host */
extern int	DurableRunningDepth(void);
extern void DurableRunningPush(const char *class_name, const char *id, Oid owner,
							   int64 socket);
extern void DurableRunningPop(void);
extern void DurableCurrentObject(const char *function, const char **class_name,
								 const char **id);
extern int64 DurableCurrentSocket(void);
extern uint64 DurableChain(void);
extern void DurableChainSet(uint64 chain);
extern uint64 DurableChainStart(void);

/* held.c */
extern void DurableHeldAdd(uint64 object);
extern bool DurableHostHoldObject(uint64 object, bool *cache_valid);
extern void DurableHeldReleaseAll(void);
extern void DurableHeldReleaseAllBut(uint64 object);
extern int	DurableHeldCount(void);

/* sandbox.c */
typedef struct DurableSandbox
{
	bool		nested;			/* inside another object's handler */
	Oid			save_user;
	int			save_sec;
	int			guc_level;
	List	   *cursors;		/* nested: the cursors open before */
} DurableSandbox;

extern void DurableSandboxInitHost(void);
extern void DurableHostTransactionStart(const char *activity);
extern void DurableRunAlone(const char *activity, void (*fn) (void *), void *arg);
extern void DurableSandboxEnter(Oid owner, bool nested, DurableSandbox *sandbox);
extern void DurableSandboxLeave(DurableSandbox *sandbox);
extern void DurableSandboxEndCall(void);

/* outbound.c */
extern void DurableOutboundReset(void);
extern void DurableOutboundSetCall(DurableCall *call);
extern void DurableOutboundQueue(const DurableGatewayMsg *msg);
extern void DurableOutboundQueueAhead(List *msgs);
extern void DurableOutboundPublish(DurableCall *call);

/* events.c */
extern int64 DurableEventAppend(const char *class_name, const char *id, const Jsonb *data,
								const bytea *bin, const char *tag, int64 socket);
extern int64 DurableEventPosition(const char *class_name, const char *id);
extern bool DurableEventsPending(void);
extern void DurableEventsReplay(const char *class_name, const char *id, int64 socket,
								int64 since, int64 mark, char **tags, int ntags);

/* storage_cache.c */
extern void DurableCacheBeginCall(uint64 object, bool cache_valid);
extern bool DurableCacheGet(const char *class_name, const char *id, const text *key,
							Jsonb **value);
extern void DurableCacheFill(const char *class_name, const char *id, const text *key,
							 const Jsonb *value);
extern bool DurableCachePut(const char *class_name, const char *id, const text *key,
							const Jsonb *value);
extern int	DurableCacheDelete(const char *class_name, const char *id, const text *key);
extern void DurableCacheForget(const char *class_name, const char *id, const text *key);
extern void DurableCacheForgetObject(const char *class_name, const char *id);
extern void DurableCacheForgetHibernated(bool (*resident) (const char *, const char *));
extern bool DurableCacheFlush(void);
extern bool DurableStorageDeleteKey(const char *class_name, const char *id, text *key);

/* work.c */
extern bool DurableWorkClaim(DurableCall *call);
extern void DurableWorkFailed(DurableCall *call);
extern int	DurableWorkFetch(DurableCall *calls, int max, TimestampTz *next_wake);
extern void DurableWorkTouched(void);
extern bool DurableWorkTouchedReset(void);

/* sockets.c */
extern bool DurableSocketBeforeCall(DurableCall *call);
extern void DurableSocketAfterFailure(DurableCall *call);
extern void DurableSocketAfterCall(DurableCall *call, Jsonb *result);
extern void DurableSocketsCleanup(void);

/* versions.c */
extern bool DurableVersionCheck(const DurableClass *cls, const char *id, uint64 object,
								int32 *from);
extern void DurableVersionSet(const DurableClass *cls, const char *id, uint64 object,
							  int32 version);
extern Jsonb *DurableVersionArgs(int32 from, int32 to);

/* invoke.c */
extern void DurableInvokeInit(void);
extern void DurableInvoke(DurableCall *call, MemoryContext resultcxt);
extern void DurableInvokeBeforeCross(void);
extern Jsonb *DurableInvokeInline(const char *class_name, const char *id, const char *method,
								  Jsonb *args, bool cache_valid, bool *isnull);

/* call_io.c */
extern void DurableCallLoad(const DurableRequest *req, DurableCall *call);
extern void DurableCallPublish(DurableCall *call);
extern void DurableCallFail(DurableCall *call, int sqlerrcode, const char *message,
							const char *detail);
extern void DurableRequestRefuse(const DurableRequest *req, int sqlerrcode,
								 const char *message, const char *detail);

/* calls.c */
extern void DurableHostRefuseMailbox(void);
extern void DurableCallsReset(void);

/* residency.c */
extern void DurableResidencyTouch(const char *class_name, const char *id);
extern void DurableResidencyMaintain(bool force);
extern void DurableResidencyReset(void);
extern void DurableResidencyLeave(void);
extern bool DurableResidencyHas(const char *class_name, const char *id);

/* upkeep.c (the scheduler's) */
extern void DurableClassDirMaintain(void);

/* poll.c */
extern void DurablePollBatchDone(uint64 calls);
extern void DurablePollRequestArrived(const DurableRequest *first);
extern bool DurablePollRing(void);

#endif							/* DURABLE_HOST_INT_H */
