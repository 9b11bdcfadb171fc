/*-------------------------------------------------------------------------
 *
 * gateway.h
 *	  The gateway: the HTTP/WebSocket listener of pg_durable_objects, as
 *	  _PG_init sees it.
 *
 * One background worker (the files of gateway/) owns the listening socket and every
 * client connection, using libwebsockets.  Other processes never touch lws:
 * they talk to the gateway through shared memory (shared/gateway_link.c).
 * Nothing in this header needs libwebsockets.h.
 *
 * IDENTIFICATION
 *	  src/gateway/gateway.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_GATEWAY_H
#define DURABLE_GATEWAY_H

#include "shared/settings.h"

extern void DurableGatewayRegister(void);
extern PGDLLEXPORT void DurableGatewayMain(Datum main_arg);

#endif							/* DURABLE_GATEWAY_H */
