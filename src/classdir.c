/*-------------------------------------------------------------------------
 *
 * classdir.c
 *	  The class directory: class options in shared memory for the gateway.
 *
 * The gateway has no database connection, yet it must answer 404 or 403
 * before a WebSocket upgrade and serve auto_response pairs on its own.  So
 * host 0 keeps a copy of every class's name and gateway options in shared
 * memory: it loads it at start and again whenever a transaction that changed
 * classes commits (outbox.c's commit callback marks it dirty and wakes host
 * 0).  The gateway reads it under a spinlock, copying one entry, without
 * allocating.  Host 0 also drops the socket rows of a gateway that is gone.
 *
 * IDENTIFICATION
 *	  src/classdir.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"

#include "access/xact.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

static SPIPlanPtr load_plan = NULL;

/*
 * DurableClassDirLookup
 *		Copy the entry of class name into *out; false if there is none.
 *		*loaded tells whether the directory was ever filled.  Never throws.
 */
bool
DurableClassDirLookup(const char *name, DurableClassEntry *out, bool *loaded)
{
	DurableClassDirectory *dir = DurableClassDir();
	bool		found = false;
	int			i;

	SpinLockAcquire(&dir->mutex);
	*loaded = dir->loaded;
	for (i = 0; i < dir->nclasses; i++)
	{
		if (strcmp(dir->classes[i].name, name) == 0)
		{
			*out = dir->classes[i];
			found = true;
			break;
		}
	}
	SpinLockRelease(&dir->mutex);
	return found;
}

static void
copy_text(char *dst, size_t size, HeapTuple tup, TupleDesc desc, int col)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	dst[0] = '\0';
	if (v != NULL)
		strlcpy(dst, v, size);
}

static void
load(void)
{
	static const DurableStatement stmt = {
		"SELECT name, "
		"       coalesce((options OPERATOR(pg_catalog.->>) 'websocket')::pg_catalog.bool, false), "
		"       coalesce((options OPERATOR(pg_catalog.->>) 'http')::pg_catalog.bool, false), "
		"       options OPERATOR(pg_catalog.#>>) '{auto_response,request}', "
		"       options OPERATOR(pg_catalog.#>>) '{auto_response,response}' "
		"  FROM durable._classes ORDER BY name LIMIT " CppAsString2(DURABLE_MAX_CLASSES),
		0, {InvalidOid}
	};
	DurableClassDirectory *dir = DurableClassDir();
	DurableClassEntry *entries;
	DurableSpiState spi;
	uint64		n = 0;
	uint64		i;
	bool		isnull;

	entries = palloc0(sizeof(DurableClassEntry) * DURABLE_MAX_CLASSES);
	if (DurableExtensionPresent())
	{
		DurableSpiBegin(&spi);
		DurableSpiRun(&stmt, &load_plan, NULL, NULL, SPI_OK_SELECT);
		n = SPI_processed;
		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			DurableClassEntry *e = &entries[i];

			copy_text(e->name, sizeof(e->name), tup, desc, 1);
			e->websocket = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
			e->http = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
			(void) SPI_getbinval(tup, desc, 4, &isnull);
			e->has_auto_response = !isnull;
			copy_text(e->auto_request, sizeof(e->auto_request), tup, desc, 4);
			copy_text(e->auto_response, sizeof(e->auto_response), tup, desc, 5);
		}
		DurableSpiEnd(&spi);
	}

	SpinLockAcquire(&dir->mutex);
	memcpy(dir->classes, entries, sizeof(DurableClassEntry) * n);
	dir->nclasses = (int) n;
	dir->loaded = true;
	SpinLockRelease(&dir->mutex);
	pfree(entries);
}

/*
 * DurableClassDirMarkDirty
 *		Classes changed: host 0 reloads the directory soon.  Never throws.
 */
void
DurableClassDirMarkDirty(void)
{
	DurableClassDirectory *dir = DurableClassDir();

	SpinLockAcquire(&dir->mutex);
	dir->dirty = true;
	SpinLockRelease(&dir->mutex);
	DurableWakeHostForWork(0);
}

/*
 * DurableClassDirMaintain
 *		Host 0, outside a transaction: reload the directory if it was never
 *		loaded or classes changed, and forget the socket rows of a gateway
 *		that is gone once a new one started.
 */
void
DurableClassDirMaintain(void)
{
	static int64 cleaned_epoch = -1;
	DurableClassDirectory *dir = DurableClassDir();
	int64		epoch = DurableGatewayEpoch();
	bool		reload;

	SpinLockAcquire(&dir->mutex);
	reload = !dir->loaded || dir->dirty;
	dir->dirty = false;
	SpinLockRelease(&dir->mutex);
	if (!reload && epoch == cleaned_epoch)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "durable class directory");
	if (reload)
		load();
	if (epoch != cleaned_epoch && DurableExtensionPresent())
	{
		DurableSocketsCleanup();
		cleaned_epoch = epoch;
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}
