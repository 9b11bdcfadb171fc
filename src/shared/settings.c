/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The durable.* settings.
 *
 * _PG_init defines them: those that size shared memory, name the databases
 * or bind the listener (PGC_POSTMASTER) only while the library is preloaded,
 * the reloadable ones (PGC_SIGHUP) always, and then reserves the prefix.
 *
 * durable.database is a comma-separated list of database names (spaces
 * around a name are dropped, names are taken as written: no quoting, no
 * case folding, so one name reads as it always did).  A database's number
 * is its place in the list, 0 for the first: host slots, lanes, the class
 * directory and gateway messages carry it, so nothing of one database is
 * found from another.
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
int			durable_db = -1;
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

static char database_names[DURABLE_MAX_DATABASES][NAMEDATALEN];
static int	ndatabases = 0;

/*
 * DurableListItem
 *		The next item of a comma-separated setting at *cursor (spaces and
 *		tabs around it dropped) into *item and *len; *cursor moves past it
 *		(NULL after the last).  False when there is none left.  Never throws.
 */
bool
DurableListItem(const char **cursor, const char **item, size_t *len)
{
	const char *p = *cursor;
	const char *end;
	size_t		n;

	if (p == NULL)
		return false;
	end = strchr(p, ',');
	n = end ? (size_t) (end - p) : strlen(p);
	while (n > 0 && (*p == ' ' || *p == '\t'))
	{
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	*item = p;
	*len = n;
	*cursor = end ? end + 1 : NULL;
	return true;
}

/*
 * split_databases
 *		The names of durable.database's value into names (when not NULL);
 *		their count, or -1 with *why set when the list is not valid.
 */
static int
split_databases(const char *value, char (*names)[NAMEDATALEN], const char **why)
{
	char		found[DURABLE_MAX_DATABASES][NAMEDATALEN];
	const char *cursor = value ? value : "";
	const char *p;
	size_t		len;
	int			n = 0;
	int			i;

	*why = NULL;
	while (DurableListItem(&cursor, &p, &len))
	{
		if (len == 0)
			*why = "A database name is empty.";
		else if (len >= NAMEDATALEN)
			*why = "A database name is too long.";
		else if (n == DURABLE_MAX_DATABASES)
			*why = "At most 16 databases can be listed.";
		if (*why)
			return -1;
		memcpy(found[n], p, len);
		found[n][len] = '\0';
		for (i = 0; i < n; i++)
		{
			if (strcmp(found[i], found[n]) == 0)
			{
				*why = "A database is listed twice.";
				return -1;
			}
		}
		n++;
	}
	if (names)
		memcpy(names, found, sizeof(found[0]) * n);
	return n;
}

static void
assign_databases(const char *newval, void *extra)
{
	const char *why;

	ndatabases = Max(split_databases(newval, database_names, &why), 0);
}

static void
define_postmaster_settings(void)
{
	DefineCustomStringVariable("durable.database",
							   "Databases the durable object workers serve: a comma-separated list.",
							   "The extension must be created in each; calls from other databases are refused. The first is the one plain /objects/ URLs of the gateway reach.",
							   &durable_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, assign_databases, NULL);

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
	const char *why;

	if (preloading)
	{
		define_postmaster_settings();
		/* a list that is not valid stops the server rather than serve another database */
		if (split_databases(durable_database, NULL, &why) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for parameter \"durable.database\": \"%s\"",
							durable_database),
					 errdetail("%s", why),
					 errhint("List database names separated by commas.")));
	}
	define_settings();
}

/* how many databases durable.database lists */
int
DurableDatabaseCount(void)
{
	return ndatabases;
}

/* the name of database number db of durable.database */
const char *
DurableDatabaseName(int db)
{
	Assert(db >= 0 && db < ndatabases);
	return database_names[db];
}

/*
 * DurableDatabaseNumber
 *		The number of database name in durable.database, -1 if not listed.
 *		Never throws (the gateway calls it).
 */
int
DurableDatabaseNumber(const char *name)
{
	int			i;

	for (i = 0; i < ndatabases; i++)
		if (strcmp(database_names[i], name) == 0)
			return i;
	return -1;
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
