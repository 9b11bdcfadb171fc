/*-------------------------------------------------------------------------
 *
 * sql.h
 *	  The SQL side: what sessions call (the files of sql/).
 *
 * IDENTIFICATION
 *	  src/sql/sql.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_SQL_H
#define DURABLE_SQL_H

#include "shared/catalog.h"

#include "utils/jsonb.h"

/* at_commit.c: things that happen when a transaction commits */
extern void DurableWakeHostAtCommit(Oid owner, int home);
extern void DurableClassesChangedAtCommit(void);
extern void DurableSettingsChangedAtCommit(void);

/* classes.c */
extern void DurableCheckClassOwner(const char *name, Oid owner);

/* call.c */
extern void DurableCheckReady(void);
extern void DurableCheckCallable(const char *class_name, DurableClass *cls);
extern Jsonb *DurableCallFromSession(const DurableClass *cls, const char *id, const char *method,
									 Jsonb *args, bool *isnull);

#endif							/* DURABLE_SQL_H */
