/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Class metadata cache and SPI access to the extension's own tables.
 *
 * Backends (sql/call.c, sql/classes.c) and hosts (host/invoke.c) look
 * classes up here.
 * Each process keeps a small hash of classes, invalidated by a relcache
 * callback on durable._classes (define_class and drop_class send one) and by
 * a syscache callback on pg_proc (the class owner is its handler's owner).
 * Both callbacks are registered once per process.
 *
 * The extension's tables are not readable or writable by ordinary roles, so
 * every access goes through DurableSpiBegin/End, which switch to the owner
 * of the tables (the role that created the extension) for the duration of
 * the SPI work, with search_path = pg_catalog, pg_temp: our statements are
 * prepared once and may first run inside a handler, whose search_path is
 * its owner's to choose; they must never resolve a name there (and a plan
 * made under another search_path would be analysed again each time).  An
 * error unwinds both with the (sub)transaction.
 *
 * IDENTIFICATION
 *	  src/shared/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/catalog.h"
#include "shared/epochs.h"
#include "shared/objects.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

static HTAB *class_cache = NULL;
static Oid	classes_relid = InvalidOid;
static Oid	tables_owner = InvalidOid;
static bool callbacks_registered = false;
static SPIPlanPtr lookup_plan = NULL;
static uint64 classes_generation = 0;	/* how often durable._classes changed */

static void
invalidate_all(void)
{
	HASH_SEQ_STATUS status;
	DurableClass *entry;

	if (class_cache == NULL)
		return;
	hash_seq_init(&status, class_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->valid = false;
}

static void
relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || (OidIsValid(classes_relid) && relid == classes_relid))
	{
		invalidate_all();
		classes_generation++;
		classes_relid = InvalidOid;
		tables_owner = InvalidOid;
		/* the table itself changed (DROP/CREATE EXTENSION): the gateway's copy too */
		DurableClassDirMarkDirty();
	}
}

static void
proc_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	invalidate_all();
}

static void
ensure_cache(void)
{
	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(PROCOID, proc_callback, (Datum) 0);
		callbacks_registered = true;
	}
	if (class_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(DurableClass);
		class_cache = hash_create("pg_durable_objects classes", 64, &ctl,
								  HASH_ELEM | HASH_STRINGS);
	}
}

/*
 * installed_version
 *		The version of the extension's SQL objects in this database
 *		(pg_extension.extversion), palloc'd; NULL if it has none.
 */
static char *
installed_version(Oid extension)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extension));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		datum = heap_getattr(tuple, Anum_pg_extension_extversion,
										 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(datum));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * DurableExtensionOutdated
 *		The installed SQL version if the extension exists in this database at
 *		another version than this library's (the server was upgraded, ALTER
 *		EXTENSION ... UPDATE not yet run); NULL otherwise.  The library then
 *		touches none of the extension's tables: their shape may differ from
 *		what its statements expect.  Needs a transaction.
 */
char *
DurableExtensionOutdated(void)
{
	Oid			extension = get_extension_oid(DURABLE_EXTENSION_NAME, true);
	char	   *version;

	if (!OidIsValid(extension))
		return NULL;
	version = installed_version(extension);
	if (version == NULL || strcmp(version, DURABLE_LIBRARY_VERSION) == 0)
		return NULL;
	return version;
}

/*
 * DurableExtensionPresent
 *		Whether the extension exists (and is not being created or updated) in
 *		this database at this library's version, and its tables can be found.
 *		Caches the tables' relid and owner (until durable._classes changes);
 *		an outdated extension is not cached, so ALTER EXTENSION ... UPDATE
 *		takes effect at the next look (and the gateway is sent the classes
 *		then).  A worker logs an outdated extension once, with what to run.
 *		Needs a transaction.
 */
bool
DurableExtensionPresent(void)
{
	static bool warned_outdated = false;
	static bool was_outdated = false;
	Oid			nsp;
	HeapTuple	tuple;
	char	   *outdated;

	ensure_cache();
	if (OidIsValid(classes_relid) && OidIsValid(tables_owner))
		return true;
	if (creating_extension || IsBinaryUpgrade ||
		!OidIsValid(get_extension_oid(DURABLE_EXTENSION_NAME, true)))
		return false;
	outdated = DurableExtensionOutdated();
	if (outdated != NULL)
	{
		/* sessions get an ERROR from require_extension; workers say it once */
		if (IsBackgroundWorker && !warned_outdated)
		{
			warned_outdated = true;
			ereport(WARNING,
					(errmsg("extension \"%s\" is at version %s in database \"%s\" but its library is version %s: no object is served here",
							DURABLE_EXTENSION_NAME, outdated,
							get_database_name(MyDatabaseId), DURABLE_LIBRARY_VERSION),
					 errhint("Run ALTER EXTENSION %s UPDATE.", DURABLE_EXTENSION_NAME)));
		}
		was_outdated = true;
		return false;
	}
	nsp = get_namespace_oid(DURABLE_SCHEMA, true);
	if (!OidIsValid(nsp))
		return false;
	classes_relid = get_relname_relid("_classes", nsp);
	if (!OidIsValid(classes_relid))
		return false;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(classes_relid));
	if (!HeapTupleIsValid(tuple))
	{
		classes_relid = InvalidOid;
		return false;
	}
	tables_owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	/* updated since the last look: the gateway learns the classes it now serves */
	if (was_outdated)
	{
		was_outdated = false;
		DurableClassDirMarkDirty();
	}
	return true;
}

static void
require_extension(void)
{
	char	   *outdated;

	if (DurableExtensionPresent())
		return;
	outdated = creating_extension ? NULL : DurableExtensionOutdated();
	if (outdated != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" is at version %s in database \"%s\" but its library is version %s",
						DURABLE_EXTENSION_NAME, outdated,
						get_database_name(MyDatabaseId), DURABLE_LIBRARY_VERSION),
				 errhint("Run ALTER EXTENSION %s UPDATE.", DURABLE_EXTENSION_NAME)));
	ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" is not installed in database \"%s\"",
						DURABLE_EXTENSION_NAME, get_database_name(MyDatabaseId)),
				 errhint("Run CREATE EXTENSION %s.", DURABLE_EXTENSION_NAME)));
}

#define DURABLE_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * DurableSearchPathPush
 *		Run the extension's own SQL with search_path = pg_catalog, pg_temp
 *		(pg_temp last: never a temporary table before a catalog).  Returns the
 *		GUC nesting level to end with DurableSearchPathPop.
 */
int
DurableSearchPathPush(void)
{
	int			level = NewGUCNestLevel();

	if (strcmp(namespace_search_path, DURABLE_SEARCH_PATH) != 0)
		(void) set_config_option("search_path", DURABLE_SEARCH_PATH, PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
DurableSearchPathPop(int level)
{
	AtEOXact_GUC(true, level);
}

/*
 * DurableSpiBegin
 *		Connect to SPI as the owner of the extension's tables, with our
 *		search_path.  Pair with DurableSpiEnd; on error the enclosing
 *		(sub)transaction undoes all of it.
 */
void
DurableSpiBegin(DurableSpiState *state)
{
	require_extension();
	GetUserIdAndSecContext(&state->save_user, &state->save_sec);
	SetUserIdAndSecContext(tables_owner,
						   state->save_sec | SECURITY_LOCAL_USERID_CHANGE);
	state->guc_level = DurableSearchPathPush();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
DurableSpiEnd(DurableSpiState *state)
{
	SPI_finish();
	DurableSearchPathPop(state->guc_level);
	SetUserIdAndSecContext(state->save_user, state->save_sec);
}

/*
 * DurableSpiPlan
 *		Prepare sql once per process and keep it.  The plan cache re-analyses
 *		it if the tables are dropped and created again.
 */
SPIPlanPtr
DurableSpiPlan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*cache = plan;
	}
	return *cache;
}

/*
 * DurableSpiExecute
 *		Run a prepared plan; expected is the SPI result code it must return.
 */
void
DurableSpiExecute(SPIPlanPtr plan, Datum *values, const char *nulls,
				  bool read_only, int expected)
{
	int			rc = SPI_execute_plan(plan, values, nulls, read_only, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
}

/*
 * DurableSpiRun
 *		Execute statement stmt, prepared into *plan on first use, expecting SPI
 *		result code expected (SPI_OK_SELECT runs read-only).
 */
void
DurableSpiRun(const DurableStatement *stmt, SPIPlanPtr *plan, Datum *values,
			  const char *nulls, int expected)
{
	DurableSpiExecute(DurableSpiPlan(plan, stmt->sql, stmt->nargs, (Oid *) stmt->argtypes),
					  values, nulls, expected == SPI_OK_SELECT, expected);
}

static void
load_class(DurableClass *entry)
{
	static const char *sql =
		"SELECT pg_catalog.to_regprocedure(c.handler)::pg_catalog.oid, p.proowner, "
		"       c.owner::pg_catalog.oid, "
		"       coalesce((c.options OPERATOR(pg_catalog.->>) 'websocket')::pg_catalog.bool, false), "
		"       coalesce((c.options OPERATOR(pg_catalog.->>) 'http')::pg_catalog.bool, false), "
		"       coalesce(c.options OPERATOR(pg_catalog.->>) 'durability', 'sync') "
		"           OPERATOR(pg_catalog.=) 'async', "
		"       coalesce((c.options OPERATOR(pg_catalog.#>>) '{retain,events}')::pg_catalog.int4, "
		"                " CppAsString2(DURABLE_RETAIN_EVENTS_DEFAULT) "), "
		"       coalesce((c.options OPERATOR(pg_catalog.#>>) '{retain,seconds}')::pg_catalog.int4, 0), "
		"       coalesce((c.options OPERATOR(pg_catalog.->>) 'version')::pg_catalog.int4, 1), "
		"       c.base_version "
		"  FROM durable._classes c "
		"  LEFT JOIN pg_catalog.pg_proc p "
		"         ON p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(c.handler) "
		" WHERE c.name OPERATOR(pg_catalog.=) $1";
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	DurableSpiState spi;
	bool		isnull;
	Oid			handler_owner;

	values[0] = CStringGetTextDatum(entry->name);
	DurableSpiBegin(&spi);
	/*
	 * not read-only: a snapshot of its own, taken after the invalidation that
	 * sent us here, so the class is never cached as an older snapshot saw it
	 */
	DurableSpiExecute(DurableSpiPlan(&lookup_plan, sql, 1, argtypes),
					  values, NULL, false, SPI_OK_SELECT);
	entry->valid = SPI_processed == 1;
	if (entry->valid)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		d;

		d = SPI_getbinval(tup, desc, 1, &isnull);
		entry->handler = isnull ? InvalidOid : DatumGetObjectId(d);
		d = SPI_getbinval(tup, desc, 2, &isnull);
		handler_owner = isnull ? InvalidOid : DatumGetObjectId(d);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		entry->owner = isnull ? InvalidOid : DatumGetObjectId(d);
		entry->websocket = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		entry->http = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		entry->async_commit = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		entry->retain_events = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
		entry->retain_seconds = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
		entry->version = DatumGetInt32(SPI_getbinval(tup, desc, 9, &isnull));
		d = SPI_getbinval(tup, desc, 10, &isnull);
		entry->base_version = isnull ? entry->version : DatumGetInt32(d);
		/* a handler some other role owns now never runs as the class */
		entry->detached = OidIsValid(entry->handler) && handler_owner != entry->owner;
		if (entry->detached)
			entry->handler = InvalidOid;
	}
	DurableSpiEnd(&spi);
}

/*
 * DurableClassLookup
 *		Find class name and copy it into *out.  Unknown class: ERROR 42704, or
 *		false when missing_ok.  Needs a transaction; checks no privileges.
 */
bool
DurableClassLookup(const char *name, DurableClass *out, bool missing_ok)
{
	DurableClass *entry;
	bool		found;

	require_extension();
	if (strlen(name) >= NAMEDATALEN)
		DurableCheckClassName(name);
	entry = hash_search(class_cache, name, HASH_ENTER, &found);
	if (!found || !entry->valid)
	{
		entry->valid = false;
		load_class(entry);
	}
	if (!entry->valid)
	{
		hash_search(class_cache, name, HASH_REMOVE, NULL);
		if (missing_ok)
			return false;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("durable class \"%s\" does not exist", name),
				 errhint("Create it with durable.define_class().")));
	}
	*out = *entry;
	return true;
}

/*
 * DurableClassCheckRunnable
 *		ERROR unless class cls can run calls: its handler exists and is still
 *		owned by the class owner.
 */
void
DurableClassCheckRunnable(const DurableClass *cls)
{
	if (cls->detached)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the handler of durable class \"%s\" is not owned by the class owner",
						cls->name),
				 errdetail("The function the class names was dropped and created again by another role, or given to another role."),
				 errhint("The class owner (or a superuser) defines the class again with a function the owner owns.")));
	if (!OidIsValid(cls->handler))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the handler of durable class \"%s\" no longer exists", cls->name),
				 errhint("Define the class again with durable.define_class().")));
}

/*
 * DurableClassesGeneration
 *		A number that changes whenever this process learns that
 *		durable._classes changed (a class defined or dropped, the extension
 *		created again): what was cached about classes' objects may be stale.
 */
uint64
DurableClassesGeneration(void)
{
	return classes_generation;
}

/*
 * DurableClassesInvalidate
 *		Tell every process that durable._classes changed (sent at commit).
 */
void
DurableClassesInvalidate(void)
{
	require_extension();
	CacheInvalidateRelcacheByRelid(classes_relid);
}
