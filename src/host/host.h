/*-------------------------------------------------------------------------
 *
 * host.h
 *	  The host workers, as the rest of the extension sees them.
 *
 * Hosts run the calls of objects (the files of host/).  _PG_init registers them; the
 * SQL side asks whether it runs inside one and, there, makes calls between
 * objects through them (calls.c).
 *
 * IDENTIFICATION
 *	  src/host/host.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_HOST_H
#define DURABLE_HOST_H

#include "shared/settings.h"

#include "utils/jsonb.h"

extern PGDLLEXPORT void DurableHostMain(Datum main_arg);
extern void DurableHostsRegister(void);
extern bool DurableInHost(void);
extern Jsonb *DurableHostCall(const char *class_name, const char *id, const char *method,
							  Jsonb *args, bool *isnull);

#endif							/* DURABLE_HOST_H */
