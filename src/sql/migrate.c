/*-------------------------------------------------------------------------
 *
 * migrate.c
 *	  durable.migrate_all(class): migrate every object of a class now.
 *
 * Objects of a class whose version grew run $migrate lazily, before their
 * next call (host/invoke.c, host/versions.c).  migrate_all does it eagerly:
 * it reads the objects that are behind in pages of MIGRATE_PAGE ids (each
 * page in a new snapshot, in id order), and for each one sends the object
 * a $migrate request through the normal call path, so the migration is a
 * call of the object like any other (serialised with its other calls,
 * committed on its own by the object's host).  The host runs $migrate only
 * if the object is still behind and answers whether it did; the count of
 * those is the result.  Only the class owner (or a superuser) may run it.
 * An error (a failing $migrate) ends it; the objects migrated before stay
 * migrated, and running it again goes on.
 *
 * IDENTIFICATION
 *	  src/sql/migrate.c
 *
 *-------------------------------------------------------------------------
 */
#include "sql/sql.h"
#include "host/host.h"
#include "shared/objects.h"
#include "shared/replies.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(durable_migrate_all);

#define MIGRATE_PAGE 1000

static SPIPlanPtr page_plan = NULL;

/*
 * read_page
 *		Up to MIGRATE_PAGE ids of objects of class cls after id after (NULL:
 *		from the first) that are behind the class version: a row with an
 *		older version, or storage and no row while the class is above its
 *		base version.  Returns how many, in *ids (palloc'd).
 */
static int
read_page(const DurableClass *cls, const char *after, char ***ids)
{
	Oid			types[4] = {TEXTOID, INT4OID, TEXTOID, BOOLOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	DurableSpiState spi;
	MemoryContext cxt = CurrentMemoryContext;
	int			n;
	int			i;

	values[0] = CStringGetTextDatum(cls->name);
	values[1] = Int32GetDatum(cls->version);
	values[2] = CStringGetTextDatum(after ? after : "");
	values[3] = BoolGetDatum(cls->base_version < cls->version);
	DurableSpiBegin(&spi);
	/* not read-only: each page sees what committed meanwhile */
	DurableSpiExecute(DurableSpiPlan(&page_plan,
									 "SELECT id FROM ("
									 " (SELECT v.id FROM durable._versions v "
									 "   WHERE v.class OPERATOR(pg_catalog.=) $1 "
									 "     AND v.version OPERATOR(pg_catalog.<) $2 "
									 "     AND v.id OPERATOR(pg_catalog.>) $3 "
									 "   ORDER BY v.id LIMIT " CppAsString2(MIGRATE_PAGE) ") "
									 " UNION "
									 " (SELECT DISTINCT s.id FROM durable._storage s "
									 "   WHERE $4 AND s.class OPERATOR(pg_catalog.=) $1 "
									 "     AND s.id OPERATOR(pg_catalog.>) $3 "
									 "     AND NOT EXISTS (SELECT FROM durable._versions v "
									 "                      WHERE v.class OPERATOR(pg_catalog.=) s.class "
									 "                        AND v.id OPERATOR(pg_catalog.=) s.id) "
									 "   ORDER BY s.id LIMIT " CppAsString2(MIGRATE_PAGE) ")"
									 ") o ORDER BY id COLLATE \"C\" LIMIT " CppAsString2(MIGRATE_PAGE),
									 4, types),
					  values, nulls, false, SPI_OK_SELECT);
	n = (int) SPI_processed;
	*ids = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		char	   *id = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		(*ids)[i] = MemoryContextStrdup(cxt, id);
	}
	DurableSpiEnd(&spi);
	return n;
}

/* send object (cls, id) a $migrate request; whether it migrated */
static bool
migrate_one(const DurableClass *cls, const char *id)
{
	DurableTarget target;
	DurableCallMsg msg;
	DurableReplyMsg reply;
	DurableReplyStatus status;
	Jsonb	   *result;
	bool		isnull;

	target.db = durable_db;
	target.owner = cls->owner;
	target.shard = DurableObjectShard(cls->name, id);
	target.object = DurableObjectKey(cls->name, id);
	memset(&msg, 0, sizeof(msg));
	msg.class_name = cls->name;
	msg.id = id;
	msg.method = "$migrate";
	msg.args = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	status = DurableCallObject(&target, DURABLE_REQUEST_CALL, &msg, 0, false, NULL, true,
							   durable_call_timeout, &reply);
	result = DurableReplyResult(status, &reply, cls->name, id, "$migrate", &isnull);
	return !isnull && JB_ROOT_IS_SCALAR(result) &&
		strcmp(JsonbToCString(NULL, &result->root, VARSIZE(result)), "true") == 0;
}

/*
 * durable_migrate_all
 *		durable.migrate_all(class text) RETURNS bigint
 */
Datum
durable_migrate_all(PG_FUNCTION_ARGS)
{
	char	   *class_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	DurableClass cls;
	char	   *after = NULL;
	int64		migrated = 0;
	MemoryContext page_cxt;
	MemoryContext old;

	DurableCheckReady();
	if (DurableInHost())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("durable.migrate_all cannot be called inside an object handler")));
	DurableCheckClassName(class_name);
	DurableClassLookup(class_name, &cls, false);
	if (!superuser() &&
		(!OidIsValid(cls.owner) || !has_privs_of_role(GetUserId(), cls.owner)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of durable class \"%s\"", class_name),
				 errdetail("Only the class owner (or a superuser) migrates its objects.")));
	DurableClassCheckRunnable(&cls);
	if (cls.version <= cls.base_version)
		PG_RETURN_INT64(0);		/* no object can be behind */

	page_cxt = AllocSetContextCreate(CurrentMemoryContext, "durable migrate_all",
									 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		char	  **ids;
		int			n;
		int			i;

		old = MemoryContextSwitchTo(page_cxt);
		n = read_page(&cls, after, &ids);
		for (i = 0; i < n; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (migrate_one(&cls, ids[i]))
				migrated++;
		}
		MemoryContextSwitchTo(old);
		if (after)
			pfree(after);
		after = n > 0 ? pstrdup(ids[n - 1]) : NULL;
		MemoryContextReset(page_cxt);
		if (n < MIGRATE_PAGE)
			break;
	}
	PG_RETURN_INT64(migrated);
}
