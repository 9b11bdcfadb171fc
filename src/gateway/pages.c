/*-------------------------------------------------------------------------
 *
 * pages.c
 *	  The gateway's plain pages: GET /healthz, /metrics and static files.
 *
 * IDENTIFICATION
 *	  src/gateway/pages.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"
#include "shared/lanes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"

/* the gateway's open file limit, set at start (gateway.c) */
int			gateway_fd_limit = 0;

/* why database db cannot be served yet, or NULL */
static const char *
database_fault(int db)
{
	if (DurableDatabaseUnreachable(db))
		return "the database cannot be connected to";
	if (!DurableSchedulerRunning(db))
		return "the scheduler is not running";
	if (!GatewayClassesLoaded(db))
		return "the class directory has not arrived yet";
	return NULL;
}

/*
 * GatewayHealthz
 *		GET /healthz: 200 when the gateway (this process) and the scheduler of
 *		the first database of durable.database run, and the gateway knows its
 *		classes (it can route plain /objects/ requests).  The body's first
 *		line is "ok" or "unavailable", then a line for each database that
 *		cannot be served (the first one without its name, as with a single
 *		database); those after the first do not change the status.
 */
int
GatewayHealthz(GatewayConn *c)
{
	GatewayBuf	buf;
	const char *fault = database_fault(0);
	int			db;

	GatewayBufInit(&buf, 256);
	GatewayBufPrintf(&buf, fault ? "unavailable\n%s\n" : "ok\n", fault);
	for (db = 1; db < DurableDatabaseCount(); db++)
		if ((fault = database_fault(db)) != NULL)
			GatewayBufPrintf(&buf, "database \"%s\": %s\n", DurableDatabaseName(db), fault);
	return GatewayRespond(c, database_fault(0) ? HTTP_STATUS_SERVICE_UNAVAILABLE : HTTP_STATUS_OK,
						  "text/plain; charset=utf-8", &buf, NULL);
}

static void
metric_header(GatewayBuf *buf, const char *name, const char *type, const char *help)
{
	GatewayBufPrintf(buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * GatewayMetrics
 *		GET /metrics: Prometheus text exposition format 0.0.4.
 */
int
GatewayMetrics(GatewayConn *c)
{
	GatewayBuf	buf;
	int			nhosts = DurableHostSlots();
	DurableHostStats hosts[DURABLE_MAX_HOSTS];
	DurableGatewayCounters *gw = DurableGatewayStats();
	int			i;

	for (i = 0; i < nhosts; i++)
	{
		DurableHostGetStats(i, &hosts[i]);
		hosts[i].queue_depth = DurableRingDepth(i);
	}

	GatewayBufInit(&buf, 4096);

#define PER_HOST(name, type, help, format, field) \
	do { \
		metric_header(&buf, name, type, help); \
		for (i = 0; i < nhosts; i++) \
			if (hosts[i].state != DURABLE_HOST_FREE) \
				GatewayBufPrintf(&buf, name "{host=\"%d\",owner=\"%u\"} " format "\n", \
								 i, hosts[i].owner, hosts[i].field); \
	} while (0)
#define GATEWAY_COUNTER(name, help, field) \
	do { \
		metric_header(&buf, name, "counter", help); \
		GatewayBufPrintf(&buf, name " " UINT64_FORMAT "\n", pg_atomic_read_u64(&gw->field)); \
	} while (0)

	PER_HOST("durable_calls_total", "counter",
			 "Calls run by each host worker (counters restart at a crash restart).",
			 UINT64_FORMAT, calls);
	PER_HOST("durable_errors_total", "counter",
			 "Calls that ended in an error, per host worker.", UINT64_FORMAT, errors);
	PER_HOST("durable_batches_total", "counter",
			 "Batches (one transaction each) in which the host worker ran calls.",
			 UINT64_FORMAT, batches);
	PER_HOST("durable_queue_depth", "gauge",
			 "Calls waiting in the queue of each host worker.", UINT64_FORMAT, queue_depth);
	PER_HOST("durable_objects_in_memory", "gauge",
			 "Objects held in host memory (called within durable.idle_timeout).", "%u", objects);
	PER_HOST("durable_host_up", "gauge",
			 "1 if the host worker is running, else 0.", "%d", pid != 0);
	PER_HOST("durable_host_busy", "gauge",
			 "1 if the host worker is running a call now, else 0.", "%d", busy_since != 0);
	PER_HOST("durable_host_waiting", "gauge",
			 "1 if the host worker's call waits for a call of another object, else 0.",
			 "%d", waiting);

	metric_header(&buf, "durable_sockets_open", "gauge",
				  "WebSocket connections open on the gateway.");
	GatewayBufPrintf(&buf, "durable_sockets_open %u\n", pg_atomic_read_u32(&gw->sockets_open));

	metric_header(&buf, "durable_call_latency_seconds", "histogram",
				  "Time from a call's enqueue to its answer (after commit), per host worker.");
	for (i = 0; i < nhosts; i++)
	{
		uint64		cumulative = 0;
		int			b;

		if (hosts[i].state == DURABLE_HOST_FREE)
			continue;
		for (b = 0; b <= DURABLE_LATENCY_BUCKETS; b++)
		{
			cumulative += hosts[i].latency[b];
			if (b < DURABLE_LATENCY_BUCKETS)
				GatewayBufPrintf(&buf, "durable_call_latency_seconds_bucket{host=\"%d\",le=\"%g\"} "
								 UINT64_FORMAT "\n", i, durable_latency_bounds_ms[b] / 1000.0,
								 cumulative);
			else
				GatewayBufPrintf(&buf, "durable_call_latency_seconds_bucket{host=\"%d\",le=\"+Inf\"} "
								 UINT64_FORMAT "\n", i, cumulative);
		}
		GatewayBufPrintf(&buf, "durable_call_latency_seconds_sum{host=\"%d\"} %.6f\n", i,
						 hosts[i].latency_sum_us / 1000000.0);
		GatewayBufPrintf(&buf, "durable_call_latency_seconds_count{host=\"%d\"} " UINT64_FORMAT "\n",
						 i, cumulative);
	}

	GATEWAY_COUNTER("durable_frames_in_total", "WebSocket frames received from clients.",
					frames_in);
	GATEWAY_COUNTER("durable_frames_out_total", "WebSocket frames sent to clients.", frames_out);
	GATEWAY_COUNTER("durable_bytes_in_total", "WebSocket payload bytes received from clients.",
					bytes_in);
	GATEWAY_COUNTER("durable_bytes_out_total", "WebSocket payload bytes sent to clients.",
					bytes_out);
	GATEWAY_COUNTER("durable_slow_consumer_closes_total",
					"Sockets closed (1008) because they queued more than durable.socket_buffer_bytes.",
					slow_closes);
	GATEWAY_COUNTER("durable_http_requests_total",
					"HTTP requests received by the gateway, this one included.", http_requests);
	GATEWAY_COUNTER("durable_calls_waited_total",
					"Calls from clients that had to wait for room before their object's host took them (backpressure).",
					calls_waited);
	GATEWAY_COUNTER("durable_calls_refused_total",
					"Calls from clients the shared message area could not store (the client got 1013 or 503).",
					calls_refused);
	GATEWAY_COUNTER("durable_protocol_closes_total",
					"WebSockets failed for a violation of RFC 6455 (close 1002 or 1007).",
					protocol_closes);

	metric_header(&buf, "durable_calls_waiting", "gauge",
				  "Sockets and HTTP calls waiting for room in their object's host queue now.");
	GatewayBufPrintf(&buf, "durable_calls_waiting %d\n", GatewayBacklogLength());
	metric_header(&buf, "durable_message_area_client_bytes", "gauge",
				  "Bytes of clients' calls waiting in the shared message area now.");
	GatewayBufPrintf(&buf, "durable_message_area_client_bytes " UINT64_FORMAT "\n",
					 DurableAreaCountedBytes());

	metric_header(&buf, "durable_gateway_max_fds", "gauge",
				  "Open file limit of the gateway process (caps its connections).");
	GatewayBufPrintf(&buf, "durable_gateway_max_fds %d\n", gateway_fd_limit);

#undef PER_HOST
#undef GATEWAY_COUNTER
	return GatewayRespond(c, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8", &buf,
						  NULL);
}

static const char *
content_type_for(const char *path)
{
	static const struct
	{
		const char *ext;
		const char *type;
	}			types[] =
	{
		{".html", "text/html; charset=utf-8"},
		{".htm", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".mjs", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".json", "application/json"},
		{".map", "application/json"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
		{".jpg", "image/jpeg"},
		{".jpeg", "image/jpeg"},
		{".gif", "image/gif"},
		{".webp", "image/webp"},
		{".ico", "image/x-icon"},
		{".txt", "text/plain; charset=utf-8"},
		{".wasm", "application/wasm"},
	};
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');
	int			i;

	if (dot != NULL)
		for (i = 0; i < lengthof(types); i++)
			if (pg_strcasecmp(dot, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

/* a request path has a ".." segment */
static bool
path_has_dotdot(const char *path)
{
	const char *p = path;

	while (*p)
	{
		const char *seg = p;

		while (*p && *p != '/')
			p++;
		if (p - seg == 2 && seg[0] == '.' && seg[1] == '.')
			return true;
		if (*p == '/')
			p++;
	}
	return false;
}

/*
 * GatewayStatic
 *		GET/HEAD of a file below durable.static_dir ("/" is index.html, so is
 *		any directory).  Paths with ".." segments, and files whose real path
 *		(symbolic links resolved) is outside the folder, are refused.  The
 *		file is sent a piece at a time (conn.c).
 */
int
GatewayStatic(GatewayConn *c, const char *path)
{
	char		root[PATH_MAX];
	char		want[PATH_MAX];
	char		real[PATH_MAX];
	size_t		rootlen;
	struct stat st;
	int			fd;
	int			n;

	if (durable_static_dir == NULL || durable_static_dir[0] == '\0')
		return GatewayRespondText(c, HTTP_STATUS_NOT_FOUND, "not found\n", NULL);
	if (path[0] != '/' || path_has_dotdot(path) || strchr(path, '\\') != NULL)
		return GatewayRespondText(c, HTTP_STATUS_FORBIDDEN, "forbidden\n", NULL);
	if (realpath(durable_static_dir, root) == NULL)
		return GatewayRespondText(c, HTTP_STATUS_NOT_FOUND, "not found\n", NULL);
	rootlen = strlen(root);

	n = snprintf(want, sizeof(want), "%s%s%s", root, path,
				 path[strlen(path) - 1] == '/' ? "index.html" : "");
	if (n < 0 || n >= (int) sizeof(want) || realpath(want, real) == NULL ||
		stat(real, &st) != 0)
		return GatewayRespondText(c, HTTP_STATUS_NOT_FOUND, "not found\n", NULL);
	if (S_ISDIR(st.st_mode))
	{
		n = snprintf(want, sizeof(want), "%s/index.html", real);
		if (n < 0 || n >= (int) sizeof(want) || realpath(want, real) == NULL ||
			stat(real, &st) != 0)
			return GatewayRespondText(c, HTTP_STATUS_NOT_FOUND, "not found\n", NULL);
	}
	if (strncmp(real, root, rootlen) != 0 ||
		(real[rootlen] != '/' && !(rootlen == 1 && root[0] == '/')))
		return GatewayRespondText(c, HTTP_STATUS_FORBIDDEN, "forbidden\n", NULL);
	if (!S_ISREG(st.st_mode) || (fd = open(real, O_RDONLY | O_CLOEXEC)) < 0)
		return GatewayRespondText(c, HTTP_STATUS_NOT_FOUND, "not found\n", NULL);
	return GatewayRespondFile(c, fd, (uint64) st.st_size, content_type_for(real));
}
