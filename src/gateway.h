/*-------------------------------------------------------------------------
 *
 * gateway.h
 *	  The gateway: the HTTP/WebSocket listener of pg_durable_objects.
 *
 * One background worker (gateway.c) owns the listening socket and every
 * client connection, using libwebsockets.  Other processes never touch lws:
 * they talk to the gateway through shared memory and wake it by writing an
 * eventfd that _PG_init creates in the postmaster, so that every child
 * inherits it.  Nothing in this header needs libwebsockets.h.
 *
 * IDENTIFICATION
 *	  src/gateway.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_GATEWAY_H
#define DURABLE_GATEWAY_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/spin.h"

/* settings of the gateway (defined in pg_durable_objects.c) */
extern char *durable_listen_address;
extern int	durable_port;
extern char *durable_static_dir;
extern char *durable_ssl_cert_file;
extern char *durable_ssl_key_file;
extern int	durable_max_sockets;
extern int	durable_socket_buffer_bytes;
extern char *durable_allowed_origins;

/* the gateway's state in shared memory (its own ShmemInitStruct) */
typedef struct DurableGatewayShared
{
	slock_t		mutex;			/* protects pid and generation */
	pid_t		pid;			/* 0 while the gateway is not running */
	uint32		generation;		/* bumped each time the gateway exits */
	pg_atomic_uint64 http_requests; /* HTTP requests answered, ever */
	pg_atomic_uint32 sockets_open;	/* WebSockets open now */
	pg_atomic_uint64 next_socket;	/* last socket id handed out */
	pg_atomic_uint64 frames_in;
	pg_atomic_uint64 frames_out;
	pg_atomic_uint64 bytes_in;
	pg_atomic_uint64 bytes_out;
	pg_atomic_uint64 slow_closes;	/* sockets closed as slow consumers */
} DurableGatewayShared;

extern bool DurableGatewayEnabled(void);
extern void DurableGatewayInit(void);
extern void DurableGatewayRegister(void);
extern void DurableGatewayShmemRequest(void);
extern void DurableGatewayShmemStartup(void);
extern DurableGatewayShared *DurableGateway(void);
extern void DurableGatewayWake(void);

extern PGDLLEXPORT void DurableGatewayMain(Datum main_arg);

#endif							/* DURABLE_GATEWAY_H */
