/*-------------------------------------------------------------------------
 *
 * gateway_classes.h
 *	  The gateway's copy of the class directory (gateway_classes.c).
 *
 * IDENTIFICATION
 *	  src/gateway_classes.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_GATEWAY_CLASSES_H
#define DURABLE_GATEWAY_CLASSES_H

#include "pg_durable_objects.h"

extern void GatewayClassesReplace(const char *data, size_t len);
extern bool GatewayClassLookup(const char *name, DurableClassEntry *out, bool *is_loaded);
extern bool GatewayClassesLoaded(void);

#endif							/* DURABLE_GATEWAY_CLASSES_H */
