/*-------------------------------------------------------------------------
 *
 * pg_durable_objects.c
 *	  Module entry point: settings, shared memory hooks, worker registration.
 *
 * _PG_init runs in the postmaster when the library is preloaded.  It defines
 * the durable.* settings, asks for shared memory (shmem.c, gateway.c), creates
 * the gateway's wake eventfd, registers the host workers (host.c) and the
 * gateway (gateway.c), and installs a utility hook that tells the hosts when
 * ALTER ROLE/DATABASE ... SET changed the settings of class owners
 * (sandbox.c).  Loaded any other way, it defines only the reloadable
 * settings, and the SQL functions explain that the library must be preloaded.
 *
 * IDENTIFICATION
 *	  src/pg_durable_objects.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"
#include "gateway.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

char	   *durable_database = NULL;
int			durable_hosts = 2;
int			durable_max_batch = 64;
int			durable_call_timeout = 30000;
int			durable_max_message_bytes = 1024 * 1024;
int			durable_idle_timeout = 60;
int			durable_cache_size = 32768;

/* gateway settings (gateway.c) */
char	   *durable_listen_address = NULL;
int			durable_port = 7432;
char	   *durable_static_dir = NULL;
char	   *durable_ssl_cert_file = NULL;
char	   *durable_ssl_key_file = NULL;
int			durable_max_sockets = 10000;
int			durable_socket_buffer_bytes = 4 * 1024 * 1024;
char	   *durable_allowed_origins = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

static void
durable_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	DurableShmemRequest();
	DurableGatewayShmemRequest();
}

static void
durable_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	DurableShmemStartup();
	DurableGatewayShmemStartup();
}

/*
 * durable_process_utility
 *		ProcessUtility_hook: after ALTER ROLE/DATABASE ... SET, the hosts read
 *		the settings of class owners again once the transaction commits.
 */
static void
durable_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params,
								  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	if (IsA(stmt, AlterRoleSetStmt) || IsA(stmt, AlterDatabaseSetStmt))
		DurableSettingsChanged();
}

static void
define_postmaster_settings(void)
{
	DefineCustomStringVariable("durable.database",
							   "Database the durable object workers connect to.",
							   "The extension must be created in this database; calls from other databases are refused.",
							   &durable_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("durable.hosts",
							"Number of host workers that execute objects.",
							"Objects are spread over the hosts by a hash of class and id.",
							&durable_hosts,
							2, 1, DURABLE_MAX_HOSTS,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("durable.listen_address",
							   "Address the WebSocket/HTTP gateway listens on.",
							   "An IPv4 or IPv6 address, or * for all addresses. An empty string disables the gateway.",
							   &durable_listen_address,
							   "127.0.0.1",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("durable.port",
							"TCP port of the WebSocket/HTTP gateway.",
							NULL,
							&durable_port,
							7432, 1, 65535,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("durable.static_dir",
							   "Folder whose files the gateway serves at /.",
							   "A relative path is relative to the data directory. Empty: no static files.",
							   &durable_static_dir,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("durable.ssl_cert_file",
							   "PEM certificate (chain) of the gateway; with durable.ssl_key_file, the gateway speaks TLS.",
							   "A relative path is relative to the data directory.",
							   &durable_ssl_cert_file,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("durable.ssl_key_file",
							   "PEM private key of the gateway; with durable.ssl_cert_file, the gateway speaks TLS.",
							   "A relative path is relative to the data directory.",
							   &durable_ssl_key_file,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
}

static void
define_settings(void)
{
	DefineCustomIntVariable("durable.max_batch",
							"Most calls a host commits together in one transaction.",
							"Larger batches share one WAL flush. Each writing call takes a subtransaction; above 64 in one batch (handlers with EXCEPTION blocks take more) the subtransaction cache overflows and snapshots slow down.",
							&durable_max_batch,
							64, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.call_timeout",
							"Longest time one call may run, lock waits included.",
							"A call running longer is cancelled with SQLSTATE 57014 and its writes are rolled back. 0 disables the limit.",
							&durable_call_timeout,
							30000, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.max_message_bytes",
							"Largest call argument, result, storage value or WebSocket frame.",
							NULL,
							&durable_max_message_bytes,
							1024 * 1024, 1024, MaxAllocSize / 2,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.idle_timeout",
							"Time after which an untouched object leaves host memory.",
							NULL,
							&durable_idle_timeout,
							60, 1, 86400 * 365,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.cache_size",
							"Memory each host may use to keep the storage of its objects; 0 turns the cache off.",
							NULL,
							&durable_cache_size,
							32768, 0, INT_MAX / 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.max_attempts",
							"Attempts of a failing alarm or send before it moves to durable.dead_letters.",
							NULL,
							&durable_max_attempts,
							6, 1, 100,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.retry_delay",
							"Wait before the first retry of a failed alarm or send.",
							"The wait doubles with each further attempt, up to one hour.",
							&durable_retry_delay,
							1000, 1, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.max_sockets",
							"Most WebSockets open at once on the gateway.",
							"Further upgrade requests get HTTP 503. The gateway's open file limit must allow them.",
							&durable_max_sockets,
							10000, 0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.socket_buffer_bytes",
							"Outbound bytes queued for one WebSocket before it is closed as a slow consumer.",
							NULL,
							&durable_socket_buffer_bytes,
							4 * 1024 * 1024, 1024, MaxAllocSize,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.max_classes_per_role",
							"Most classes one role may own; 0: no limit.",
							"Defining one more fails with SQLSTATE 54000. Superusers are not limited.",
							&durable_max_classes_per_role,
							1000, 0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("durable.allowed_origins",
							   "Comma-separated browser Origins allowed to open WebSockets.",
							   "Empty: only the gateway's own host (or no Origin header). *: any origin.",
							   &durable_allowed_origins,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("durable");
}

static void
register_hosts(void)
{
	int			i;

	for (i = 0; i < durable_hosts; i++)
	{
		BackgroundWorker worker;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = 1;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_durable_objects");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "DurableHostMain");
		snprintf(worker.bgw_name, BGW_MAXLEN, "pg_durable_objects host %d", i);
		snprintf(worker.bgw_type, BGW_MAXLEN, "pg_durable_objects host");
		worker.bgw_main_arg = Int32GetDatum(i);
		worker.bgw_notify_pid = 0;
		RegisterBackgroundWorker(&worker);
	}
}

/*
 * _PG_init
 *		Module load.  Everything but the settings needs shared_preload_libraries.
 */
void
_PG_init(void)
{
	/* PGC_POSTMASTER settings can only be created while preloading */
	if (process_shared_preload_libraries_in_progress)
		define_postmaster_settings();
	define_settings();

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = durable_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = durable_shmem_startup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = durable_process_utility;

	DurableGatewayInit();
	register_hosts();
	DurableGatewayRegister();
}
