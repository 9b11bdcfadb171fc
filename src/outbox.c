/*-------------------------------------------------------------------------
 *
 * outbox.c
 *	  durable.send(): run a call exactly once after the sender commits.
 *
 * send() validates like call() (unknown class, privileges and sizes fail at
 * send time) and inserts a row into durable._outbox inside the caller's
 * transaction: it exists only if the caller commits.  A transaction callback,
 * registered once per process, wakes the target hosts when the transaction
 * commits, so they run the sends at once instead of at their next tick; the
 * same callback tells host 0 to reload the class directory when a
 * transaction changed classes (classdir.c), and the hosts to forget their
 * cached storage when a transaction wrote it behind their back
 * (storage_cache.c).
 * Running, retrying and dead-lettering are in work.c.
 *
 * IDENTIFICATION
 *	  src/outbox.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(durable_send);

static SPIPlanPtr insert_plan = NULL;
static uint64 hosts_to_wake = 0;	/* bit per host with sends in this transaction */
static bool classes_changed = false;	/* this transaction changed classes */
static bool storage_written = false;	/* it wrote storage outside a host */
static bool callback_registered = false;

/*
 * DurableWakeHostForWork
 *		Tell a host that new sends are committed for it, and wake it.
 */
void
DurableWakeHostForWork(int hostno)
{
	DurableHostShared *host = DurableHost(hostno);
	int			procno = -1;

	SpinLockAcquire(&host->mutex);
	host->work_pending = true;
	if (host->pid != 0)
		procno = host->procno;
	SpinLockRelease(&host->mutex);
	if (procno >= 0)
		DurableWakeProc(procno);
}

static void
wake_at_commit(XactEvent event, void *arg)
{
	int			i;

	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		if (classes_changed)
		{
			DurableClassDirMarkDirty();
			classes_changed = false;
		}
		if (storage_written)
		{
			DurableStorageEpochBump();
			storage_written = false;
		}
		for (i = 0; i < DurableHostCount() && hosts_to_wake != 0; i++)
			if (hosts_to_wake & ((uint64) 1 << i))
				DurableWakeHostForWork(i);
		hosts_to_wake = 0;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		hosts_to_wake = 0;
		classes_changed = false;
		storage_written = false;
	}
}

static void
register_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(wake_at_commit, NULL);
		callback_registered = true;
	}
}

/*
 * DurableClassesChangedAtCommit
 *		This transaction changed classes: when it commits, host 0 reloads the
 *		class directory the gateway reads.
 */
void
DurableClassesChangedAtCommit(void)
{
	register_callback();
	classes_changed = true;
}

/*
 * DurableStorageWrittenAtCommit
 *		This transaction wrote durable._storage outside a host: when it
 *		commits, the hosts forget the storage they cache (storage_cache.c).
 */
void
DurableStorageWrittenAtCommit(void)
{
	register_callback();
	storage_written = true;
}

/*
 * durable_send
 *		durable.send(class text, id text, method text, args jsonb) RETURNS void
 */
Datum
durable_send(PG_FUNCTION_ARGS)
{
	char	   *class_name;
	char	   *id;
	char	   *method;
	Jsonb	   *args;
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT8OID};
	Datum		values[5];
	DurableSpiState spi;
	uint32		shard;

	DurableCheckCallArgs(fcinfo, &class_name, &id, &method, &args);
	shard = DurableObjectShard(class_name, id);

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = CStringGetTextDatum(method);
	values[3] = JsonbPGetDatum(args);
	values[4] = Int64GetDatum((int64) shard);
	DurableSpiBegin(&spi);
	DurableSpiExecute(DurableSpiPlan(&insert_plan,
									 "INSERT INTO durable._outbox (class, id, method, args, shard) "
									 "VALUES ($1, $2, $3, $4, $5)",
									 5, types),
					  values, NULL, false, SPI_OK_INSERT);
	DurableSpiEnd(&spi);

	register_callback();
	hosts_to_wake |= (uint64) 1 << (shard % (uint32) DurableHostCount());
	PG_RETURN_VOID();
}
