/*-------------------------------------------------------------------------
 *
 * objects.h
 *	  Names of objects: the rules for class names, ids, methods and
 *	  payload sizes, and the hashes that place an object (objects.c).
 *
 * IDENTIFICATION
 *	  src/shared/objects.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_OBJECTS_H
#define DURABLE_OBJECTS_H

#include "shared/settings.h"

extern bool DurableClassNameValid(const char *name);
extern void DurableCheckClassName(const char *name);
extern void DurableCheckId(const char *id);
extern void DurableCheckMethod(const char *method);
extern void DurableCheckMessageSize(Size size, const char *what);
extern uint32 DurableObjectShard(const char *class_name, const char *id);
extern uint64 DurableObjectKeyIn(int db, const char *class_name, const char *id);
extern uint64 DurableObjectKey(const char *class_name, const char *id);

#endif							/* DURABLE_OBJECTS_H */
