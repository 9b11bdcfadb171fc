/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  durable._hosts(): the state of every host, read from shared memory.
 *
 * Backs the view durable.hosts.  Counters are kept by host.c and live as
 * long as shared memory does (they restart at zero after a crash restart).
 *
 * IDENTIFICATION
 *	  src/stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "pg_durable_objects.h"

#include "funcapi.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(durable_host_stats);

/*
 * durable_host_stats
 *		durable._hosts() RETURNS SETOF (host, pid, objects, queue_depth,
 *		calls, errors, batches)
 */
Datum
durable_host_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	DurableCheckReady();
	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < DurableHostCount(); i++)
	{
		DurableHostShared *host = DurableHost(i);
		Datum		values[7];
		bool		nulls[7] = {false};
		pid_t		pid;
		uint64		depth;

		SpinLockAcquire(&host->mutex);
		pid = host->pid;
		depth = host->head - host->tail;
		SpinLockRelease(&host->mutex);

		values[0] = Int32GetDatum(i);
		values[1] = Int32GetDatum(pid);
		nulls[1] = (pid == 0);
		values[2] = Int64GetDatum(pg_atomic_read_u32(&host->objects));
		values[3] = Int64GetDatum(depth);
		values[4] = Int64GetDatum(pg_atomic_read_u64(&host->calls));
		values[5] = Int64GetDatum(pg_atomic_read_u64(&host->errors));
		values[6] = Int64GetDatum(pg_atomic_read_u64(&host->batches));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
