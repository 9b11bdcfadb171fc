/*-------------------------------------------------------------------------
 *
 * router.c
 *	  durable.call() and durable.new_id(): route a call to its host and wait.
 *
 * A call is validated and checked (class exists, EXECUTE on its handler),
 * then put on the ring of the host that owns the object, host = hash(class,
 * id) mod durable.hosts.  The caller waits on its latch until the host
 * publishes the reply, which it does only after the call's transaction
 * committed.  The wait ends with an error if the caller is cancelled (the
 * host then skips the call if it has not started it), or if the host exits.
 *
 * Inside a handler, durable.call reaches other objects: inline when they
 * live on the same host, through the ring otherwise, with the waits between
 * hosts recorded in shared memory so that a cycle ends in ERROR 40P01.
 *
 * IDENTIFICATION
 *	  src/router.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"

#include "portability/instr_time.h"

#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/wait_event.h"

PG_FUNCTION_INFO_V1(durable_call);

#define HOST_DOWN_LIMIT_MS 10000
PG_FUNCTION_INFO_V1(durable_new_id);

/*
 * DurableObjectShard
 *		Stable hash of object (class, id); its host is shard % durable.hosts.
 */
uint32
DurableObjectShard(const char *class_name, const char *id)
{
	char		key[DURABLE_MAX_CLASS_BYTES + 1 + DURABLE_MAX_ID_BYTES];
	size_t		clen = Min(strlen(class_name), DURABLE_MAX_CLASS_BYTES);
	size_t		ilen = Min(strlen(id), DURABLE_MAX_ID_BYTES);

	/* no allocation: the gateway calls this inside lws callbacks */
	memcpy(key, class_name, clen);
	key[clen] = '\0';
	memcpy(key + clen + 1, id, ilen);
	return hash_bytes((unsigned char *) key, (int) (clen + 1 + ilen));
}

/*
 * DurableHostFor
 *		The host that owns object (class, id).
 */
int
DurableHostFor(const char *class_name, const char *id)
{
	return (int) (DurableObjectShard(class_name, id) % (uint32) DurableHostCount());
}

/*
 * DurableCheckReady
 *		ERROR (with a hint) unless the library is preloaded and this is the
 *		database the hosts serve.
 */
void
DurableCheckReady(void)
{
	static Oid	checked_db = InvalidOid;
	char	   *dbname;

	if (!DurableShmemReady())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_durable_objects is not loaded through shared_preload_libraries"),
				 errhint("Add pg_durable_objects to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("durable objects do not run during recovery"),
				 errhint("Call objects on the primary server.")));
	if (checked_db == MyDatabaseId)
		return;
	dbname = get_database_name(MyDatabaseId);
	if (dbname == NULL || strcmp(dbname, durable_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("durable objects run in database \"%s\", not in \"%s\"",
						durable_database, dbname ? dbname : "?"),
				 errhint("Connect to database \"%s\", or set durable.database = '%s' in postgresql.conf and restart the server.",
						 durable_database, dbname ? dbname : "?")));
	checked_db = MyDatabaseId;
}

/*
 * DurableCheckMessageSize
 *		ERROR 54000 if a payload exceeds durable.max_message_bytes.
 */
void
DurableCheckMessageSize(Size size, const char *what)
{
	if (size > (Size) durable_max_message_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large", what),
				 errdetail("It takes %zu bytes; durable.max_message_bytes is %d.",
						   size, durable_max_message_bytes)));
}

/*
 * DurableCheckId
 *		ERROR 22023 unless id has 1..512 bytes.
 */
void
DurableCheckId(const char *id)
{
	size_t		len = strlen(id);

	if (len < 1 || len > DURABLE_MAX_ID_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("object id must have 1 to %d bytes, not %zu",
						DURABLE_MAX_ID_BYTES, len)));
}

static void
check_not_null(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

static void
check_method(const char *method)
{
	if (method[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method name must not be empty")));
	if (method[0] == '$')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method \"%s\" is reserved for the system", method),
				 errdetail("Method names starting with \"$\" are lifecycle methods called by the system.")));
}

/*
 * raise_reply_error
 *		Re-raise in the caller the error a handler (or its host) reported.
 *		parts: sqlstate, message, detail, hint, context.
 */
static void
raise_reply_error(const DurableParts *parts, const char *class_name,
				  const char *id, const char *method)
{
	const char *state = parts->nparts > 0 ? parts->data[0] : NULL;
	int			sqlerrcode = ERRCODE_INTERNAL_ERROR;

	if (parts->nparts < 2 || parts->isnull[1])
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("durable call failed, and its error could not be returned"),
				 errdetail("The host ran out of shared memory for the reply.")));

	if (state && strlen(state) == 5)
		sqlerrcode = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);

	ereport(ERROR,
			(errcode(sqlerrcode),
			 errmsg_internal("%s", parts->data[1]),
			 (parts->nparts > 2 && !parts->isnull[2]) ?
			 errdetail_internal("%s", parts->data[2]) : 0,
			 (parts->nparts > 3 && !parts->isnull[3]) ?
			 errhint("%s", parts->data[3]) : 0,
			 (parts->nparts > 4 && !parts->isnull[4]) ?
			 errcontext("%s", parts->data[4]) : 0,
			 errcontext("durable call to %s(%s) method %s", class_name, id, method)));
}

/*
 * wait_for_reply
 *		Sleep on our latch until the reply to call seq arrives (with poll,
 *		first watch the reply slot for POLL_US).  Ends with an ERROR
 *		on cancel or statement_timeout (through CHECK_FOR_INTERRUPTS) and
 *		when the host exits without answering.
 */
/*
 * How long a caller whose host was watching its ring (host.c, poll_ring)
 * watches its reply slot before it sleeps (µs): a back-to-back caller then
 * never waits for a process to be woken (see docs/internals.md, "Waiting").
 * After a miss, the next POLL_SKIP calls to that host sleep at once.
 */
#define POLL_US 60
#define POLL_SKIP 8
static uint8 poll_skip[DURABLE_MAX_HOSTS];	/* calls left that do not poll, per host */

static DurableReplyStatus
wait_for_reply(int hostno, uint64 seq, uint32 generation, bool poll, DurableParts *parts)
{
	DurableHostShared *host = DurableHost(hostno);
	TimestampTz down_since = 0;

	/*
	 * The host was awake and idle: the reply may come before a sleep would
	 * end.  Calls that take longer (a WAL flush, a slow handler) make polling
	 * waste CPU: after a miss, the next POLL_SKIP calls to that host sleep at
	 * once.
	 */
	if (poll && poll_skip[hostno] > 0)
		poll_skip[hostno]--;
	else if (poll)
	{
		instr_time	start;
		instr_time	now;

		INSTR_TIME_SET_CURRENT(start);
		for (;;)
		{
			if (DurableReplySlotReady(seq))
				break;
			INSTR_TIME_SET_CURRENT(now);
			INSTR_TIME_SUBTRACT(now, start);
			if (INSTR_TIME_GET_MICROSEC(now) >= POLL_US)
			{
				poll_skip[hostno] = POLL_SKIP;
				break;
			}
			pg_spin_delay();
		}
	}

	for (;;)
	{
		DurableReplyStatus status = DurableReplySlotTake(seq, parts);
		uint32		now_generation;
		pid_t		pid;

		if (status != DURABLE_REPLY_NONE)
			return status;

		SpinLockAcquire(&host->mutex);
		now_generation = host->generation;
		pid = host->pid;
		SpinLockRelease(&host->mutex);

		/* a host restarts within seconds; one that stays down may never come */
		if (pid != 0)
			down_since = 0;
		else if (down_since == 0)
			down_since = GetCurrentTimestamp();
		else if (TimestampDifferenceExceeds(down_since, GetCurrentTimestamp(),
											HOST_DOWN_LIMIT_MS))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("durable host %d is not running", hostno),
					 errdetail("The call was not started."),
					 errhint("See the server log. The hosts need durable.hosts free background worker slots (max_worker_processes).")));

		if (now_generation != generation)
		{
			/* the host's exit callback publishes before bumping: look once more */
			status = DurableReplySlotTake(seq, parts);
			if (status != DURABLE_REPLY_NONE)
				return status;
			ereport(ERROR,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("durable host %d exited before answering", hostno),
					 errdetail("The outcome of the call is unknown.")));
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (DurableInHost())
			DurableHostServeMailbox();
	}
}

/*
 * DurableCheckCallArgs
 *		Validate the (class, id, method, args) arguments of durable.call and
 *		durable.send, check the class exists and that the current role may
 *		call it (EXECUTE on its handler).
 */
void
DurableCheckCallArgs(FunctionCallInfo fcinfo, char **class_name, char **id,
					 char **method, Jsonb **args)
{
	DurableClass cls;
	AclResult	aclresult;

	DurableCheckReady();
	check_not_null(fcinfo, 0, "class");
	check_not_null(fcinfo, 1, "object id");
	check_not_null(fcinfo, 2, "method");
	check_not_null(fcinfo, 3, "args");
	*class_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	*id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	*method = text_to_cstring(PG_GETARG_TEXT_PP(2));
	*args = PG_GETARG_JSONB_P(3);

	DurableCheckClassName(*class_name);
	DurableCheckId(*id);
	check_method(*method);
	DurableCheckMessageSize(VARSIZE(*args), "call argument");

	DurableClassLookup(*class_name, &cls, false);
	if (!OidIsValid(cls.handler))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the handler of durable class \"%s\" no longer exists", *class_name),
				 errhint("Define the class again with durable.define_class().")));
	aclresult = DurableProcAclcheck(cls.handler, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to call objects of class \"%s\"", *class_name),
				 errhint("A role needs EXECUTE on the class handler %s.",
						 format_procedure(cls.handler))));
}

/*
 * check_wait_cycle
 *		ERROR 40P01 if following "waits on" from host target comes back to this
 *		host: a cycle of synchronous calls that would never end.  A host that
 *		waits in our own call chain ends the walk: it serves our chain's calls
 *		while it waits (its mailbox).
 */
static void
check_wait_cycle(int target, uint64 chain)
{
	int			h = target;
	int			steps;

	for (steps = 0; h >= 0 && steps <= DurableHostCount(); steps++)
	{
		DurableHostShared *host;
		uint64		host_chain;

		if (h == durable_host_number)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
					 errmsg("deadlock detected: a cycle of synchronous calls between objects"),
					 errdetail("Host %d waits on host %d, which waits (directly or not) on host %d.",
							   durable_host_number, target, durable_host_number),
					 errhint("Use durable.send() for one direction of the conversation.")));
		host = DurableHost(h);
		SpinLockAcquire(&host->mutex);
		host_chain = host->waiting_chain;
		h = host->waiting_for - 1;
		SpinLockRelease(&host->mutex);
		if (host_chain == chain)
			break;
	}
}

/*
 * hand_to_waiting_host
 *		If host hostno waits in call chain req->chain, put the request in its
 *		mailbox (it runs it nested in its waiting call) and wake it.
 */
static bool
hand_to_waiting_host(int hostno, const DurableRequest *req, uint32 *generation)
{
	DurableHostShared *host = DurableHost(hostno);
	bool		handed = false;
	int			procno = -1;

	SpinLockAcquire(&host->mutex);
	if (host->pid != 0 && host->waiting_chain == req->chain && !host->mailbox_full)
	{
		host->mailbox = *req;
		host->mailbox_full = true;
		procno = host->procno;
		handed = true;
	}
	*generation = host->generation;
	SpinLockRelease(&host->mutex);
	if (handed)
		DurableWakeProc(procno);
	return handed;
}

/*
 * end_nested_wait
 *		A host's nested wait is over.  If it was itself serving a call of its
 *		chain while waiting in an outer call (a chain that came back to this
 *		host), it waits for the outer call again; else it waits no more.
 */
static void
end_nested_wait(DurableHostShared *me, uint64 outer_seq, int outer_waiting_for,
				uint64 outer_chain)
{
	if (outer_waiting_for == 0)
	{
		DurableHostRefuseMailbox();
		return;
	}
	DurableReplySlotResume(outer_seq);
	SpinLockAcquire(&me->mutex);
	me->waiting_for = outer_waiting_for;
	me->waiting_chain = outer_chain;
	SpinLockRelease(&me->mutex);
}

/*
 * route_and_wait
 *		Put the call on its host's ring and wait for the reply; returns its
 *		status with the reply in *reply.
 *
 *		In a host (a nested call to an object of another host) the wait is a
 *		link of a call chain: this host records whom it waits on, serves calls
 *		of the same chain that come back to it while it waits, and a wait that
 *		would close a cycle with other chains ends in ERROR 40P01.
 */
static DurableReplyStatus
route_and_wait(int hostno, DurableParts *parts, DurableParts *reply)
{
	static uint64 chains_started = 0;
	DurableRequest req;
	uint32		generation;
	DurableReplyStatus status = DURABLE_REPLY_NONE;
	bool		nested = DurableInHost();
	DurableHostShared *me = nested ? DurableHost(durable_host_number) : NULL;
	uint64		outer_seq;
	int			outer_waiting_for = 0;
	uint64		outer_chain = 0;
	volatile bool poll = false;

	memset(&req, 0, sizeof(req));
	req.seq = DurableReplySlotBegin(&outer_seq);
	req.caller = MyProc->pgprocno;
	req.kind = DURABLE_REQUEST_CALL;
	req.message = DurableMessageStore(parts);
	if (!DsaPointerIsValid(req.message))
	{
		DurableReplySlotAbandon(req.seq);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of shared memory for a durable call")));
	}

	PG_TRY();
	{
		if (nested)
		{
			if (durable_current_chain == 0)
				durable_current_chain = ((uint64) (durable_host_number + 1) << 48) |
					(++chains_started & (((uint64) 1 << 48) - 1));
			req.chain = durable_current_chain;
			SpinLockAcquire(&me->mutex);
			outer_waiting_for = me->waiting_for;
			outer_chain = me->waiting_chain;
			me->waiting_for = hostno + 1;
			me->waiting_chain = req.chain;
			SpinLockRelease(&me->mutex);
		}
		poll = !nested && DurableHost(hostno)->polling;
		if (!nested || !hand_to_waiting_host(hostno, &req, &generation))
		{
			if (nested)
				check_wait_cycle(hostno, req.chain);
			if (!DurableEnqueue(hostno, &req, &generation))
				ereport(ERROR,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("the queue of durable host %d is full", hostno)));
		}
		req.message = InvalidDsaPointer;	/* the host owns it now */
		status = wait_for_reply(hostno, req.seq, generation, poll, reply);
	}
	PG_CATCH();
	{
		DurableMessageFree(req.message);
		DurableReplySlotAbandon(req.seq);
		if (nested)
			end_nested_wait(me, outer_seq, outer_waiting_for, outer_chain);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (nested)
		end_nested_wait(me, outer_seq, outer_waiting_for, outer_chain);
	return status;
}

/*
 * durable_call
 *		durable.call(class text, id text, method text, args jsonb) RETURNS jsonb
 *
 * From a session: route to the object's host and wait.  Inside a handler
 * (nested call): an object of the same host runs right here, inline; an
 * object of another host is routed like any call while this host waits.
 */
Datum
durable_call(PG_FUNCTION_ARGS)
{
	char	   *class_name;
	char	   *id;
	char	   *method;
	Jsonb	   *args;
	DurableParts parts;
	DurableParts reply;
	DurableReplyStatus status;
	int			hostno;

	DurableCheckCallArgs(fcinfo, &class_name, &id, &method, &args);
	hostno = DurableHostFor(class_name, id);

	if (DurableInHost() && hostno == durable_host_number)
	{
		bool		isnull;
		Jsonb	   *result = DurableInvokeNested(class_name, id, method, args, &isnull);

		if (isnull)
			PG_RETURN_NULL();
		PG_RETURN_JSONB_P(result);
	}

	{
		const char *data[4] = {class_name, id, method, ""};

		DurableMakeParts(&parts, data, 4);
		/* the args travel as binary jsonb, not as a C string */
		parts.data[3] = (const char *) args;
		parts.len[3] = VARSIZE(args);
	}

	status = route_and_wait(hostno, &parts, &reply);
	if (status == DURABLE_REPLY_ERROR)
		raise_reply_error(&reply, class_name, id, method);
	if (reply.nparts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("durable call committed, but its result could not be returned"),
				 errdetail("The host ran out of shared memory for the reply.")));
	if (reply.nparts < 1 || reply.isnull[0])
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P((Jsonb *) reply.data[0]);
}

/*
 * durable_new_id
 *		durable.new_id() RETURNS text: 128 random bits as 32 hex characters.
 */
Datum
durable_new_id(PG_FUNCTION_ARGS)
{
	uint8		bytes[16];
	char		hex[33];
	int			i;

	if (!pg_strong_random(bytes, sizeof(bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random object id")));
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}
