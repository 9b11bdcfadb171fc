/*-------------------------------------------------------------------------
 *
 * pg_durable_objects.h
 *	  Declarations shared by the modules of pg_durable_objects.
 *
 * The extension runs durable objects inside background workers ("hosts").
 * Backends route calls to a host through shared memory (shmem.c), hosts run
 * them in batches (host.c, invoke.c) against the storage tables (storage.c),
 * using class metadata cached per process (classes.c).
 *
 * IDENTIFICATION
 *	  src/pg_durable_objects.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_DURABLE_OBJECTS_H
#define PG_DURABLE_OBJECTS_H

#include "postgres.h"

#include "fmgr.h"
#include "port/atomics.h"
#include "storage/spin.h"
#include "utils/dsa.h"
#include "executor/spi.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#define DURABLE_EXTENSION_NAME	"pg_durable_objects"
#define DURABLE_SCHEMA			"durable"
#define DURABLE_MAX_HOSTS		64
#define DURABLE_MAX_CLASS_BYTES 63
#define DURABLE_MAX_ID_BYTES	512
#define DURABLE_MAX_KEY_BYTES	2048

/* settings (pg_durable_objects.c) */
extern char *durable_database;
extern int	durable_hosts;
extern int	durable_max_batch;
extern int	durable_call_timeout;
extern int	durable_max_message_bytes;
extern int	durable_idle_timeout;
extern int	durable_cache_size;
extern int	durable_max_attempts;
extern int	durable_retry_delay;
extern int	durable_max_classes_per_role;

/*
 * Shared memory (shmem.c).
 *
 * A message is a list of byte strings ("parts") copied into the shared DSA
 * area; requests and replies both travel this way, so one pair of functions
 * serves both.  A NULL part is kept distinct from an empty one.
 */
#define DURABLE_MAX_PARTS 8

typedef struct DurableParts
{
	int			nparts;
	const char *data[DURABLE_MAX_PARTS];
	uint32		len[DURABLE_MAX_PARTS];
	bool		isnull[DURABLE_MAX_PARTS];
} DurableParts;

/* what a queued request asks for */
typedef enum DurableRequestKind
{
	DURABLE_REQUEST_CALL = 1,	/* parts: class, id, method, args (jsonb) */
	DURABLE_REQUEST_GATEWAY		/* parts: class, id, method, args (jsonb text),
								 * socket, token, frame id (json text or NULL) */
} DurableRequestKind;

/* one entry of a host's inbound ring */
typedef struct DurableRequest
{
	uint64		seq;			/* caller's slot sequence number */
	int32		caller;			/* pgprocno of the waiting caller, or -1 */
	int32		kind;			/* DurableRequestKind */
	dsa_pointer message;		/* DurableParts in the DSA area */
	uint64		chain;			/* call chain of a nested call; 0 for a top-level call */
	TimestampTz enqueued_at;	/* for the latency histogram */
} DurableRequest;

/* upper bounds (ms) of the call latency histogram buckets; one more for +Inf */
#define DURABLE_LATENCY_BUCKETS 14
extern const double durable_latency_bounds_ms[DURABLE_LATENCY_BUCKETS];

/* reply status carried in a reply slot */
typedef enum DurableReplyStatus
{
	DURABLE_REPLY_NONE = 0,
	DURABLE_REPLY_OK,			/* parts: result jsonb (NULL part: SQL NULL) */
	DURABLE_REPLY_ERROR			/* parts: sqlstate, message, detail, hint, context */
} DurableReplyStatus;

/* per-host state in shared memory */
typedef struct DurableHostShared
{
	slock_t		mutex;			/* protects pid, procno, generation and the ring */
	pid_t		pid;			/* 0 while the host is not running */
	int			procno;			/* host's pgprocno, for its latch */
	uint32		generation;		/* bumped each time a host exits */
	bool		work_pending;	/* sends committed for it since it last looked */
	volatile bool polling;		/* idle but awake, watching its ring (host.c) */
	int			waiting_for;	/* 1 + host it waits on in a nested call; 0 none */
	uint64		waiting_chain;	/* the call chain of that wait */
	bool		mailbox_full;	/* a call of waiting_chain handed to it directly */
	DurableRequest mailbox;
	uint64		head;			/* next ring position to write */
	uint64		tail;			/* next ring position to read */
	pg_atomic_uint64 calls;
	pg_atomic_uint64 errors;
	pg_atomic_uint64 batches;
	pg_atomic_uint32 objects;	/* objects in memory */
	/* latency of requests from enqueue to answer: counts per bucket, sum in us */
	pg_atomic_uint64 latency[DURABLE_LATENCY_BUCKETS + 1];
	pg_atomic_uint64 latency_sum_us;
} DurableHostShared;

extern bool DurableShmemReady(void);
extern void DurableShmemRequest(void);
extern void DurableShmemStartup(void);
extern DurableHostShared *DurableHost(int hostno);
extern int	DurableHostCount(void);
extern void DurableMakeParts(DurableParts *parts, const char *const *data, int n);
extern dsa_pointer DurableMessageStore(const DurableParts *parts);
extern void DurableMessageLoad(dsa_pointer message, DurableParts *parts);
extern void DurableMessageFree(dsa_pointer message);
extern void DurableShmemAttachArea(void);
extern bool DurableEnqueue(int hostno, const DurableRequest *req, uint32 *generation);
extern int	DurableDequeue(int hostno, DurableRequest *reqs, int max);
extern uint64 DurableReplySlotBegin(uint64 *outer);
extern void DurableReplySlotResume(uint64 outer);
extern bool DurableReplySlotWaiting(int procno, uint64 seq);
extern bool DurableReplySlotPublish(int procno, uint64 seq, DurableReplyStatus status,
									const DurableParts *parts);
extern DurableReplyStatus DurableReplySlotTake(uint64 seq, DurableParts *parts);
extern void DurableReplySlotAbandon(uint64 seq);
extern void DurableWakeProc(int procno);
extern bool DurableRingEmpty(int hostno);
extern bool DurableReplySlotReady(uint64 seq);

/*
 * The class directory: what the gateway (which has no database connection)
 * needs to know about each class.  Host 0 reads it from durable._classes and
 * sends it to the gateway as a message whenever classes changed or a new
 * gateway started (classdir.c); the gateway keeps its own copy
 * (gateway_classes.c) and copies entries out as DurableClassEntry.
 */
#define DURABLE_MAX_AUTO_RESPONSE 255

typedef struct DurableClassEntry
{
	char		name[DURABLE_MAX_CLASS_BYTES + 1];
	bool		websocket;
	bool		http;
	bool		has_auto_response;
	char		auto_request[DURABLE_MAX_AUTO_RESPONSE + 1];
	char		auto_response[DURABLE_MAX_AUTO_RESPONSE + 1];
} DurableClassEntry;

/* flags of a class in the directory message */
#define DURABLE_CLASS_WEBSOCKET		0x01
#define DURABLE_CLASS_HTTP			0x02
#define DURABLE_CLASS_AUTO_RESPONSE 0x04

extern void DurableClassesDirty(void);
extern bool DurableClassesTakeDirty(void);
extern void DurableClassDirMaintain(void);
extern void DurableClassDirMarkDirty(void);

/* messages from hosts to the gateway (shmem.c), drained by the gateway */
typedef void (*DurableGatewayMessageFn) (const DurableParts *message, void *arg);
extern bool DurableGatewayPush(const DurableParts *message);
extern int	DurableGatewayDrain(DurableGatewayMessageFn fn, void *arg, int max);

/* routing (router.c) */
extern uint32 DurableObjectShard(const char *class_name, const char *id);
extern int	DurableHostFor(const char *class_name, const char *id);
extern void DurableCheckCallArgs(FunctionCallInfo fcinfo, char **class_name, char **id,
								 char **method, Jsonb **args);
extern void DurableCheckReady(void);
extern void DurableCheckMessageSize(Size size, const char *what);
extern void DurableCheckId(const char *id);

/* class catalog and access to the extension's tables (catalog.c) */
typedef struct DurableClass
{
	char		name[NAMEDATALEN];	/* hash key */
	bool		valid;			/* false: reload on next lookup */
	Oid			handler;		/* InvalidOid: the handler function is gone */
	Oid			owner;			/* owner of the handler = owner of the class */
	bool		websocket;
	bool		http;
	bool		async_commit;	/* durability: async */
} DurableClass;

typedef struct DurableSpiState
{
	Oid			save_user;
	int			save_sec;
	int			guc_level;		/* our search_path's GUC nesting level */
} DurableSpiState;

extern bool DurableClassLookup(const char *name, DurableClass *out, bool missing_ok);
extern void DurableClassesChanged(void);
extern void DurableCheckClassName(const char *name);
extern bool DurableExtensionPresent(void);
extern int	DurableSearchPathPush(void);
extern void DurableSearchPathPop(int level);
extern void DurableSpiBegin(DurableSpiState *state);
extern void DurableSpiEnd(DurableSpiState *state);
extern SPIPlanPtr DurableSpiPlan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes);
extern void DurableSpiExecute(SPIPlanPtr plan, Datum *values, const char *nulls,
							  bool read_only, int expected);

/* a statement prepared once per process on first use, see DurableSpiRun */
typedef struct DurableStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[8];
} DurableStatement;

extern void DurableSpiRun(const DurableStatement *stmt, SPIPlanPtr *plan, Datum *values,
						  const char *nulls, int expected);

#if PG_VERSION_NUM >= 160000
#define DurableProcOwnercheck(proc, role) \
	object_ownercheck(ProcedureRelationId, (proc), (role))
#define DurableProcAclcheck(proc, role, mode) \
	object_aclcheck(ProcedureRelationId, (proc), (role), (mode))
#else
#define DurableProcOwnercheck(proc, role) pg_proc_ownercheck((proc), (role))
#define DurableProcAclcheck(proc, role, mode) pg_proc_aclcheck((proc), (role), (mode))
#endif

/* where a call comes from */
typedef enum DurableCallSource
{
	DURABLE_SOURCE_REQUEST = 0,	/* a ring request: durable.call from a session */
	DURABLE_SOURCE_ALARM,		/* a due alarm (work.c) */
	DURABLE_SOURCE_SEND			/* a committed durable.send (work.c) */
} DurableCallSource;

/* one call as the host runs it (invoke.c) */
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
	char	   *method;
	Jsonb	   *args;
	/* outcome */
	bool		skipped;		/* caller left before the call started */
	DurableReplyStatus status;
	Jsonb	   *result;			/* DURABLE_REPLY_OK; NULL for SQL NULL */
	ErrorData  *error;			/* DURABLE_REPLY_ERROR */
	bool		nested;			/* served while this host waits in its chain */
	/* DURABLE_REQUEST_GATEWAY: a socket frame, a socket event or an HTTP call */
	char	   *args_text;		/* args as JSON text, parsed in the call */
	int64		socket;			/* 0 for HTTP */
	char	   *token;			/* the gateway's request token */
	char	   *frame_id;		/* JSON id of a "call" frame, or NULL */
	bool		connect_accept;	/* $connect: the handler's answer */
	int			connect_code;
	char	   *connect_reason;
	char	   *connect_tags;	/* JSON array text */
	bool		async_commit;	/* its class commits asynchronously */
} DurableCall;

extern void DurableInvokeInit(void);
extern void DurableInvoke(DurableCall *call, MemoryContext resultcxt);
extern Jsonb *DurableInvokeNested(const char *class_name, const char *id,
								  const char *method, Jsonb *args, bool *isnull);
extern void DurableCurrentObject(const char *function, const char **class_name,
								 const char **id);
extern bool DurableInHost(void);

/* what a handler starts with and leaves behind (sandbox.c) */
typedef struct DurableSandbox
{
	bool		nested;			/* inside another object's handler */
	Oid			save_user;
	int			save_sec;
	int			guc_level;
	List	   *cursors;		/* nested: the cursors open before */
} DurableSandbox;

extern void DurableSandboxInitHost(void);
extern void DurableSandboxEnter(Oid owner, bool nested, DurableSandbox *sandbox);
extern void DurableSandboxLeave(DurableSandbox *sandbox);
extern void DurableSandboxEndCall(void);
extern void DurableSettingsChanged(void);
extern uint64 DurableSettingsEpoch(void);
extern void DurableSettingsEpochBump(void);

/* host worker (host.c) */
extern PGDLLEXPORT void DurableHostMain(Datum main_arg);
extern int	durable_host_number;	/* -1 outside host workers */
extern uint64 durable_current_chain;	/* chain of the request running now */
extern void DurableHostServeMailbox(void);
extern void DurableHostRefuseMailbox(void);

/* alarms, sends and their retries, host side (work.c) */
extern bool DurableWorkClaim(DurableCall *call);
extern void DurableWorkFailed(DurableCall *call);
extern int	DurableWorkFetch(DurableCall *calls, int max, TimestampTz *next_wake);
extern void DurableWorkTouched(void);
extern bool DurableWorkTouchedReset(void);

/* durable.send (outbox.c) */
extern void DurableWakeHostForWork(int hostno);
extern void DurableClassesChangedAtCommit(void);

/* sockets of objects, host side (sockets.c) */
extern int64 DurableGatewayEpoch(void);
extern void DurableSetGatewayEpoch(int64 epoch);
extern void DurableOutboundReset(void);
extern void DurableOutboundSetCall(DurableCall *call);
extern void DurableOutboundPublish(DurableCall *call);
extern bool DurableSocketBeforeCall(DurableCall *call);
extern void DurableSocketAfterFailure(DurableCall *call);
extern void DurableSocketAfterCall(DurableCall *call, Jsonb *result);
extern void DurableSocketsCleanup(void);
extern int64 DurableCurrentSocket(void);

/* a host's cache of its objects' storage (storage_cache.c) */
extern void DurableCacheBeginCall(void);
extern bool DurableCacheGet(const char *class_name, const char *id, const text *key,
							Jsonb **value);
extern void DurableCacheFill(const char *class_name, const char *id, const text *key,
							 const Jsonb *value);
extern bool DurableCachePut(const char *class_name, const char *id, const text *key,
							const Jsonb *value);
extern int	DurableCacheDelete(const char *class_name, const char *id, const text *key);
extern void DurableCacheForget(const char *class_name, const char *id, const text *key);
extern void DurableCacheForgetObject(const char *class_name, const char *id);
extern void DurableCacheForgetHibernated(void);
extern bool DurableCacheFlush(void);
extern bool DurableStorageDeleteKey(const char *class_name, const char *id, text *key);
extern uint64 DurableStorageEpoch(void);
extern void DurableStorageEpochBump(void);
extern void DurableStorageWrittenAtCommit(void);

/* residency (residency.c) */
extern void DurableResidencyTouch(const char *class_name, const char *id);
extern void DurableResidencyMaintain(bool force);
extern void DurableResidencyReset(void);
extern bool DurableResidencyHas(const char *class_name, const char *id);

#endif							/* PG_DURABLE_OBJECTS_H */
