/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  The class cache and SPI access to the extension's own tables
 *	  (catalog.c).
 *
 * IDENTIFICATION
 *	  src/shared/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_CATALOG_H
#define DURABLE_CATALOG_H

#include "shared/settings.h"

#include "executor/spi.h"

/* what a process knows of a class */
typedef struct DurableClass
{
	char		name[NAMEDATALEN];	/* hash key */
	bool		valid;			/* false: reload on next lookup */
	Oid			handler;		/* InvalidOid: the handler function is gone */
	Oid			owner;			/* the class owner (durable._classes.owner) */
	bool		detached;		/* its handler is owned by another role now */
	bool		websocket;
	bool		http;
	bool		async_commit;	/* durability: async */
	int32		retain_events;	/* retain.events: the newest events kept */
	int32		retain_seconds; /* retain.seconds: and only this young; 0: any age */
	int32		version;		/* option version: its objects' state version (default 1) */
	int32		base_version;	/* its version when created: of objects with no version row */
} DurableClass;

/* what DurableSpiBegin changed, for DurableSpiEnd */
typedef struct DurableSpiState
{
	Oid			save_user;
	int			save_sec;
	int			guc_level;		/* our search_path's GUC nesting level */
} DurableSpiState;

/* a statement prepared once per process on first use, see DurableSpiRun */
typedef struct DurableStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[8];
} DurableStatement;

extern bool DurableClassLookup(const char *name, DurableClass *out, bool missing_ok);
extern void DurableClassCheckRunnable(const DurableClass *cls);
extern void DurableClassesInvalidate(void);
extern uint64 DurableClassesGeneration(void);
extern bool DurableExtensionPresent(void);
extern char *DurableExtensionOutdated(void);
extern int	DurableSearchPathPush(void);
extern void DurableSearchPathPop(int level);
extern void DurableSpiBegin(DurableSpiState *state);
extern void DurableSpiEnd(DurableSpiState *state);
extern SPIPlanPtr DurableSpiPlan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes);
extern void DurableSpiExecute(SPIPlanPtr plan, Datum *values, const char *nulls,
							  bool read_only, int expected);
extern void DurableSpiRun(const DurableStatement *stmt, SPIPlanPtr *plan, Datum *values,
						  const char *nulls, int expected);

#if PG_VERSION_NUM >= 160000
#define DurableProcOwnercheck(proc, role) \
	object_ownercheck(ProcedureRelationId, (proc), (role))
#define DurableProcAclcheck(proc, role, mode) \
	object_aclcheck(ProcedureRelationId, (proc), (role), (mode))
#else
#define DurableProcOwnercheck(proc, role) pg_proc_ownercheck((proc), (role))
#define DurableProcAclcheck(proc, role, mode) pg_proc_aclcheck((proc), (role), (mode))
#endif

#endif							/* DURABLE_CATALOG_H */
