/*-------------------------------------------------------------------------
 *
 * gateway.c
 *	  The gateway worker: the libwebsockets HTTP and WebSocket listener.
 *
 * One background worker, registered by _PG_init when durable.listen_address
 * is not empty, listens on durable.listen_address:durable.port (TLS when both
 * durable.ssl_cert_file and durable.ssl_key_file are set).  It is attached to
 * shared memory but not to a database: it reads host state and the class
 * directory from shared memory, and hands socket frames and HTTP calls to
 * the hosts through their queues (gateway_objects.c).
 *
 * Waking the loop.  libwebsockets 4.1 (Debian 12) has no external poll
 * support and lws_service() ignores its timeout, so a latch cannot wake the
 * gateway.  Instead _PG_init creates an eventfd in the postmaster; every child
 * inherits it, and anyone who has something for the gateway writes it
 * (DurableGatewayWake).  The gateway adopts it into lws as a RAW_FILE
 * descriptor, and does the same with the postmaster-death pipe, so lws' own
 * poll() returns for both.  SIGTERM and SIGHUP only set a flag and write the
 * eventfd; the loop acts on the flags after lws_service() returns.  A one
 * second lws_sul timer is the safety net and the place for periodic work.
 *
 * HTTP routes (HTTP/1.1 only, also over TLS):
 *	GET /healthz		200 "ok" when the gateway and every host run, else 503
 *	GET /metrics		Prometheus text format
 *	/objects/...		object routes, WebSocket upgrades included
 *						(GatewayObjectRequest, GatewayObjectUpgrade in
 *						gateway_objects.c)
 *	GET anything else	a file of durable.static_dir, or 404
 *	other methods		405; HEAD works wherever GET does
 *
 * Rules for this file: nothing here may ereport(ERROR) (or call anything that
 * can) inside an lws callback, because a longjmp through lws would corrupt
 * its state; response buffers are therefore malloc'd and failures become
 * HTTP 500 or a closed connection.  Nothing may block the loop.  The lws code
 * of the extension lives in this file and in gateway_objects.c.
 *
 * IDENTIFICATION
 *	  src/gateway.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"
#include "gateway.h"
#include "gateway_int.h"
#include "gateway_classes.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>


#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/pmsignal.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

/*
 * The gateway never asks for more descriptors than this, whatever the hard
 * limit: lws sizes its fd tables by the soft limit.
 */
#define GATEWAY_MAX_FDS			(1024 * 1024)

/* wait before exiting (to be restarted) when the listener cannot be created */
#define GATEWAY_RETRY_MS		5000

#define GATEWAY_PROTOCOL		"durable"
#define GATEWAY_WAKE_PROTOCOL	"durable-wake"
#define GATEWAY_PMDEATH_PROTOCOL "durable-pmdeath"

/* the eventfd that wakes the gateway; created in _PG_init, inherited */
static int	gateway_wake_fd = -1;

static DurableGatewayShared *gateway_shared = NULL;

/* gateway process state */
static volatile sig_atomic_t gateway_stop = false;
static volatile sig_atomic_t gateway_reload = false;
static bool gateway_postmaster_died = false;
static struct lws_context *gateway_context = NULL;
static lws_sorted_usec_list_t gateway_tick;
static int	gateway_fd_limit = 0;

/*
 * Level of lws error lines in the server log: LOG while the listener is set
 * up (they explain why it failed), DEBUG1 once it serves, where clients can
 * provoke them (oversized headers, TLS garbage) and must not flood the log.
 */
static int	gateway_lws_error_level = LOG;

/* ----------------------------------------------------------------------
 * Setup in the postmaster and shared memory
 * ----------------------------------------------------------------------
 */

/*
 * DurableGatewayEnabled
 *		Whether the gateway runs: preloaded with a non-empty listen address.
 */
bool
DurableGatewayEnabled(void)
{
	return durable_listen_address != NULL && durable_listen_address[0] != '\0';
}

/*
 * DurableGatewayInit
 *		_PG_init, in the postmaster while preloading: create the wake eventfd.
 *		It survives crash restarts (which do not re-run _PG_init) and every
 *		child inherits it.
 */
void
DurableGatewayInit(void)
{
	if (!DurableGatewayEnabled() || gateway_wake_fd >= 0)
		return;
	gateway_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (gateway_wake_fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create eventfd for the pg_durable_objects gateway: %m")));
}

/*
 * DurableGatewayRegister
 *		_PG_init: register the gateway worker, unless it is disabled.
 */
void
DurableGatewayRegister(void)
{
	BackgroundWorker worker;

	if (!DurableGatewayEnabled())
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_durable_objects");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "DurableGatewayMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "pg_durable_objects gateway");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pg_durable_objects gateway");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/*
 * DurableGatewayShmemRequest
 *		shmem_request_hook: room for the gateway's shared state.
 */
void
DurableGatewayShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(DurableGatewayShared)));
}

/*
 * DurableGatewayShmemStartup
 *		shmem_startup_hook: create or attach the gateway's shared state.
 */
void
DurableGatewayShmemStartup(void)
{
	bool		found;

	gateway_shared = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	gateway_shared = ShmemInitStruct("pg_durable_objects gateway",
									 sizeof(DurableGatewayShared), &found);
	if (!found)
	{
		memset(gateway_shared, 0, sizeof(DurableGatewayShared));
		SpinLockInit(&gateway_shared->mutex);
		pg_atomic_init_u64(&gateway_shared->http_requests, 0);
		pg_atomic_init_u32(&gateway_shared->sockets_open, 0);
		pg_atomic_init_u64(&gateway_shared->next_socket, 0);
		pg_atomic_init_u64(&gateway_shared->frames_in, 0);
		pg_atomic_init_u64(&gateway_shared->frames_out, 0);
		pg_atomic_init_u64(&gateway_shared->bytes_in, 0);
		pg_atomic_init_u64(&gateway_shared->bytes_out, 0);
		pg_atomic_init_u64(&gateway_shared->slow_closes, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * DurableGateway
 *		The gateway's shared state; NULL when the library was not preloaded.
 */
DurableGatewayShared *
DurableGateway(void)
{
	return gateway_shared;
}

/*
 * DurableGatewayWake
 *		Make the gateway's event loop run.  Never blocks, never throws and is
 *		async-signal-safe; wakes coalesce.
 */
void
DurableGatewayWake(void)
{
	uint64		one = 1;
	int			fd = gateway_wake_fd;

	if (fd >= 0)
	{
		ssize_t		rc pg_attribute_unused();

		rc = write(fd, &one, sizeof(one));
	}
}

/* ----------------------------------------------------------------------
 * Response helpers (lws callback context: must not throw)
 * ----------------------------------------------------------------------
 */

void
GatewayBufInit(GatewayBuf *buf, size_t cap)
{
	buf->len = 0;
	buf->cap = cap;
	buf->failed = false;
	buf->data = malloc(LWS_PRE + cap + 1);
	if (buf->data == NULL)
	{
		buf->cap = 0;
		buf->failed = true;
	}
}

static bool
buf_reserve(GatewayBuf *buf, size_t more)
{
	unsigned char *grown;
	size_t		cap;

	if (buf->failed)
		return false;
	if (buf->len + more <= buf->cap)
		return true;
	cap = Max(buf->cap * 2, buf->len + more);
	grown = realloc(buf->data, LWS_PRE + cap + 1);
	if (grown == NULL)
	{
		buf->failed = true;
		return false;
	}
	buf->data = grown;
	buf->cap = cap;
	return true;
}

void
GatewayBufAppend(GatewayBuf *buf, const char *s, size_t n)
{
	if (!buf_reserve(buf, n))
		return;
	memcpy(buf->data + LWS_PRE + buf->len, s, n);
	buf->len += n;
}

void
GatewayBufPrintf(GatewayBuf *buf, const char *fmt,...) pg_attribute_printf(2, 3);

void
GatewayBufPrintf(GatewayBuf *buf, const char *fmt,...)
{
	for (;;)
	{
		va_list		args;
		int			n;
		size_t		room = buf->cap - buf->len + 1;

		if (buf->failed)
			return;
		va_start(args, fmt);
		n = vsnprintf((char *) buf->data + LWS_PRE + buf->len, room, fmt, args);
		va_end(args);
		if (n < 0)
		{
			buf->failed = true;
			return;
		}
		if ((size_t) n < room)
		{
			buf->len += n;
			return;
		}
		if (!buf_reserve(buf, n))
			return;
	}
}

/* append s as a JSON string literal */
void
GatewayBufAppendJsonString(GatewayBuf *buf, const char *s)
{
	const unsigned char *p;

	GatewayBufAppend(buf, "\"", 1);
	for (p = (const unsigned char *) s; *p; p++)
	{
		switch (*p)
		{
			case '"':
				GatewayBufAppend(buf, "\\\"", 2);
				break;
			case '\\':
				GatewayBufAppend(buf, "\\\\", 2);
				break;
			case '\n':
				GatewayBufAppend(buf, "\\n", 2);
				break;
			default:
				if (*p < 0x20)
					GatewayBufPrintf(buf, "\\u%04x", *p);
				else
					GatewayBufAppend(buf, (const char *) p, 1);
				break;
		}
	}
	GatewayBufAppend(buf, "\"", 1);
}

void
GatewayBufFree(GatewayBuf *buf)
{
	free(buf->data);
	buf->data = NULL;
}

static void
session_reset(GatewaySession *pss)
{
	if (pss == NULL)
		return;
	free(pss->out);
	pss->out = NULL;
	pss->out_len = 0;
	pss->out_sent = 0;
}

/*
 * response_done
 *		The response is out: get ready for the next request on the connection,
 *		or tell lws to close it.  Returns the callback's return value.
 */
static int
response_done(struct lws *wsi, GatewaySession *pss)
{
	session_reset(pss);
	if (pss != NULL && pss->close_after)
		return -1;
	if (lws_http_transaction_completed(wsi))
		return -1;
	return 0;
}

/*
 * GatewayRespondBuf
 *		Send a response whose body is in buf (taking it over; buf may be NULL
 *		for an empty body).  Headers are written now, the body from
 *		LWS_CALLBACK_HTTP_WRITEABLE.  Returns the callback's return value.
 */
int
GatewayRespondBuf(struct lws *wsi, GatewaySession *pss, unsigned int status,
			const char *content_type, GatewayBuf *buf, bool head_only,
			const char *allow)
{
	unsigned char headers[LWS_PRE + 1024];
	unsigned char *start = headers + LWS_PRE;
	unsigned char *p = start;
	unsigned char *end = headers + sizeof(headers) - 1;
	size_t		len = buf ? buf->len : 0;

	if (pss == NULL)
	{
		/* not an HTTP connection of protocols[0]: cannot happen, hang up */
		if (buf)
			GatewayBufFree(buf);
		return -1;
	}
	if (buf != NULL && buf->failed)
	{
		/* out of memory while building the body */
		GatewayBufFree(buf);
		buf = NULL;
		len = 0;
		status = HTTP_STATUS_INTERNAL_SERVER_ERROR;
		content_type = "text/plain; charset=utf-8";
	}

	session_reset(pss);
	if (lws_add_http_common_headers(wsi, status, content_type, (lws_filepos_t) len,
									&p, end) ||
		lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
									 (const unsigned char *) "no-store", 8, &p, end) ||
		lws_add_http_header_by_name(wsi, (const unsigned char *) "x-content-type-options:",
									(const unsigned char *) "nosniff", 7, &p, end) ||
		(allow != NULL &&
		 lws_add_http_header_by_name(wsi, (const unsigned char *) "allow:",
									 (const unsigned char *) allow, (int) strlen(allow),
									 &p, end)) ||
		(pss->close_after &&
		 lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
									  (const unsigned char *) "close", 5, &p, end)) ||
		lws_finalize_write_http_header(wsi, start, &p, end))
	{
		if (buf)
			GatewayBufFree(buf);
		return -1;
	}

	if (head_only || len == 0)
	{
		if (buf)
			GatewayBufFree(buf);
		return response_done(wsi, pss);
	}

	pss->out = buf->data;
	pss->out_len = len;
	pss->out_sent = 0;
	buf->data = NULL;
	lws_callback_on_writable(wsi);
	return 0;
}

/*
 * GatewayRespondNow
 *		Headers and a short body in one write, for the callbacks where lws
 *		wants the whole answer at once (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE).
 *		Returns 1 (answered), or -1 to hang up if it could not be written.
 */
int
GatewayRespondNow(struct lws *wsi, unsigned int status, const char *content_type,
			const char *body)
{
	unsigned char out[LWS_PRE + 2048];
	unsigned char *start = out + LWS_PRE;
	unsigned char *p = start;
	unsigned char *end = out + sizeof(out) - 1;
	size_t		len = strlen(body);

	if (lws_add_http_common_headers(wsi, status, content_type, (lws_filepos_t) len,
									&p, end) ||
		lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
									 (const unsigned char *) "close", 5, &p, end) ||
		lws_finalize_http_header(wsi, &p, end) ||
		(size_t) (end - p) < len)
		return -1;
	memcpy(p, body, len);
	p += len;
	if (lws_write(wsi, start, p - start, LWS_WRITE_HTTP_HEADERS) != (int) (p - start))
		return -1;
	return 1;
}

/*
 * GatewayRespondText
 *		A short plain-text response.
 */
int
GatewayRespondText(struct lws *wsi, GatewaySession *pss, unsigned int status,
			 const char *text, bool head_only, const char *allow)
{
	GatewayBuf	buf;

	GatewayBufInit(&buf, strlen(text));
	GatewayBufAppend(&buf, text, strlen(text));
	return GatewayRespondBuf(wsi, pss, status, "text/plain; charset=utf-8", &buf,
					   head_only, allow);
}

/*
 * GatewayRespondError
 *		A JSON error in the shape of the WebSocket/HTTP protocol:
 *		{"error": {"code": "SQLSTATE", "message": "..."}}
 */
int
GatewayRespondError(struct lws *wsi, GatewaySession *pss, unsigned int status,
			  const char *sqlstate, const char *message, bool head_only)
{
	GatewayBuf	buf;

	GatewayBufInit(&buf, 128 + strlen(message));
	GatewayBufAppend(&buf, "{\"error\": {\"code\": ", 19);
	GatewayBufAppendJsonString(&buf, sqlstate);
	GatewayBufAppend(&buf, ", \"message\": ", 13);
	GatewayBufAppendJsonString(&buf, message);
	GatewayBufAppend(&buf, "}}\n", 3);
	return GatewayRespondBuf(wsi, pss, status, "application/json", &buf, head_only, NULL);
}

/*
 * write_body
 *		LWS_CALLBACK_HTTP_WRITEABLE: write the next piece of the pending body.
 */
static int
write_body(struct lws *wsi, GatewaySession *pss)
{
	size_t		chunk;
	bool		final;

	if (pss == NULL || pss->out == NULL)
		return 0;
	chunk = Min(pss->out_len - pss->out_sent, GATEWAY_WRITE_CHUNK);
	final = (pss->out_sent + chunk == pss->out_len);
	if (lws_write(wsi, pss->out + LWS_PRE + pss->out_sent, chunk,
				  final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int) chunk)
		return -1;
	pss->out_sent += chunk;
	if (!final)
	{
		lws_callback_on_writable(wsi);
		return 0;
	}
	return response_done(wsi, pss);
}

/* ----------------------------------------------------------------------
 * Routes
 * ----------------------------------------------------------------------
 */

static GatewayMethod
request_method(struct lws *wsi)
{
	char	   *uri;
	int			urilen;
	char		method[16];

	switch (lws_http_get_uri_and_method(wsi, &uri, &urilen))
	{
		case LWSHUMETH_GET:
			return GATEWAY_GET;
		case LWSHUMETH_HEAD:
			return GATEWAY_HEAD;
		case LWSHUMETH_POST:
			return GATEWAY_POST;
		case LWSHUMETH_COLON_PATH:
			/* HTTP/2: the method is a pseudo-header */
			if (lws_hdr_copy(wsi, method, sizeof(method), WSI_TOKEN_HTTP_COLON_METHOD) > 0)
			{
				if (strcmp(method, "GET") == 0)
					return GATEWAY_GET;
				if (strcmp(method, "HEAD") == 0)
					return GATEWAY_HEAD;
				if (strcmp(method, "POST") == 0)
					return GATEWAY_POST;
			}
			return GATEWAY_OTHER;
		default:
			return GATEWAY_OTHER;
	}
}

/*
 * gateway_healthz
 *		GET /healthz: 200 when the gateway (this process) and every host run,
 *		and the gateway knows the classes (it can route object requests).
 */
static int
gateway_healthz(struct lws *wsi, GatewaySession *pss, bool head_only)
{
	GatewayBuf	buf;
	bool		healthy = true;
	int			i;

	GatewayBufInit(&buf, 256);
	for (i = 0; i < DurableHostCount(); i++)
	{
		DurableHostShared *host = DurableHost(i);
		pid_t		pid;

		SpinLockAcquire(&host->mutex);
		pid = host->pid;
		SpinLockRelease(&host->mutex);
		if (pid == 0)
		{
			if (healthy)
				GatewayBufPrintf(&buf, "unavailable\n");
			healthy = false;
			GatewayBufPrintf(&buf, "host %d is not running\n", i);
		}
	}
	if (!GatewayClassesLoaded())
	{
		if (healthy)
			GatewayBufPrintf(&buf, "unavailable\n");
		healthy = false;
		GatewayBufPrintf(&buf, "the class directory has not arrived yet\n");
	}
	if (healthy)
		GatewayBufPrintf(&buf, "ok\n");
	return GatewayRespondBuf(wsi, pss,
					   healthy ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE,
					   "text/plain; charset=utf-8", &buf, head_only, NULL);
}

static void
metric_header(GatewayBuf *buf, const char *name, const char *type, const char *help)
{
	GatewayBufPrintf(buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * gateway_metrics
 *		GET /metrics: Prometheus text exposition format 0.0.4.
 */
static int
gateway_metrics(struct lws *wsi, GatewaySession *pss, bool head_only)
{
	GatewayBuf	buf;
	int			nhosts = DurableHostCount();
	pid_t		pids[DURABLE_MAX_HOSTS];
	uint64		depth[DURABLE_MAX_HOSTS];
	int			i;

	for (i = 0; i < nhosts; i++)
	{
		DurableHostShared *host = DurableHost(i);

		SpinLockAcquire(&host->mutex);
		pids[i] = host->pid;
		depth[i] = host->head - host->tail;
		SpinLockRelease(&host->mutex);
	}

	GatewayBufInit(&buf, 4096);

	metric_header(&buf, "durable_calls_total", "counter",
				  "Calls run by each host worker (counters restart at a crash restart).");
	for (i = 0; i < nhosts; i++)
		GatewayBufPrintf(&buf, "durable_calls_total{host=\"%d\"} " UINT64_FORMAT "\n", i,
				   pg_atomic_read_u64(&DurableHost(i)->calls));

	metric_header(&buf, "durable_errors_total", "counter",
				  "Calls that ended in an error, per host worker.");
	for (i = 0; i < nhosts; i++)
		GatewayBufPrintf(&buf, "durable_errors_total{host=\"%d\"} " UINT64_FORMAT "\n", i,
				   pg_atomic_read_u64(&DurableHost(i)->errors));

	metric_header(&buf, "durable_batches_total", "counter",
				  "Batches (one transaction each) in which the host worker ran calls.");
	for (i = 0; i < nhosts; i++)
		GatewayBufPrintf(&buf, "durable_batches_total{host=\"%d\"} " UINT64_FORMAT "\n", i,
				   pg_atomic_read_u64(&DurableHost(i)->batches));

	metric_header(&buf, "durable_queue_depth", "gauge",
				  "Calls waiting in the queue of each host worker.");
	for (i = 0; i < nhosts; i++)
		GatewayBufPrintf(&buf, "durable_queue_depth{host=\"%d\"} " UINT64_FORMAT "\n", i, depth[i]);

	metric_header(&buf, "durable_objects_in_memory", "gauge",
				  "Objects held in host memory (called within durable.idle_timeout).");
	for (i = 0; i < nhosts; i++)
		GatewayBufPrintf(&buf, "durable_objects_in_memory{host=\"%d\"} %u\n", i,
				   pg_atomic_read_u32(&DurableHost(i)->objects));

	metric_header(&buf, "durable_host_up", "gauge",
				  "1 if the host worker is running, else 0.");
	for (i = 0; i < nhosts; i++)
		GatewayBufPrintf(&buf, "durable_host_up{host=\"%d\"} %d\n", i, pids[i] != 0 ? 1 : 0);

	metric_header(&buf, "durable_sockets_open", "gauge",
				  "WebSocket connections open on the gateway.");
	GatewayBufPrintf(&buf, "durable_sockets_open %u\n",
			   pg_atomic_read_u32(&gateway_shared->sockets_open));

	metric_header(&buf, "durable_call_latency_seconds", "histogram",
				  "Time from a call's enqueue to its answer (after commit), per host worker.");
	for (i = 0; i < nhosts; i++)
	{
		uint64		cumulative = 0;
		int			b;

		for (b = 0; b <= DURABLE_LATENCY_BUCKETS; b++)
		{
			cumulative += pg_atomic_read_u64(&DurableHost(i)->latency[b]);
			if (b < DURABLE_LATENCY_BUCKETS)
				GatewayBufPrintf(&buf, "durable_call_latency_seconds_bucket{host=\"%d\",le=\"%g\"} "
								 UINT64_FORMAT "\n", i, durable_latency_bounds_ms[b] / 1000.0,
								 cumulative);
			else
				GatewayBufPrintf(&buf, "durable_call_latency_seconds_bucket{host=\"%d\",le=\"+Inf\"} "
								 UINT64_FORMAT "\n", i, cumulative);
		}
		GatewayBufPrintf(&buf, "durable_call_latency_seconds_sum{host=\"%d\"} %.6f\n", i,
						 pg_atomic_read_u64(&DurableHost(i)->latency_sum_us) / 1000000.0);
		GatewayBufPrintf(&buf, "durable_call_latency_seconds_count{host=\"%d\"} " UINT64_FORMAT "\n",
						 i, cumulative);
	}

	metric_header(&buf, "durable_frames_in_total", "counter",
				  "WebSocket frames received from clients.");
	GatewayBufPrintf(&buf, "durable_frames_in_total " UINT64_FORMAT "\n",
					 pg_atomic_read_u64(&gateway_shared->frames_in));
	metric_header(&buf, "durable_frames_out_total", "counter",
				  "WebSocket frames sent to clients.");
	GatewayBufPrintf(&buf, "durable_frames_out_total " UINT64_FORMAT "\n",
					 pg_atomic_read_u64(&gateway_shared->frames_out));
	metric_header(&buf, "durable_bytes_in_total", "counter",
				  "WebSocket payload bytes received from clients.");
	GatewayBufPrintf(&buf, "durable_bytes_in_total " UINT64_FORMAT "\n",
					 pg_atomic_read_u64(&gateway_shared->bytes_in));
	metric_header(&buf, "durable_bytes_out_total", "counter",
				  "WebSocket payload bytes sent to clients.");
	GatewayBufPrintf(&buf, "durable_bytes_out_total " UINT64_FORMAT "\n",
					 pg_atomic_read_u64(&gateway_shared->bytes_out));
	metric_header(&buf, "durable_slow_consumer_closes_total", "counter",
				  "Sockets closed (1008) because they queued more than durable.socket_buffer_bytes.");
	GatewayBufPrintf(&buf, "durable_slow_consumer_closes_total " UINT64_FORMAT "\n",
					 pg_atomic_read_u64(&gateway_shared->slow_closes));

	metric_header(&buf, "durable_http_requests_total", "counter",
				  "HTTP requests received by the gateway, this one included.");
	GatewayBufPrintf(&buf, "durable_http_requests_total " UINT64_FORMAT "\n",
			   pg_atomic_read_u64(&gateway_shared->http_requests));

	metric_header(&buf, "durable_gateway_max_fds", "gauge",
				  "Open file limit of the gateway process (caps its connections).");
	GatewayBufPrintf(&buf, "durable_gateway_max_fds %d\n", gateway_fd_limit);

	return GatewayRespondBuf(wsi, pss, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
					   &buf, head_only, NULL);
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
 * gateway_static
 *		GET/HEAD of a file below durable.static_dir ("/" is index.html, so is
 *		any directory).  Paths with ".." segments, and files whose real path
 *		(symbolic links resolved) is outside the folder, are refused.
 */
static int
gateway_static(struct lws *wsi, GatewaySession *pss, const char *path, bool head_only)
{
	char		root[PATH_MAX];
	char		want[PATH_MAX];
	char		real[PATH_MAX];
	size_t		rootlen;
	struct stat st;
	const char *type;
	int			n;

	if (durable_static_dir == NULL || durable_static_dir[0] == '\0')
		return GatewayRespondText(wsi, pss, HTTP_STATUS_NOT_FOUND, "not found\n", head_only, NULL);
	if (path[0] != '/' || path_has_dotdot(path) || strchr(path, '\\') != NULL)
		return GatewayRespondText(wsi, pss, HTTP_STATUS_FORBIDDEN, "forbidden\n", head_only, NULL);
	if (realpath(durable_static_dir, root) == NULL)
		return GatewayRespondText(wsi, pss, HTTP_STATUS_NOT_FOUND, "not found\n", head_only, NULL);
	rootlen = strlen(root);

	n = snprintf(want, sizeof(want), "%s%s%s", root, path,
				 path[strlen(path) - 1] == '/' ? "index.html" : "");
	if (n < 0 || n >= (int) sizeof(want) || realpath(want, real) == NULL ||
		stat(real, &st) != 0)
		return GatewayRespondText(wsi, pss, HTTP_STATUS_NOT_FOUND, "not found\n", head_only, NULL);
	if (S_ISDIR(st.st_mode))
	{
		n = snprintf(want, sizeof(want), "%s/index.html", real);
		if (n < 0 || n >= (int) sizeof(want) || realpath(want, real) == NULL ||
			stat(real, &st) != 0)
			return GatewayRespondText(wsi, pss, HTTP_STATUS_NOT_FOUND, "not found\n", head_only, NULL);
	}
	if (strncmp(real, root, rootlen) != 0 ||
		(real[rootlen] != '/' && !(rootlen == 1 && root[0] == '/')))
		return GatewayRespondText(wsi, pss, HTTP_STATUS_FORBIDDEN, "forbidden\n", head_only, NULL);
	if (!S_ISREG(st.st_mode))
		return GatewayRespondText(wsi, pss, HTTP_STATUS_NOT_FOUND, "not found\n", head_only, NULL);

	type = content_type_for(real);
	if (head_only)
	{
		unsigned char headers[LWS_PRE + 512];
		unsigned char *start = headers + LWS_PRE;
		unsigned char *p = start;
		unsigned char *end = headers + sizeof(headers) - 1;

		if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, type,
										(lws_filepos_t) st.st_size, &p, end) ||
			lws_finalize_write_http_header(wsi, start, &p, end))
			return -1;
		return response_done(wsi, pss);
	}

	n = lws_serve_http_file(wsi, real, type, NULL, 0);
	if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
		return -1;
	return 0;
}

/*
 * gateway_http_request
 *		LWS_CALLBACK_HTTP: route one request.
 */
static int
gateway_http_request(struct lws *wsi, GatewaySession *pss, const char *path)
{
	GatewayMethod method = request_method(wsi);
	bool		head_only = (method == GATEWAY_HEAD);

	pg_atomic_fetch_add_u64(&gateway_shared->http_requests, 1);
	if (pss != NULL)
	{
		session_reset(pss);
		/* a request body we do not read ends the connection after the reply */
		pss->close_after = (method != GATEWAY_GET && method != GATEWAY_HEAD);
	}

	if (strcmp(path, "/objects") == 0 || strncmp(path, "/objects/", 9) == 0)
		return GatewayObjectRequest(wsi, pss, method, path);

	if (method != GATEWAY_GET && method != GATEWAY_HEAD)
		return GatewayRespondText(wsi, pss, HTTP_STATUS_METHOD_NOT_ALLOWED,
							"method not allowed\n", false, "GET, HEAD");
	if (strcmp(path, "/healthz") == 0)
		return gateway_healthz(wsi, pss, head_only);
	if (strcmp(path, "/metrics") == 0)
		return gateway_metrics(wsi, pss, head_only);
	return gateway_static(wsi, pss, path, head_only);
}

/* ----------------------------------------------------------------------
 * lws callbacks
 * ----------------------------------------------------------------------
 */

/*
 * gateway_callback
 *		protocols[0]: every HTTP connection and object WebSocket.
 */
static int
gateway_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
				 void *in, size_t len)
{
	GatewaySession *pss = (GatewaySession *) user;
	int			result;

	/* WebSockets of objects, HTTP call bodies and their late answers */
	if (GatewayObjectCallback(wsi, reason, pss, in, len, &result))
		return result;

	switch (reason)
	{
		case LWS_CALLBACK_HTTP:
			{
				char		path[1024];

				/* in: the request path, without the query string */
				if (in == NULL || len == 0)
					return GatewayRespondText(wsi, pss, HTTP_STATUS_BAD_REQUEST,
										"bad request path\n", false, NULL);
				if (len >= sizeof(path))
					return GatewayRespondText(wsi, pss, HTTP_STATUS_REQ_URI_TOO_LONG,
										"request path too long\n", false, NULL);
				memcpy(path, in, len);
				path[len] = '\0';
				return gateway_http_request(wsi, pss, path);
			}

		case LWS_CALLBACK_HTTP_WRITEABLE:
			return write_body(wsi, pss);

		case LWS_CALLBACK_HTTP_BODY:
			/* bodies are not read yet: the reply went out, the connection closes */
			return 0;

		case LWS_CALLBACK_HTTP_BODY_COMPLETION:
			return 0;

		case LWS_CALLBACK_HTTP_FILE_COMPLETION:
			if (lws_http_transaction_completed(wsi))
				return -1;
			return 0;

		case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
			{
				char		path[1024];
				int			n;

				/*
				 * in: the protocol asked for ("websocket"); the path is the GET
				 * URI header (lws_http_get_uri_and_method's length can include
				 * the separator that follows it).
				 */
				n = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);
				if (n <= 0)
					return -1;
				return GatewayObjectUpgrade(wsi, pss, path);
			}

		case LWS_CALLBACK_CLOSED_HTTP:
			session_reset(pss);
			return 0;

		default:
			break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/*
 * gateway_wake_callback
 *		The wake eventfd is readable: somebody has work for the gateway, or a
 *		signal arrived.  Reset the counter; the loop checks its flags.
 */
static int
gateway_wake_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
					  void *in, size_t len)
{
	uint64		value;

	switch (reason)
	{
		case LWS_CALLBACK_RAW_RX_FILE:
			while (read(lws_get_socket_fd(wsi), &value, sizeof(value)) > 0)
				;
			GatewayObjectsDrain();
			return 0;

		case LWS_CALLBACK_RAW_CLOSE_FILE:
			/* cannot be woken any more (or the context is going): leave */
			gateway_stop = true;
			return 0;

		default:
			return 0;
	}
}

/*
 * gateway_pmdeath_callback
 *		The postmaster-death pipe became readable or closed: leave.
 */
static int
gateway_pmdeath_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
						 void *in, size_t len)
{
	switch (reason)
	{
		case LWS_CALLBACK_RAW_RX_FILE:
			gateway_postmaster_died = true;
			gateway_stop = true;
			return -1;

		case LWS_CALLBACK_RAW_CLOSE_FILE:
			/* closed other than by us or by lws_context_destroy: restart */
			gateway_stop = true;
			return 0;

		default:
			return 0;
	}
}

static const struct lws_protocols gateway_protocols[] = {
	/* first: WebSocket clients that name no subprotocol bind to protocols[0] */
	{
		.name = GATEWAY_PROTOCOL,
		.callback = gateway_callback,
		.per_session_data_size = sizeof(GatewaySession),
		.tx_packet_size = GATEWAY_TX_PACKET
	},
	{.name = GATEWAY_WAKE_PROTOCOL, .callback = gateway_wake_callback},
	{.name = GATEWAY_PMDEATH_PROTOCOL, .callback = gateway_pmdeath_callback},
	{NULL}
};

/*
 * gateway_tick_callback
 *		Every second: the safety net for a missed wake, and periodic work.
 */
static void
gateway_tick_callback(lws_sorted_usec_list_t *sul)
{
	if (!PostmasterIsAlive())
	{
		gateway_postmaster_died = true;
		gateway_stop = true;
		return;
	}
	lws_sul_schedule(gateway_context, 0, &gateway_tick, gateway_tick_callback,
					 LWS_USEC_PER_SEC);
}

/*
 * gateway_lws_log
 *		lws log lines go to the server log: errors at gateway_lws_error_level,
 *		warnings at DEBUG1.
 */
static void
gateway_lws_log(int level, const char *line)
{
	int			len = (int) strlen(line);

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	ereport(level == LLL_ERR ? gateway_lws_error_level : DEBUG1,
			(errmsg_internal("pg_durable_objects gateway: libwebsockets: %.*s", len, line)));
}

/* ----------------------------------------------------------------------
 * The worker
 * ----------------------------------------------------------------------
 */

static void
gateway_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	gateway_stop = true;
	DurableGatewayWake();
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
gateway_sighup(SIGNAL_ARGS)
{
	int			save_errno = errno;

	gateway_reload = true;
	DurableGatewayWake();
	SetLatch(MyLatch);
	errno = save_errno;
}

/*
 * gateway_exit
 *		before_shmem_exit callback: the gateway is gone.
 */
static void
gateway_exit(int code, Datum arg)
{
	DurableSetGatewayEpoch(0);
	SpinLockAcquire(&gateway_shared->mutex);
	gateway_shared->pid = 0;
	gateway_shared->generation++;
	SpinLockRelease(&gateway_shared->mutex);
	pg_atomic_write_u32(&gateway_shared->sockets_open, 0);
}

/*
 * raise_fd_limit
 *		Each connection takes a descriptor, and the inherited soft limit is
 *		often 1024: raise it to the hard limit (capped at GATEWAY_MAX_FDS, as
 *		lws allocates tables of that size).
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t		want;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
	{
		ereport(LOG, (errmsg("pg_durable_objects gateway: getrlimit failed: %m")));
		return;
	}
	want = rl.rlim_max;
	if (want == RLIM_INFINITY || want > GATEWAY_MAX_FDS)
		want = GATEWAY_MAX_FDS;
	if (rl.rlim_cur != want)
	{
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			ereport(LOG, (errmsg("pg_durable_objects gateway: could not raise the open file limit to %lu: %m",
								 (unsigned long) want)));
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		gateway_fd_limit = (rl.rlim_cur > INT_MAX) ? INT_MAX : (int) rl.rlim_cur;
	if (gateway_fd_limit < durable_max_sockets + 64)
		ereport(LOG,
				(errmsg("pg_durable_objects gateway can open at most %d files, too few for durable.max_sockets = %d",
						gateway_fd_limit, durable_max_sockets),
				 errhint("Raise the hard limit on open files of the server (ulimit -Hn, or LimitNOFILE in its systemd unit).")));
}

/*
 * pause_before_restart
 *		The listener cannot be set up: wait a little before exiting to be
 *		restarted, so that a busy port or a missing address does not write
 *		the log full every second.
 */
static void
pause_before_restart(void)
{
	if (!gateway_stop)
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 GATEWAY_RETRY_MS, PG_WAIT_EXTENSION);
}

/*
 * listen_iface
 *		What to tell lws to bind, from durable.listen_address: "" for every
 *		address ("*"), a numeric address or an interface name.  A host name is
 *		resolved to its first address.  *ipv4 is set for IPv4 addresses, which
 *		need lws' IPv6 switched off: lws 4.1 with IPv6 on binds an IPv4
 *		address as the IPv6 wildcard, that is on every address.
 */
static bool
listen_iface(const char *address, char *iface, size_t size, bool *ipv4)
{
	struct in_addr a4;
	struct in6_addr a6;
	struct addrinfo hints;
	struct addrinfo *res;
	struct addrinfo *ai;
	bool		found = false;

	*ipv4 = false;
	iface[0] = '\0';
	if (strcmp(address, "*") == 0)
		return true;
	if (inet_pton(AF_INET, address, &a4) == 1)
	{
		*ipv4 = true;
		strlcpy(iface, address, size);
		return true;
	}
	if (inet_pton(AF_INET6, address, &a6) == 1 || if_nametoindex(address) != 0)
	{
		strlcpy(iface, address, size);
		return true;
	}

	/* a host name: once, at start, so its lookup cannot stall serving */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(address, NULL, &hints, &res) != 0)
		return false;
	/* prefer IPv4, as "localhost" users expect 127.0.0.1 */
	for (ai = res; ai != NULL && !found; ai = ai->ai_next)
		if (ai->ai_family == AF_INET &&
			inet_ntop(AF_INET, &((struct sockaddr_in *) ai->ai_addr)->sin_addr,
					  iface, size) != NULL)
			found = *ipv4 = true;
	for (ai = res; ai != NULL && !found; ai = ai->ai_next)
		if (ai->ai_family == AF_INET6 &&
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr,
					  iface, size) != NULL)
			found = true;
	freeaddrinfo(res);
	return found;
}

/*
 * adopt_fd
 *		Make lws poll fd and call protocol's callback when it is readable.
 *		lws gets a duplicate, which it closes on failure, when the callback
 *		returns -1 and when the context is destroyed: the original stays open
 *		for its other users (DurableGatewayWake, PostmasterIsAlive), so its
 *		number can never be reused by a client socket while they still use it.
 */
static bool
adopt_fd(struct lws_vhost *vhost, int fd, const char *protocol)
{
	lws_sock_file_fd_type desc;

	desc.filefd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (desc.filefd < 0)
	{
		ereport(LOG,
				(errmsg("pg_durable_objects gateway could not duplicate a descriptor: %m")));
		return false;
	}
	return lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC, desc,
									  protocol, NULL) != NULL;
}

/*
 * DurableGatewayMain
 *		Entry point of the gateway worker.
 */
void
DurableGatewayMain(Datum main_arg)
{
	struct lws_context_creation_info info;
	struct lws_vhost *vhost;
	bool		tls;
	bool		ipv4;
	char		iface[INET6_ADDRSTRLEN + IF_NAMESIZE];

	pqsignal(SIGTERM, gateway_sigterm);
	pqsignal(SIGHUP, gateway_sighup);
	pqsignal(SIGPIPE, SIG_IGN);
	BackgroundWorkerUnblockSignals();

	if (gateway_shared == NULL || gateway_wake_fd < 0)
		ereport(FATAL,
				(errmsg("pg_durable_objects gateway started without its shared state")));

	tls = (durable_ssl_cert_file[0] != '\0');
	if (tls != (durable_ssl_key_file[0] != '\0'))
	{
		/* postmaster settings: nothing changes before a restart, so do not retry */
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pg_durable_objects gateway not started: durable.ssl_cert_file and durable.ssl_key_file must both be set or both be empty")));
		proc_exit(0);
	}

	/* attach the message area now: nothing may allocate in lws callbacks */
	DurableShmemAttachArea();
	GatewayObjectsStart();
	SpinLockAcquire(&gateway_shared->mutex);
	gateway_shared->pid = MyProcPid;
	SpinLockRelease(&gateway_shared->mutex);
	pg_atomic_write_u32(&gateway_shared->sockets_open, 0);
	before_shmem_exit(gateway_exit, (Datum) 0);
	/* socket rows of earlier gateways are stale from now on */
	DurableSetGatewayEpoch(GetCurrentTimestamp());
	/* host 0 sends the class directory to a new gateway */
	DurableWakeHostForWork(0);

	raise_fd_limit();

	lws_set_log_level(LLL_ERR | LLL_WARN, gateway_lws_log);

	memset(&info, 0, sizeof(info));
	info.port = durable_port;
	info.protocols = gateway_protocols;
	info.gid = -1;
	info.uid = -1;
	info.server_string = "pg_durable_objects";
	info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
	if (!listen_iface(durable_listen_address, iface, sizeof(iface), &ipv4))
	{
		pause_before_restart();
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pg_durable_objects gateway: durable.listen_address \"%s\" is not an address of this machine",
						durable_listen_address),
				 errhint("Use an IP address, a host name, a network interface name, or * for all addresses.")));
	}
	info.iface = iface[0] ? iface : NULL;
	if (ipv4)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	/* HTTP/1.1 only: WebSockets over h2 are not worth their complexity here */
	info.alpn = "http/1.1";
	if (tls)
	{
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = durable_ssl_cert_file;
		info.ssl_private_key_filepath = durable_ssl_key_file;
	}

	gateway_context = lws_create_context(&info);
	if (gateway_context == NULL)
	{
		pause_before_restart();
		ereport(FATAL,
				(errmsg("pg_durable_objects gateway could not listen on %s port %d",
						durable_listen_address, durable_port),
				 errdetail("libwebsockets could not create its context; the server log has its reason."),
				 errhint("Check that the port is free, that durable.listen_address is an address of this machine (or *), and that the TLS certificate and key can be read.")));
	}

	vhost = lws_get_vhost_by_name(gateway_context, "default");
	if (vhost == NULL ||
		!adopt_fd(vhost, gateway_wake_fd, GATEWAY_WAKE_PROTOCOL) ||
		!adopt_fd(vhost, postmaster_alive_fds[POSTMASTER_FD_WATCH], GATEWAY_PMDEATH_PROTOCOL))
	{
		lws_context_destroy(gateway_context);
		ereport(FATAL,
				(errmsg("pg_durable_objects gateway could not watch its wake and postmaster descriptors")));
	}

	lws_sul_schedule(gateway_context, 0, &gateway_tick, gateway_tick_callback,
					 LWS_USEC_PER_SEC);
	gateway_lws_error_level = DEBUG1;

	ereport(LOG,
			(errmsg("pg_durable_objects gateway listening on %s port %d%s",
					durable_listen_address, durable_port, tls ? " (TLS)" : "")));

	while (!gateway_stop)
	{
		if (lws_service(gateway_context, 0) < 0)
			break;
		CHECK_FOR_INTERRUPTS();
		if (gateway_reload)
		{
			gateway_reload = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}

	lws_context_destroy(gateway_context);
	gateway_context = NULL;
	if (gateway_postmaster_died)
		ereport(LOG, (errmsg("pg_durable_objects gateway exiting: the postmaster died")));
	/* exit code 1: the postmaster restarts the gateway unless it is shutting down */
	proc_exit(1);
}
