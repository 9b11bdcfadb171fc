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

/* at_commit.c: things that happen when a transaction commits */
extern void DurableWakeHostAtCommit(Oid owner, int home);
extern void DurableClassesChangedAtCommit(void);
extern void DurableSettingsChangedAtCommit(void);

/* call.c */
extern void DurableCheckReady(void);
extern void DurableCheckCallable(const char *class_name, DurableClass *cls);

#endif							/* DURABLE_SQL_H */
