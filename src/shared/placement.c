/*-------------------------------------------------------------------------
 *
 * placement.c
 *	  Where objects live when the per-object tables are distributed by Citus.
 *
 * durable.distribute() (docs/scaling.md) makes durable._storage and the
 * other per-object tables Citus tables distributed by object id, all
 * co-located, and durable._classes a reference table.  Each node's hosts
 * then run only the objects whose shards are on that node:
 *
 *	- DurableCheckObjectHere refuses a call of an object whose shard is on
 *	  another node (a host must never run an object another node's hosts
 *	  run too: that would break one-call-at-a-time);
 *	- DurableLocalStatement turns a scan of a per-object table (due alarms,
 *	  pending sends) into a statement over the shards of it on this node,
 *	  read as plain local tables: no distributed query, and no rows of other
 *	  nodes' objects.
 *
 * Without Citus, or before durable.distribute(), DurableDistributed is
 * false and nothing here runs a statement (without Citus preloaded, it
 * does not even look at the catalog).  The answer is kept for the
 * rest of the transaction; shard placements are read from Citus' metadata
 * (pg_dist_placement, pg_dist_node) each time, so a moved shard is seen by
 * the next transaction.
 *
 * IDENTIFICATION
 *	  src/shared/placement.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/placement.h"
#include "shared/catalog.h"
#include "shared/epochs.h"

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "lib/stringinfo.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#define CITUS_EXTENSION_NAME "citus"

static LocalTransactionId distributed_lxid = InvalidLocalTransactionId;
static bool distributed = false;
static SPIPlanPtr distributed_plan = NULL;
static SPIPlanPtr where_plan = NULL;
static SPIPlanPtr shards_plan = NULL;

/*
 * DurableDistributed
 *		Whether durable.distribute() made durable._storage a Citus table in
 *		this database.  In a transaction; the answer is kept until it ends.
 *		The first look of a transaction also notes which shard placements
 *		this node has: when they changed (a shard moved here or away), the
 *		storage epoch moves, so the hosts forget the storage they cached
 *		(state that another node changed while the shard was there).
 */
bool
DurableDistributed(void)
{
	static char placements[64] = "";
	DurableSpiState spi;
	bool		isnull;
	char	   *now;

	if (MyProc->lxid == distributed_lxid)
		return distributed;
	distributed = false;
	/* Citus not preloaded (its settings are not defined): no catalog lookup at all */
	if (GetConfigOption("citus.version", true, false) != NULL &&
		DurableExtensionPresent() &&
		OidIsValid(get_extension_oid(CITUS_EXTENSION_NAME, true)))
	{
		DurableSpiBegin(&spi);
		DurableSpiExecute(DurableSpiPlan(&distributed_plan,
										 "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d "
										 "  WHERE d.logicalrelid OPERATOR(pg_catalog.=) "
										 "        pg_catalog.to_regclass('durable._storage')), "
										 "       pg_catalog.count(*)::pg_catalog.text OPERATOR(pg_catalog.||) '/' "
										 "       OPERATOR(pg_catalog.||) pg_catalog.max(p.placementid)::pg_catalog.text "
										 "  FROM pg_catalog.pg_dist_placement p "
										 " WHERE p.groupid OPERATOR(pg_catalog.=) "
										 "       (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)",
										 0, NULL),
						  NULL, NULL, true, SPI_OK_SELECT);
		distributed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1, &isnull));
		now = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		if (distributed && now != NULL && strcmp(now, placements) != 0)
		{
			if (placements[0] != '\0')
				DurableStorageEpochBump();
			strlcpy(placements, now, sizeof(placements));
		}
		DurableSpiEnd(&spi);
	}
	distributed_lxid = MyProc->lxid;
	return distributed;
}

/*
 * DurableCheckObjectHere
 *		In a distributed database: ERROR unless the shard of object id is on
 *		this node.  Nothing to check otherwise.
 */
void
DurableCheckObjectHere(const char *class_name, const char *id)
{
	DurableSpiState spi;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	bool		here;
	char	   *node;

	if (!DurableDistributed())
		return;
	values[0] = CStringGetTextDatum(id);
	DurableSpiBegin(&spi);
	DurableSpiExecute(DurableSpiPlan(&where_plan,
									 "SELECT p.groupid OPERATOR(pg_catalog.=) "
									 "       (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g), "
									 "       n.nodename OPERATOR(pg_catalog.||) ':' "
									 "       OPERATOR(pg_catalog.||) n.nodeport::pg_catalog.text "
									 "  FROM pg_catalog.pg_dist_placement p "
									 "  JOIN pg_catalog.pg_dist_node n "
									 "    ON n.groupid OPERATOR(pg_catalog.=) p.groupid "
									 "   AND n.noderole OPERATOR(pg_catalog.=) 'primary' "
									 " WHERE p.shardid OPERATOR(pg_catalog.=) "
									 "       pg_catalog.get_shard_id_for_distribution_column("
									 "           'durable._storage', $1) "
									 " ORDER BY 1 DESC LIMIT 1",
									 1, types),
					  values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		DurableSpiEnd(&spi);
		return;					/* no placement known: let the storage say */
	}
	here = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									  &isnull));
	node = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	DurableSpiEnd(&spi);
	if (!here)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("durable object \"%s\" of class \"%s\" lives on another node",
						id, class_name),
				 errdetail("Its shard is on node %s; calls between nodes are not supported yet, and this node's hosts run only the objects whose shards are here.",
						   node ? node : "?"),
				 errhint("Call durable.call() as a statement of its own (outside a transaction block, with constant arguments): Citus then runs it on the node that holds the object.")));
}

/* sql with every whole-word occurrence of name replaced by by */
static char *
replace_name(const char *sql, const char *name, const char *by)
{
	StringInfoData out;
	size_t		len = strlen(name);
	const char *p = sql;
	const char *hit;

	initStringInfo(&out);
	while ((hit = strstr(p, name)) != NULL)
	{
		char		next = hit[len];

		appendBinaryStringInfo(&out, p, hit - p);
		if (next == '_' || (next >= 'a' && next <= 'z') || (next >= '0' && next <= '9'))
			appendStringInfoString(&out, name);	/* a longer name */
		else
			appendStringInfoString(&out, by);
		p = hit + len;
	}
	appendStringInfoString(&out, p);
	return out.data;
}

/*
 * DurableLocalStatement
 *		In a distributed database, a scan of a per-object table that reads
 *		only this node's shards of it: sql (a SELECT of table, e.g.
 *		"durable._alarms", ending in its own ORDER BY, LIMIT and FOR UPDATE)
 *		once per shard here, with the shard in the table's place and this
 *		node's shard of durable._classes in the reference table's place, put
 *		together with UNION ALL and sorted by column order_by, at most limit
 *		(a parameter, e.g. "$3") rows.  Plain local tables: no distributed
 *		query.  Returns false when not distributed (run sql as it is); true
 *		and *local NULL when no shard of table is here (nothing to run).
 *		palloc'd in the current memory context.
 */
bool
DurableLocalStatement(const char *sql, const char *table, int order_by, const char *limit,
					  char **local)
{
	DurableSpiState spi;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	MemoryContext cxt = CurrentMemoryContext;
	char	   *classes = NULL;
	List	   *shards = NIL;
	ListCell   *lc;
	StringInfoData out;
	uint64		i;

	*local = NULL;
	if (!DurableDistributed())
		return false;
	values[0] = CStringGetTextDatum(table);
	DurableSpiBegin(&spi);
	DurableSpiExecute(DurableSpiPlan(&shards_plan,
									 "SELECT s.logicalrelid OPERATOR(pg_catalog.=) "
									 "       'durable._classes'::pg_catalog.regclass, "
									 "       pg_catalog.shard_name(s.logicalrelid, s.shardid) "
									 "  FROM pg_catalog.pg_dist_shard s "
									 "  JOIN pg_catalog.pg_dist_placement p "
									 "    ON p.shardid OPERATOR(pg_catalog.=) s.shardid "
									 " WHERE p.groupid OPERATOR(pg_catalog.=) "
									 "       (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) "
									 "   AND s.logicalrelid OPERATOR(pg_catalog.=) "
									 "       ANY (ARRAY['durable._classes'::pg_catalog.regclass, "
									 "                  pg_catalog.to_regclass($1)]) "
									 " ORDER BY s.shardid",
									 1, types),
					  values, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		bool		is_classes = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 1,
															&isnull));
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		if (is_classes)
			classes = pstrdup(name);
		else
			shards = lappend(shards, pstrdup(name));
		MemoryContextSwitchTo(old);
	}
	DurableSpiEnd(&spi);
	if (shards == NIL)
		return true;
	if (classes == NULL)
		classes = pstrdup("durable._classes");
	initStringInfo(&out);
	foreach(lc, shards)
	{
		appendStringInfo(&out, "%sSELECT * FROM (%s) s%d",
						 foreach_current_index(lc) > 0 ? " UNION ALL " : "",
						 replace_name(replace_name(sql, table, (char *) lfirst(lc)),
									  "durable._classes", classes),
						 foreach_current_index(lc));
	}
	appendStringInfo(&out, " ORDER BY %d LIMIT %s", order_by, limit);
	*local = out.data;
	return true;
}
