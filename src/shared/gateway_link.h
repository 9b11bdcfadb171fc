/*-------------------------------------------------------------------------
 *
 * gateway_link.h
 *	  What other processes share with the gateway: its state, its queue of
 *	  messages from the hosts, and the eventfd that wakes it (gateway_link.c).
 *
 * IDENTIFICATION
 *	  src/shared/gateway_link.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_GATEWAY_LINK_H
#define DURABLE_GATEWAY_LINK_H

#include "shared/area.h"

#include "port/atomics.h"

/* counters of the gateway, for /metrics */
typedef struct DurableGatewayCounters
{
	pg_atomic_uint64 http_requests; /* HTTP requests answered, ever */
	pg_atomic_uint32 sockets_open;	/* WebSockets open now */
	pg_atomic_uint64 next_socket;	/* last socket id handed out */
	pg_atomic_uint64 frames_in;
	pg_atomic_uint64 frames_out;
	pg_atomic_uint64 bytes_in;
	pg_atomic_uint64 bytes_out;
	pg_atomic_uint64 slow_closes;	/* sockets closed as slow consumers */
	pg_atomic_uint64 calls_waited;	/* calls that waited for room (backpressure) */
	pg_atomic_uint64 calls_refused; /* calls the message area could not store */
	pg_atomic_uint64 protocol_closes;	/* WebSockets failed for a protocol error */
} DurableGatewayCounters;

typedef void (*DurableGatewayMessageFn) (const DurableParts *message, void *arg);

extern void DurableGatewayInit(void);
extern void DurableGatewayLinkShmemRequest(void);
extern void DurableGatewayLinkShmemStartup(void);
extern DurableGatewayCounters *DurableGatewayStats(void);
extern void DurableGatewayStarted(void);
extern void DurableGatewayStopped(void);
extern pid_t DurableGatewayPid(void);
extern int64 DurableGatewayEpoch(void);
extern void DurableGatewayWake(void);
extern int	DurableGatewayWakeFd(void);
extern bool DurableGatewayPush(const DurableParts *message);
extern int	DurableGatewayDrain(DurableGatewayMessageFn fn, void *arg, int max);

#endif							/* DURABLE_GATEWAY_LINK_H */
