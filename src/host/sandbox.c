/*-------------------------------------------------------------------------
 *
 * sandbox.c
 *	  What a handler starts with, what it may do, and what it leaves behind.
 *
 * A host runs the calls of every class, whoever owns it, one after another in
 * one process.  So a call must meet nothing of the calls before it and leave
 * nothing for the calls after it (SPEC §4b, docs/security.md).  invoke.c
 * brackets every run of a handler (a call from SQL, a socket, HTTP, an alarm,
 * a send, and a nested call of another object) with DurableSandboxEnter and
 * DurableSandboxLeave:
 *
 *	- The handler runs as the class owner, as a security-restricted operation
 *	  (the way PostgreSQL runs index expressions during VACUUM): PostgreSQL
 *	  then refuses temporary tables, WITH HOLD cursors, PREPARE, LISTEN,
 *	  DISCARD, SET ROLE, SET SESSION AUTHORIZATION and deferred triggers.
 *	- Its settings are those a fresh session of its owner would have in this
 *	  database: the host's own (postgresql.conf and defaults, without the
 *	  settings of the role the hosts connect as), then ALTER ROLE/DATABASE
 *	  ... SET for the database, the owner, and the owner in the database.  A
 *	  nested call first resets whatever its caller changed.  Everything the
 *	  handler changes ends with it.
 *	- Constraints are checked as each statement ends, inside the call and as
 *	  its owner (SET CONSTRAINTS ALL IMMEDIATE): nothing of the call is left
 *	  to fire at the batch's commit, where the host is a superuser.
 *	- On the way out no temporary schema may exist (PostgreSQL does not
 *	  refuse functions, types or operators created in pg_temp), cursors the
 *	  handler left open are closed, and so are its large objects.  After a
 *	  top-level call, session advisory locks and sequence state (currval,
 *	  lastval) end too.
 *
 * The host's own statements wait for row locks at most durable.call_timeout
 * (DurableHostTransactionStart); a handler starts from the session's
 * lock_timeout like any other setting.
 *
 * On an error the call's subtransaction undoes user, settings, cursors,
 * large objects and the temporary schema; DurableSandboxEndCall still runs.
 *
 * Role and database settings are read from pg_db_role_setting once per owner
 * and kept until a backend commits an ALTER ROLE/DATABASE ... SET (the
 * utility hook of pg_durable_objects.c tells sql/at_commit.c, which moves the
 * settings epoch at commit).
 *
 * IDENTIFICATION
 *	  src/host/sandbox.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/epochs.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "libpq/be-fsstubs.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"

/* the settings of one owner, in the order they are applied */
typedef struct OwnerSettings
{
	Oid			owner;			/* hash key */
	int			n;
	char	  **names;
	char	  **values;
} OwnerSettings;

static MemoryContext SettingsContext = NULL;
static HTAB *owner_settings = NULL;
static uint64 settings_epoch = 0;
static SPIPlanPtr cursors_plan = NULL;

/* ----------------------------------------------------------------------
 * Settings
 * ----------------------------------------------------------------------
 */

/* whether handlers may be given setting name from pg_db_role_setting */
static bool
applicable_setting(const char *name)
{
	/* who a handler runs as is its class owner; per-transaction settings stay */
	return (GetConfigOptionFlags(name, true) & GUC_NO_RESET_ALL) == 0;
}

/*
 * append_settings
 *		Append the name=value items of pg_db_role_setting row (databaseid,
 *		roleid), if any, to *list (palloc'd strings, current context).
 */
static List *
append_settings(List *list, Relation rel, Oid databaseid, Oid roleid)
{
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&keys[0], Anum_pg_db_role_setting_setdatabase, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(databaseid));
	ScanKeyInit(&keys[1], Anum_pg_db_role_setting_setrole, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(roleid));
	scan = systable_beginscan(rel, DbRoleSettingDatidRolidIndexId, true, NULL, 2, keys);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_db_role_setting_setconfig,
									 RelationGetDescr(rel), &isnull);
		Datum	   *items;
		int			n;
		int			i;

		if (isnull)
			continue;
		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &items, NULL, &n);
		for (i = 0; i < n; i++)
			list = lappend(list, TextDatumGetCString(items[i]));
	}
	systable_endscan(scan);
	return list;
}

/*
 * read_settings
 *		The name=value items that apply to a session of roleid in this
 *		database, lowest precedence first: every database, this database,
 *		the role, the role in this database.  Needs a transaction.
 */
static List *
read_settings(Oid roleid)
{
	Relation	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	List	   *list = NIL;

	list = append_settings(list, rel, InvalidOid, InvalidOid);
	list = append_settings(list, rel, MyDatabaseId, InvalidOid);
	list = append_settings(list, rel, InvalidOid, roleid);
	list = append_settings(list, rel, MyDatabaseId, roleid);
	table_close(rel, AccessShareLock);
	return list;
}

/* split "name=value" into palloc'd name and value; false if there is no '=' */
static bool
split_setting(const char *item, char **name, char **value)
{
	const char *eq = strchr(item, '=');

	if (eq == NULL)
		return false;
	*name = pnstrdup(item, eq - item);
	*value = pstrdup(eq + 1);
	return true;
}

/*
 * lookup_owner_settings
 *		The settings of owner, read on first use or after an ALTER ... SET
 *		committed anywhere.  Invalid ones are logged once and left out.
 */
static OwnerSettings *
lookup_owner_settings(Oid owner)
{
	uint64		epoch = DurableSettingsEpoch();
	OwnerSettings *s;
	bool		found;
	List	   *items;
	ListCell   *lc;
	MemoryContext old = CurrentMemoryContext;

	if (owner_settings == NULL || epoch != settings_epoch)
	{
		HASHCTL		ctl;

		if (SettingsContext == NULL)
			SettingsContext = AllocSetContextCreate(TopMemoryContext,
													"durable owner settings",
													ALLOCSET_SMALL_SIZES);
		MemoryContextReset(SettingsContext);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(OwnerSettings);
		ctl.hcxt = SettingsContext;
		owner_settings = hash_create("durable owner settings", 16, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		settings_epoch = epoch;
	}
	s = hash_search(owner_settings, &owner, HASH_ENTER, &found);
	if (found)
		return s;

	s->n = 0;
	s->names = NULL;
	s->values = NULL;
	PG_TRY();
	{
		items = read_settings(owner);
		MemoryContextSwitchTo(SettingsContext);
		s->names = palloc0(sizeof(char *) * Max(list_length(items), 1));
		s->values = palloc0(sizeof(char *) * Max(list_length(items), 1));
		foreach(lc, items)
		{
			char	   *name;
			char	   *value;

			if (!split_setting(lfirst(lc), &name, &value) || !applicable_setting(name))
				continue;
			/* a value that does not check out is left out, as at login (WARNING) */
			if (set_config_option(name, value, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								  false, WARNING, false) == 0)
				continue;
			s->names[s->n] = name;
			s->values[s->n] = value;
			s->n++;
		}
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		(void) hash_search(owner_settings, &owner, HASH_REMOVE, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return s;
}

/*
 * reset_changed_settings
 *		A nested call starts from the host's settings, not its caller's:
 *		reset every setting changed in this transaction (they all belong to
 *		the running calls), saving the caller's values for its return.
 */
static void
reset_changed_settings(void)
{
	struct config_generic **vars;
	int			n;
	int			i;

#if PG_VERSION_NUM >= 160000
	vars = get_guc_variables(&n);
#else
	vars = get_guc_variables();
	n = GetNumConfigOptions();
#endif
	for (i = 0; i < n; i++)
	{
		struct config_generic *v = vars[i];

		if (v->stack == NULL || (v->flags & GUC_NO_RESET_ALL))
			continue;
		(void) set_config_option(v->name, NULL, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, WARNING, false);
	}
}

/* apply the settings of owner for the running handler (ended by its GUC level) */
static void
apply_owner_settings(Oid owner)
{
	OwnerSettings *s = lookup_owner_settings(owner);
	int			i;

	for (i = 0; i < s->n; i++)
		(void) set_config_option(s->names[i], s->values[i], PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, WARNING, false);
}

/*
 * DurableSandboxInitHost
 *		At host start, in a transaction: the settings of the role the hosts
 *		connect as (ALTER ROLE ... SET of the bootstrap superuser) are not
 *		those of any class owner.  Give each of them the value a session
 *		without them would have: postgresql.conf's, else the default.
 *		(Database settings come back with every call's owner settings.)
 */
void
DurableSandboxInitHost(void)
{
	static const DurableStatement plain_value = {
		"SELECT coalesce((SELECT f.setting FROM pg_catalog.pg_show_all_file_settings() f "
		"                  WHERE f.name OPERATOR(pg_catalog.=) s.name AND f.applied "
		"                    AND f.error IS NULL ORDER BY f.seqno DESC LIMIT 1), s.boot_val) "
		"  FROM pg_catalog.pg_settings s WHERE s.name OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	};
	static SPIPlanPtr plan = NULL;
	Relation	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	List	   *items = NIL;
	ListCell   *lc;
	int			level;

	items = append_settings(items, rel, InvalidOid, BOOTSTRAP_SUPERUSERID);
	items = append_settings(items, rel, MyDatabaseId, BOOTSTRAP_SUPERUSERID);
	table_close(rel, AccessShareLock);
	if (items == NIL)
		return;

	level = DurableSearchPathPush();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, items)
	{
		char	   *name;
		char	   *value;
		Datum		arg;

		if (!split_setting(lfirst(lc), &name, &value) || !applicable_setting(name))
			continue;
		arg = CStringGetTextDatum(name);
		DurableSpiRun(&plain_value, &plan, &arg, NULL, SPI_OK_SELECT);
		if (SPI_processed != 1)
			continue;
		value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		(void) set_config_option(name, value, PGC_SUSET, PGC_S_OVERRIDE, GUC_ACTION_SET,
								 true, WARNING, false);
	}
	SPI_finish();
	DurableSearchPathPop(level);
}

/*
 * DurableHostTransactionStart
 *		Start a transaction of the host (activity names it in
 *		pg_stat_activity).  The host's own statements in it (claiming an alarm,
 *		recording a failure, writing held storage values at commit, residency)
 *		run outside any call's time limit, so a row lock that someone holds on
 *		the extension's tables (a drop_class in an open transaction, a
 *		superuser's hand edit) makes them give up after durable.call_timeout
 *		instead of stalling the host.  Handlers start from the setting a
 *		session would have (DurableSandboxEnter).
 */
void
DurableHostTransactionStart(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (durable_call_timeout > 0)
		(void) set_config_option("lock_timeout", psprintf("%d", durable_call_timeout),
								 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	pgstat_report_activity(STATE_RUNNING, activity);
}

/* ----------------------------------------------------------------------
 * Entering and leaving a handler
 * ----------------------------------------------------------------------
 */

/* ERROR unless no temporary schema exists in this process */
static void
refuse_temporary_objects(void)
{
	Oid			temp;
	Oid			temp_toast;

	GetTempNamespaceState(&temp, &temp_toast);
	if (OidIsValid(temp))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("object handlers cannot create temporary objects"),
				 errdetail("A host runs the calls of every class; what one call left in pg_temp would be met by the calls after it."),
				 errhint("Keep state with durable.put(), or in a table of your own.")));
}

/* SET CONSTRAINTS ALL IMMEDIATE: deferrable constraints are checked as each statement ends */
static void
constraints_immediate(void)
{
	ConstraintsSetStmt stmt;

	memset(&stmt, 0, sizeof(stmt));
	stmt.type = T_ConstraintsSetStmt;
	stmt.constraints = NIL;
	stmt.deferred = false;
	AfterTriggerSetState(&stmt);
}

/* the names of the open cursors of this process (current memory context) */
static List *
open_cursors(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *names = NIL;
	uint64		i;

	int			level = DurableSearchPathPush();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	DurableSpiExecute(DurableSpiPlan(&cursors_plan,
									 "SELECT name FROM pg_catalog.pg_cursors", 0, NULL),
					  NULL, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		names = lappend(names, MemoryContextStrdup(cxt, name));
	}
	SPI_finish();
	DurableSearchPathPop(level);
	return names;
}

/* close the cursors that are open now and were not in before */
static void
close_new_cursors(List *before)
{
	ListCell   *lc;

	foreach(lc, open_cursors())
	{
		const char *name = lfirst(lc);
		ListCell   *b;
		bool		old = false;
		Portal		portal;

		foreach(b, before)
			if (strcmp(lfirst(b), name) == 0)
				old = true;
		if (old)
			continue;
		portal = GetPortalByName(name);
		if (PortalIsValid(portal) && portal->status != PORTAL_ACTIVE && !portal->portalPinned)
			PortalDrop(portal, false);
	}
}

/*
 * DurableSandboxEnter
 *		Before a handler of a class owned by owner runs: switch to the owner,
 *		as a security-restricted operation, with the owner's settings.  nested:
 *		inside another object's handler (its settings are reset, its cursors
 *		remembered).  Pair with DurableSandboxLeave; on error the enclosing
 *		(sub)transaction undoes what this did.
 */
void
DurableSandboxEnter(Oid owner, bool nested, DurableSandbox *sandbox)
{
	sandbox->nested = nested;
	sandbox->cursors = NIL;
	if (nested)
	{
		refuse_temporary_objects();
		sandbox->cursors = open_cursors();
	}
	GetUserIdAndSecContext(&sandbox->save_user, &sandbox->save_sec);
	SetUserIdAndSecContext(owner, sandbox->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	sandbox->guc_level = NewGUCNestLevel();
	if (nested)
		reset_changed_settings();
	else
		(void) set_config_option("lock_timeout", NULL, PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	apply_owner_settings(owner);
	constraints_immediate();
}

/*
 * DurableSandboxLeave
 *		After the handler returned (in the subtransaction it ran in): refuse a
 *		temporary schema, close its cursors and large objects, end its
 *		settings and switch back to the caller.
 */
void
DurableSandboxLeave(DurableSandbox *sandbox)
{
	refuse_temporary_objects();
	if (sandbox->nested)
		close_new_cursors(sandbox->cursors);
	else
		PortalHashTableDeleteAll();
	AtEOSubXact_LargeObject(false, GetCurrentSubTransactionId(), InvalidSubTransactionId);
	if (sandbox->nested)
		constraints_immediate();
	AtEOXact_GUC(false, sandbox->guc_level);
	SetUserIdAndSecContext(sandbox->save_user, sandbox->save_sec);
}

/*
 * DurableSandboxEndCall
 *		After a top-level call, whatever its outcome, outside its
 *		subtransaction: session advisory locks and sequence state (currval,
 *		lastval) end with it.  Never throws.
 */
void
DurableSandboxEndCall(void)
{
	LockReleaseSession(USER_LOCKMETHOD);
	ResetSequenceCaches();
}

/*
 * DurableRunAlone
 *		Run fn(arg) in a transaction of its own (see
 *		DurableHostTransactionStart), with a snapshot; an error is logged and
 *		rolled back, never raised.
 */
void
DurableRunAlone(const char *activity, void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		DurableHostTransactionStart(activity);
		PushActiveSnapshot(GetTransactionSnapshot());
		fn(arg);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}
