/*-------------------------------------------------------------------------
 *
 * residency.c
 *	  Which objects a host holds in memory, and their hibernation.
 *
 * host.c touches an object after each of its calls.  An object untouched for
 * durable.idle_timeout leaves memory (hibernates); its storage stays in the
 * tables and its next call simply loads it again.  The host mirrors its
 * residents into the UNLOGGED table durable._residency at most once a second
 * (in a short transaction of its own, never inside a batch), which is what
 * the durable.objects view shows as in_memory and last_call_at.  A
 * hibernating object's cached storage is dropped as well (storage_cache.c).
 * A flush that finds rows locked by someone else gives up after
 * FLUSH_LOCK_TIMEOUT_MS and writes everything again next time.
 *
 * IDENTIFICATION
 *	  src/host/residency.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define RESIDENT_KEY_BYTES (DURABLE_MAX_CLASS_BYTES + 1 + DURABLE_MAX_ID_BYTES + 1)
#define FLUSH_INTERVAL_MS 1000
#define FLUSH_LOCK_TIMEOUT_MS 100

typedef struct Resident
{
	char		key[RESIDENT_KEY_BYTES];	/* class NUL id NUL, zero padded */
	TimestampTz last_call;
	bool		dirty;			/* last_call not yet written to the table */
} Resident;

static HTAB *residents = NULL;
static TimestampTz last_flush = 0;
static bool reset_pending = true;
static SPIPlanPtr upsert_plan = NULL;
static SPIPlanPtr delete_plan = NULL;
static SPIPlanPtr reset_plan = NULL;

static void
ensure_table(void)
{
	HASHCTL		ctl;

	if (residents)
		return;
	ctl.keysize = RESIDENT_KEY_BYTES;
	ctl.entrysize = sizeof(Resident);
	residents = hash_create("pg_durable_objects residents", 1024, &ctl,
							HASH_ELEM | HASH_BLOBS);
}

/*
 * DurableResidencyTouch
 *		Record a call of (class, id) now.  Outside any transaction; no I/O.
 */
void
DurableResidencyTouch(const char *class_name, const char *id)
{
	char		key[RESIDENT_KEY_BYTES];
	Resident   *r;
	bool		found;

	ensure_table();
	memset(key, 0, sizeof(key));
	strlcpy(key, class_name, DURABLE_MAX_CLASS_BYTES + 1);
	strlcpy(key + strlen(key) + 1, id, DURABLE_MAX_ID_BYTES + 1);
	r = hash_search(residents, key, HASH_ENTER, &found);
	r->last_call = GetCurrentTimestamp();
	r->dirty = true;
	if (!found)
		DurableHostSetObjects(durable_host_number, hash_get_num_entries(residents));
}

/*
 * DurableResidencyHas
 *		Whether (class, id) is in memory on this host.
 */
bool
DurableResidencyHas(const char *class_name, const char *id)
{
	char		key[RESIDENT_KEY_BYTES];

	ensure_table();
	memset(key, 0, sizeof(key));
	strlcpy(key, class_name, DURABLE_MAX_CLASS_BYTES + 1);
	strlcpy(key + strlen(key) + 1, id, DURABLE_MAX_ID_BYTES + 1);
	return hash_search(residents, key, HASH_FIND, NULL) != NULL;
}

/*
 * DurableResidencyReset
 *		Forget what a previous incarnation of this host left in the table
 *		(done on the first flush, once the extension exists).
 */
void
DurableResidencyReset(void)
{
	reset_pending = true;
}

/*
 * DurableResidencyLeave
 *		The host leaves on purpose (idle, or the extension is gone): its
 *		objects leave memory with it, so its rows go too, or durable.objects
 *		would show them in memory until the slot's next host starts (which is
 *		what still happens to the rows of a host that crashed).  Outside a
 *		transaction; a failure is logged and the host leaves anyway.
 */
void
DurableResidencyLeave(void)
{
	if (residents != NULL)
	{
		hash_destroy(residents);
		residents = NULL;
	}
	reset_pending = true;
	DurableResidencyMaintain(true);
}

static Datum
text_array(List *strings)
{
	int			n = list_length(strings);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, strings)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

static void
flush(List *up_class, List *up_id, List *up_at, List *del_class, List *del_id)
{
	DurableSpiState spi;
	Datum		values[4];
	Oid			types[4];

	if (!DurableExtensionPresent())
		return;
	DurableSpiBegin(&spi);
	if (reset_pending)
	{
		types[0] = INT4OID;
		types[1] = INT4OID;
		values[0] = Int32GetDatum(durable_host_number);
		values[1] = Int32GetDatum(DurableHostSlots());
		DurableSpiExecute(DurableSpiPlan(&reset_plan,
										 "DELETE FROM durable._residency "
										 " WHERE host OPERATOR(pg_catalog.=) $1 "
										 "    OR host OPERATOR(pg_catalog.>=) $2",
										 2, types),
						  values, NULL, false, SPI_OK_DELETE);
		reset_pending = false;
	}
	if (del_class != NIL)
	{
		types[0] = TEXTARRAYOID;
		types[1] = TEXTARRAYOID;
		types[2] = INT4OID;
		values[0] = text_array(del_class);
		values[1] = text_array(del_id);
		values[2] = Int32GetDatum(durable_host_number);
		DurableSpiExecute(DurableSpiPlan(&delete_plan,
										 "DELETE FROM durable._residency r "
										 " USING ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS d(class, id) "
										 " WHERE r.class OPERATOR(pg_catalog.=) d.class "
										 "   AND r.id OPERATOR(pg_catalog.=) d.id "
										 "   AND r.host OPERATOR(pg_catalog.=) $3",
										 3, types),
						  values, NULL, false, SPI_OK_DELETE);
	}
	if (up_class != NIL)
	{
		Datum	   *ats = palloc(sizeof(Datum) * list_length(up_at));
		ListCell   *lc;
		int			i = 0;

		foreach(lc, up_at)
			ats[i++] = TimestampTzGetDatum(*(TimestampTz *) lfirst(lc));
		types[0] = TEXTARRAYOID;
		types[1] = TEXTARRAYOID;
		types[2] = INT4OID;
		types[3] = TIMESTAMPTZARRAYOID;
		values[0] = text_array(up_class);
		values[1] = text_array(up_id);
		values[2] = Int32GetDatum(durable_host_number);
		values[3] = PointerGetDatum(construct_array(ats, i, TIMESTAMPTZOID, sizeof(TimestampTz),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		DurableSpiExecute(DurableSpiPlan(&upsert_plan,
										 "INSERT INTO durable._residency AS r (class, id, host, last_call_at) "
										 "SELECT u.class, u.id, $3, u.at "
										 "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
										 "                 pg_catalog.unnest($4)) AS u(class, id, at) "
										 "ON CONFLICT (class, id) DO UPDATE "
										 "   SET host = EXCLUDED.host, last_call_at = EXCLUDED.last_call_at",
										 4, types),
						  values, NULL, false, SPI_OK_INSERT);
	}
	DurableSpiEnd(&spi);
}

/*
 * DurableResidencyMaintain
 *		At most once a second (or when force): hibernate idle objects and
 *		mirror the residents into durable._residency.  Runs its own
 *		transaction; must be called outside one.
 */
void
DurableResidencyMaintain(bool force)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz idle_before;
	MemoryContext cxt = CurrentMemoryContext;
	HASH_SEQ_STATUS status;
	Resident   *volatile r;
	List	   *up_class = NIL,
			   *up_id = NIL,
			   *up_at = NIL,
			   *del_class = NIL,
			   *del_id = NIL;

	if (!force && !TimestampDifferenceExceeds(last_flush, now, FLUSH_INTERVAL_MS))
		return;
	last_flush = now;
	ensure_table();
	idle_before = now - (TimestampTz) durable_idle_timeout * USECS_PER_SEC;

	hash_seq_init(&status, residents);
	while ((r = hash_seq_search(&status)) != NULL)
	{
		char	   *class_name = pstrdup(r->key);
		char	   *id = pstrdup(r->key + strlen(r->key) + 1);

		if (r->last_call < idle_before)
		{
			del_class = lappend(del_class, class_name);
			del_id = lappend(del_id, id);
			hash_search(residents, r->key, HASH_REMOVE, NULL);
		}
		else if (r->dirty)
		{
			TimestampTz *at = palloc(sizeof(TimestampTz));

			*at = r->last_call;
			up_class = lappend(up_class, class_name);
			up_id = lappend(up_id, id);
			up_at = lappend(up_at, at);
			r->dirty = false;
		}
	}
	DurableHostSetObjects(durable_host_number, hash_get_num_entries(residents));
	/* a hibernated object's storage leaves memory too */
	if (del_class != NIL)
		DurableCacheForgetHibernated(DurableResidencyHas);

	if (up_class == NIL && del_class == NIL && !reset_pending)
		return;

	PG_TRY();
	{
		DurableHostTransactionStart("durable residency");
		/* only an UNLOGGED table changes: no need to wait for a WAL flush */
		(void) set_config_option("synchronous_commit", "off", PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		/* a mirror for a view: never worth more than a moment of the host */
		(void) set_config_option("lock_timeout", CppAsString2(FLUSH_LOCK_TIMEOUT_MS),
								 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
		PushActiveSnapshot(GetTransactionSnapshot());
		flush(up_class, up_id, up_at, del_class, del_id);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		HASH_SEQ_STATUS scan;

		/* rows someone holds (a drop_class in an open transaction): all again next time */
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		reset_pending = true;
		hash_seq_init(&scan, residents);
		while ((r = hash_seq_search(&scan)) != NULL)
			r->dirty = true;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}
