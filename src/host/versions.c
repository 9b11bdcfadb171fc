/*-------------------------------------------------------------------------
 *
 * versions.c
 *	  The version of an object's state, for a class's $migrate (issue 16).
 *
 * A class has a version (option "version", default 1) and a base version
 * (its version when it was created).  An object's version is its row in
 * durable._versions; an object without one is at the base version if it
 * has storage, else it is new and at the class version.  While a class is
 * at its base version (the common case) nothing here runs a statement:
 * DurableVersionCheck compares two integers.  Above it, each host keeps a
 * cache of the objects it saw at the class version, so an object already
 * migrated costs one hash lookup per call; others cost one SELECT (and a
 * new object one INSERT of its row).
 *
 * The rows are written only here, by the host that holds the object (after
 * its $migrate returned, in the same subtransaction; for a new object; or
 * by a restore, restore.c), never by a handler.  For a class that keeps a
 * history each change is recorded too (history.c, key NULL).  A cache entry made in a (sub)transaction that rolls
 * back is forgotten with it; the cache is emptied when any class is
 * defined or dropped (catalog.c's generation), since only a class dropped
 * and created again lowers an object's version.
 *
 * IDENTIFICATION
 *	  src/host/versions.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#define VERSIONS_MAX_ENTRIES 65536	/* over this after a commit: start again */

typedef struct VersionEntry
{
	uint64		object;			/* hash key: DurableObjectKey */
	char	   *name;			/* class '\0' id, to tell a 64-bit collision */
	int32		version;
	SubTransactionId subid;		/* made in this transaction; 0: committed */
} VersionEntry;

static HTAB *versions = NULL;
static MemoryContext VersionsContext = NULL;
static List *pending = NIL;		/* objects whose entry this transaction made */
static uint64 seen_generation = 0;

enum
{
	PLAN_GET,
	PLAN_HAS_STORAGE,
	PLAN_NEW,
	PLAN_SET,
	PLAN_DELETE,
	PLAN_COUNT
};

static const DurableStatement statements[PLAN_COUNT] =
{
	[PLAN_GET] = {
		"SELECT version FROM durable._versions "
		" WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2",
		2, {TEXTOID, TEXTOID}
	},
	[PLAN_HAS_STORAGE] = {
		"SELECT EXISTS (SELECT 1 FROM durable._storage "
		"                WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2)",
		2, {TEXTOID, TEXTOID}
	},
	[PLAN_NEW] = {
		"INSERT INTO durable._versions (class, id, version) VALUES ($1, $2, $3) "
		"ON CONFLICT (class, id) DO NOTHING",
		3, {TEXTOID, TEXTOID, INT4OID}
	},
	[PLAN_SET] = {
		"INSERT INTO durable._versions (class, id, version) VALUES ($1, $2, $3) "
		"ON CONFLICT (class, id) DO UPDATE SET version = EXCLUDED.version",
		3, {TEXTOID, TEXTOID, INT4OID}
	},
	[PLAN_DELETE] = {
		"DELETE FROM durable._versions "
		" WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "
		"   AND $3 IS NOT NULL",
		3, {TEXTOID, TEXTOID, INT4OID}
	},
};
static SPIPlanPtr plans[PLAN_COUNT];

static void
forget(uint64 object)
{
	VersionEntry *e = hash_search(versions, &object, HASH_FIND, NULL);

	if (e != NULL)
	{
		pfree(e->name);
		hash_search(versions, &object, HASH_REMOVE, NULL);
	}
}

static void
reset_all(void)
{
	MemoryContextReset(VersionsContext);
	versions = NULL;
	pending = NIL;
}

static void
versions_xact(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (versions == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			foreach(lc, pending)
			{
				uint64		object = *(uint64 *) lfirst(lc);
				VersionEntry *e = hash_search(versions, &object, HASH_FIND, NULL);

				if (e != NULL)
					e->subid = InvalidSubTransactionId;
			}
			list_free_deep(pending);
			pending = NIL;
			if (hash_get_num_entries(versions) > VERSIONS_MAX_ENTRIES)
				reset_all();
			break;
		case XACT_EVENT_ABORT:
			foreach(lc, pending)
				forget(*(uint64 *) lfirst(lc));
			list_free_deep(pending);
			pending = NIL;
			break;
		default:
			break;
	}
}

/*
 * versions_subxact
 *		A subtransaction rolled back: forget the entries it (or a child)
 *		made.  Subtransaction ids grow, and every subtransaction begun since
 *		this one began is inside it, so those are the entries with an id at
 *		least its own.
 */
static void
versions_subxact(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB || versions == NULL)
		return;
	foreach(lc, pending)
	{
		uint64		object = *(uint64 *) lfirst(lc);
		VersionEntry *e = hash_search(versions, &object, HASH_FIND, NULL);

		if (e == NULL || e->subid >= mySubid)
		{
			if (e != NULL)
				forget(object);
			pfree(lfirst(lc));
			pending = foreach_delete_current(pending, lc);
		}
	}
}

static void
ensure_versions(void)
{
	uint64		generation = DurableClassesGeneration();

	if (VersionsContext == NULL)
	{
		VersionsContext = AllocSetContextCreate(TopMemoryContext, "durable versions",
												ALLOCSET_DEFAULT_SIZES);
		RegisterXactCallback(versions_xact, NULL);
		RegisterSubXactCallback(versions_subxact, NULL);
	}
	/*
	 * a class was defined or dropped (one may have been created again, lower):
	 * forget what earlier transactions saw
	 */
	if (versions != NULL && generation != seen_generation)
	{
		HASH_SEQ_STATUS status;
		VersionEntry *e;

		hash_seq_init(&status, versions);
		while ((e = hash_seq_search(&status)) != NULL)
			if (e->subid == InvalidSubTransactionId)
				forget(e->object);
	}
	seen_generation = generation;
	if (versions == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(VersionEntry);
		ctl.hcxt = VersionsContext;
		versions = hash_create("durable versions", 1024, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
}

static char *
name_of(const char *class_name, const char *id, Size *len)
{
	Size		c = strlen(class_name);
	Size		i = strlen(id);
	char	   *name = MemoryContextAlloc(VersionsContext, c + i + 2);

	memcpy(name, class_name, c + 1);
	memcpy(name + c + 1, id, i + 1);
	*len = c + i + 2;
	return name;
}

static bool
same_name(const VersionEntry *e, const char *class_name, const char *id)
{
	Size		c = strlen(class_name);

	return strcmp(e->name, class_name) == 0 && strcmp(e->name + c + 1, id) == 0;
}

/* remember that object (class_name, id) is at version, made in this subtransaction */
static void
remember(const char *class_name, const char *id, uint64 object, int32 version)
{
	VersionEntry *e;
	bool		found;
	Size		len;
	MemoryContext old;

	e = hash_search(versions, &object, HASH_ENTER, &found);
	if (found)
		pfree(e->name);
	e->name = name_of(class_name, id, &len);
	e->version = version;
	e->subid = GetCurrentSubTransactionId();
	old = MemoryContextSwitchTo(VersionsContext);
	pending = lappend(pending, memcpy(palloc(sizeof(uint64)), &object, sizeof(uint64)));
	MemoryContextSwitchTo(old);
}

/* run statement plan with (class, id[, version]); the first column of a SELECT */
static Datum
run_plan(int plan, const char *class_name, const char *id, int32 version, bool *isnull)
{
	DurableSpiState spi;
	Datum		values[3];
	Datum		d = (Datum) 0;

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = Int32GetDatum(version);
	*isnull = true;
	DurableSpiBegin(&spi);
	if (plan == PLAN_GET || plan == PLAN_HAS_STORAGE)
	{
		DurableSpiRun(&statements[plan], &plans[plan], values, NULL, SPI_OK_SELECT);
		if (SPI_processed == 1)
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
	}
	else
		DurableSpiRun(&statements[plan], &plans[plan], values, NULL,
					  plan == PLAN_DELETE ? SPI_OK_DELETE : SPI_OK_INSERT);
	DurableSpiEnd(&spi);
	return d;
}

/*
 * DurableVersionCheck
 *		Before a call of object (cls, id), key object, runs: whether the
 *		object must first run $migrate, and then from which version (to
 *		cls->version).  A new object gets its row at the class version here.
 *		Inside the call's subtransaction, with a snapshot.
 */
bool
DurableVersionCheck(const DurableClass *cls, const char *id, uint64 object, int32 *from)
{
	VersionEntry *e;
	bool		isnull;
	Datum		d;
	int32		version;

	if (cls->version <= cls->base_version)
		return false;
	ensure_versions();
	e = hash_search(versions, &object, HASH_FIND, NULL);
	if (e != NULL && e->version >= cls->version && same_name(e, cls->name, id))
		return false;

	d = run_plan(PLAN_GET, cls->name, id, 0, &isnull);
	if (!isnull)
		version = DatumGetInt32(d);
	else
	{
		/* writes of earlier calls still held in the storage cache count too */
		DurableCacheFlush();
		d = run_plan(PLAN_HAS_STORAGE, cls->name, id, 0, &isnull);
		if (DatumGetBool(d))
			version = cls->base_version;
		else
		{
			/* a new object starts at the class version */
			version = cls->version;
			if (cls->history)
				DurableHistoryVersion(cls->name, id, true, version, "$new");
			(void) run_plan(PLAN_NEW, cls->name, id, version, &isnull);
		}
	}
	remember(cls->name, id, object, version);
	if (version >= cls->version)
		return false;
	*from = version;
	return true;
}

/*
 * DurableVersionSet
 *		Object (cls, id) ran $migrate to version: record it, in the running
 *		(sub)transaction.
 */
void
DurableVersionSet(const DurableClass *cls, const char *id, uint64 object, int32 version)
{
	bool		isnull;

	ensure_versions();
	if (cls->history)
		DurableHistoryVersion(cls->name, id, true, version, "$migrate");
	(void) run_plan(PLAN_SET, cls->name, id, version, &isnull);
	remember(cls->name, id, object, version);
}

/*
 * DurableVersionRestore
 *		A restore (restore.c) puts object (cls, id) back at version, or
 *		without a row (has_version false: at the base version if it has
 *		storage, else new): record it like any version change and forget
 *		what the cache knew, so its next call checks again.
 */
void
DurableVersionRestore(const DurableClass *cls, const char *id, uint64 object,
					  bool has_version, int32 version)
{
	bool		isnull;

	ensure_versions();
	if (cls->history)
		DurableHistoryVersion(cls->name, id, has_version, version, "$restore");
	(void) run_plan(has_version ? PLAN_SET : PLAN_DELETE, cls->name, id, version, &isnull);
	forget(object);
}

/*
 * DurableVersionArgs
 *		The args of $migrate: {"from": from, "to": to}.
 */
Jsonb *
DurableVersionArgs(int32 from, int32 to)
{
	char		buf[64];

	snprintf(buf, sizeof(buf), "{\"from\": %d, \"to\": %d}", from, to);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf)));
}
