/*-------------------------------------------------------------------------
 *
 * host.h
 *	  The host workers, as the rest of the extension sees them.
 *
 * Hosts run the calls of objects (the files of host/); the scheduler starts
 * and stops them.  _PG_init registers the scheduler; the SQL side asks
 * whether it runs inside a host and, there, makes calls between objects
 * through it (calls.c).
 *
 * IDENTIFICATION
 *	  src/host/host.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_HOST_H
#define DURABLE_HOST_H

#include "shared/settings.h"

#include "shared/catalog.h"

#include "utils/jsonb.h"
#include "utils/timestamp.h"

extern PGDLLEXPORT void DurableHostMain(Datum main_arg);
extern PGDLLEXPORT void DurableSchedulerMain(Datum main_arg);
extern void DurableSchedulerRegister(void);
extern bool DurableInHost(void);
extern Jsonb *DurableHostCall(const char *class_name, const char *id, const char *method,
							  Jsonb *args, Oid owner, bool *isnull);
extern void DurableHistoryCheckAt(const DurableClass *cls, TimestampTz at);

#endif							/* DURABLE_HOST_H */
