/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The durable.* settings.
 *
 * _PG_init defines them: those that size shared memory, name the database
 * or bind the listener (PGC_POSTMASTER) only while the library is preloaded,
 * the reloadable ones (PGC_SIGHUP) always, and then reserves the prefix.
 *
 * IDENTIFICATION
 *	  src/shared/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/settings.h"

#include <limits.h>

#include "utils/guc.h"
#include "utils/memutils.h"

char	   *durable_database = NULL;
int			durable_hosts = 2;
int			durable_max_hosts = 8;
int			durable_busy_threshold = 50;
int			durable_max_batch = 64;
int			durable_call_timeout = 30000;
int			durable_max_message_bytes = 1024 * 1024;
int			durable_idle_timeout = 60;
int			durable_cache_size = 32768;
int			durable_max_attempts = 6;
int			durable_retry_delay = 1000;
int			durable_max_classes_per_role = 1000;

char	   *durable_listen_address = NULL;
int			durable_port = 7432;
char	   *durable_static_dir = NULL;
char	   *durable_ssl_cert_file = NULL;
char	   *durable_ssl_key_file = NULL;
int			durable_max_sockets = 10000;
int			durable_socket_buffer_bytes = 4 * 1024 * 1024;
char	   *durable_allowed_origins = NULL;
int			durable_message_area_bytes = 1024 * 1024; /* kB */
int			durable_client_area_bytes = 16 * 1024 * 1024;
int			durable_max_receive_bytes = 256 * 1024 * 1024;
int			durable_slow_consumer_timeout = 10000;

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
							"Number of home host workers of each class owner with work.",
							"A host runs the classes of one owner; the owner's objects are spread over its home hosts by a hash of class and id.",
							&durable_hosts,
							2, 1, DURABLE_MAX_HOME_HOSTS,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.max_hosts",
							"Most host workers at once, of all class owners together.",
							"Each is a background worker: max_worker_processes must leave room for them, the scheduler and the gateway.",
							&durable_max_hosts,
							8, 1, DURABLE_MAX_HOSTS,
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
							64, 1, DURABLE_MAX_BATCH,
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

	DefineCustomIntVariable("durable.busy_threshold",
							"How long a host may be in one call before other objects stop waiting for it.",
							"Calls of other objects queued on a host busy this long move to another host of the same owner, and the object of the long call runs on an extra host for a while.",
							&durable_busy_threshold,
							50, 1, 3600 * 1000,
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
							   "Comma-separated browser Origins allowed to open WebSockets and make HTTP calls.",
							   "Empty: only pages of the gateway itself on a loopback address (or no Origin header). *: any origin. Listed origins get CORS headers.",
							   &durable_allowed_origins,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("durable.message_area_bytes",
							"Most shared memory the message area may take (calls, replies and messages on their way between processes).",
							"The gateway's clients may use half of it; an allocation over the limit fails cleanly.",
							&durable_message_area_bytes,
							1024 * 1024, 16 * 1024, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.client_area_bytes",
							"Most bytes of one gateway client's calls waiting in the message area.",
							"A client over it is not read until the hosts took its earlier calls. At least durable.max_message_bytes plus 64kB is used.",
							&durable_client_area_bytes,
							16 * 1024 * 1024, 64 * 1024, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.max_receive_bytes",
							"Most memory of the gateway for messages being received (WebSocket messages, HTTP bodies) over all connections.",
							"A connection that would take it over is closed with 1013 (WebSocket) or answered 503 (HTTP).",
							&durable_max_receive_bytes,
							256 * 1024 * 1024, 1024 * 1024, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.slow_consumer_timeout",
							"How long a WebSocket may have more than durable.socket_buffer_bytes queued before it is closed as a slow consumer.",
							"Eight times durable.socket_buffer_bytes queued closes it at once.",
							&durable_slow_consumer_timeout,
							10000, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("durable");
}

/*
 * DurableDefineSettings
 *		_PG_init: define the settings (the PGC_POSTMASTER ones only while
 *		preloading: they cannot be created later).
 */
void
DurableDefineSettings(bool preloading)
{
	if (preloading)
		define_postmaster_settings();
	define_settings();
}

/*
 * DurableGatewayEnabled
 *		Whether the gateway runs: preloaded with a non-empty listen address.
 */
bool
DurableGatewayEnabled(void)
{
	return durable_listen_address != NULL && durable_listen_address[0] != '\0';
}
