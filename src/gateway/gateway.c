/*-------------------------------------------------------------------------
 *
 * gateway.c
 *	  The gateway worker: the libwebsockets HTTP and WebSocket listener.
 *
 * One background worker, registered by _PG_init when durable.listen_address
 * is not empty, listens on durable.listen_address:durable.port (TLS when both
 * durable.ssl_cert_file and durable.ssl_key_file are set).  It is attached to
 * shared memory but not to a database: it reads host state from shared
 * memory, gets the class directory and the hosts' answers as messages
 * (inbox.c), and hands socket frames and HTTP calls to the hosts through
 * their rings (routes.c).
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
 * Connections.  lws accepts them as raw sockets (TLS included) and the
 * gateway speaks HTTP/1.1 and WebSocket itself (wsframe.c says why); lws
 * also keeps each connection's time bound (gateway_int.h lists them), and
 * TCP keepalive finds peers that vanished.
 *
 * Rules for the gateway's files (gateway_int.h lists them): nothing may
 * ereport(ERROR) inside an lws callback, because a longjmp through lws would
 * corrupt its state; buffers are therefore malloc'd and failures become an
 * HTTP 500/503, a close with 1011/1013 or a closed connection.  What can
 * still raise an ERROR (the shared message area) is caught by the error
 * boundaries of dispatch.c and of the timers here.  Nothing may block the
 * loop.
 *
 * IDENTIFICATION
 *	  src/gateway/gateway.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"
#include "shared/area.h"
#include "shared/epochs.h"
#include "shared/hosts.h"

#include <arpa/inet.h>
#include <ev.h>
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
#include "utils/memutils.h"
#include "utils/wait_event.h"

/*
 * The gateway never asks for more descriptors than this, whatever the hard
 * limit: lws sizes its fd tables by the soft limit.
 */
#define GATEWAY_MAX_FDS			(1024 * 1024)

/* wait before exiting (to be restarted) when the listener cannot be created */
#define GATEWAY_RETRY_MS		5000

/* gateway process state */
static struct lws_context *gateway_context = NULL;
static struct ev_loop *gateway_loop = NULL; /* libev's loop; NULL: lws' own */
static lws_sorted_usec_list_t gateway_tick;

/*
 * Level of lws error lines in the server log: LOG while the listener is set
 * up (they explain why it failed), DEBUG1 once it serves, where clients can
 * provoke them (oversized headers, TLS garbage) and must not flood the log.
 */
static int	gateway_lws_error_level = LOG;

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
 * gateway_tick_callback
 *		Every second: the safety net for a missed wake, and periodic work
 *		(slow consumers, HTTP calls waiting too long).
 */
static void
gateway_tick_callback(lws_sorted_usec_list_t *sul)
{
	MemoryContext context = CurrentMemoryContext;

	if (!PostmasterIsAlive())
	{
		gateway_postmaster_died = true;
		gateway_stop = true;
		return;
	}
	PG_TRY();
	{
		GatewayInboxDrain();
		GatewayFramesTick();
		GatewayHttpTick();
	}
	PG_CATCH();
	{
		GatewayCatchError(context, "periodic work");
	}
	PG_END_TRY();
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
	DurableGatewayStopped();
}

/*
 * create_context
 *		The lws context on a libev loop of ours (epoll: a wake-up costs the same
 *		whatever the number of open sockets, where lws' own loop poll()s every
 *		descriptor each time; measured in figure 6 of make bench).  The loop is
 *		ours ("foreign" to lws), so that ev_run(EVRUN_ONCE) returns after each
 *		wait, as lws_service() does, and the flags set by signals are seen.
 *		lws loads its libev plugin (Debian's libwebsockets-evlib-ev, a
 *		dependency of libwebsockets-dev); without it, lws' own poll() loop.
 */
static struct lws_context *
create_context(struct lws_context_creation_info *info)
{
	static void *loops[1];
	struct lws_context *context;

	gateway_loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (gateway_loop != NULL)
	{
		loops[0] = gateway_loop;
		info->options |= LWS_SERVER_OPTION_LIBEV;
		info->foreign_loops = loops;
		context = lws_create_context(info);
		if (context != NULL)
			return context;
		ev_loop_destroy(gateway_loop);
		gateway_loop = NULL;
		info->options &= ~LWS_SERVER_OPTION_LIBEV;
		info->foreign_loops = NULL;
	}
	ereport(LOG,
			(errmsg("pg_durable_objects gateway: no libev event loop for libwebsockets; using its poll() loop, whose cost grows with the number of open sockets")));
	return lws_create_context(info);
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

	if (DurableGatewayStats() == NULL || DurableGatewayWakeFd() < 0)
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
	DurableAreaAttach();
	GatewayRegistryStart();
	GatewayFramesStart();
	/* socket rows of earlier gateways are stale from now on (a new epoch) */
	DurableGatewayStarted();
	before_shmem_exit(gateway_exit, (Datum) 0);
	/* the scheduler sends the class directory to a new gateway */
	DurableWakeScheduler();

	raise_fd_limit();

	lws_set_log_level(LLL_ERR | LLL_WARN, gateway_lws_log);

	memset(&info, 0, sizeof(info));
	info.port = durable_port;
	info.protocols = gateway_protocols;
	info.gid = -1;
	info.uid = -1;
	info.server_string = "pg_durable_objects";
	/* every accepted connection is a raw socket of protocols[0] */
	info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND |
		LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
	info.listen_accept_role = "raw-skt";
	info.listen_accept_protocol = GATEWAY_PROTOCOL;
	info.pt_serv_buf_size = GATEWAY_TX_PACKET;	/* the size of a read */
	info.timeout_secs = GATEWAY_HEAD_TIMEOUT;	/* lws' own waits (TLS) */
	info.ka_time = 60;
	info.ka_probes = 5;
	info.ka_interval = 10;
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

	gateway_context = create_context(&info);
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
		!adopt_fd(vhost, DurableGatewayWakeFd(), GATEWAY_WAKE_PROTOCOL) ||
		!adopt_fd(vhost, postmaster_alive_fds[POSTMASTER_FD_WATCH], GATEWAY_PMDEATH_PROTOCOL))
	{
		lws_context_destroy(gateway_context);
		ereport(FATAL,
				(errmsg("pg_durable_objects gateway could not watch its wake and postmaster descriptors")));
	}

	lws_sul_schedule(gateway_context, 0, &gateway_tick, gateway_tick_callback,
					 LWS_USEC_PER_SEC);
	GatewayBacklogStart(gateway_context);
	gateway_lws_error_level = DEBUG1;

	ereport(LOG,
			(errmsg("pg_durable_objects gateway listening on %s port %d%s",
					durable_listen_address, durable_port, tls ? " (TLS)" : "")));

	while (!gateway_stop)
	{
		/* one turn of the loop: returns after the events of one wait */
		if (gateway_loop != NULL)
			ev_run(gateway_loop, EVRUN_ONCE);
		else if (lws_service(gateway_context, 0) < 0)
			break;
		CHECK_FOR_INTERRUPTS();
		if (gateway_reload)
		{
			gateway_reload = false;
			ProcessConfigFile(PGC_SIGHUP);
			DurableAreaApplyLimit();
		}
	}

	lws_context_destroy(gateway_context);
	gateway_context = NULL;
	if (gateway_loop != NULL)
		ev_loop_destroy(gateway_loop);
	gateway_loop = NULL;
	if (gateway_postmaster_died)
		ereport(LOG, (errmsg("pg_durable_objects gateway exiting: the postmaster died")));
	/* exit code 1: the postmaster restarts the gateway unless it is shutting down */
	proc_exit(1);
}
