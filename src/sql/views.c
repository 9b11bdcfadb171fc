/*-------------------------------------------------------------------------
 *
 * views.c
 *	  The functions behind views: the hosts' state, the gateway's epoch.
 *
 * durable._hosts() backs the view durable.hosts: counters kept by the hosts
 * in shared memory (shared/hosts.c), which live as long as shared memory
 * does (they restart at zero after a crash restart).  durable._gateway_epoch()
 * tells the views which socket rows belong to the running gateway.
 *
 * IDENTIFICATION
 *	  src/sql/views.c
 *
 *-------------------------------------------------------------------------
 */
#include "sql/sql.h"
#include "shared/gateway_link.h"
#include "shared/lanes.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(durable_host_stats);
PG_FUNCTION_INFO_V1(durable_gateway_epoch);

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
	for (i = 0; i < DurableHostSlots(); i++)
	{
		static const char *const state_names[] = {"free", "starting", "running", "leaving"};
		DurableHostStats stats;
		Datum		values[12];
		bool		nulls[12] = {false};

		DurableHostGetStats(i, &stats);
		if (stats.state == DURABLE_HOST_FREE || stats.db != durable_db)
			continue;			/* the hosts of this database only */
		stats.queue_depth = DurableRingDepth(i);
		values[0] = Int32GetDatum(i);
		values[1] = Int32GetDatum(stats.pid);
		nulls[1] = (stats.pid == 0);
		values[2] = Int64GetDatum(stats.objects);
		values[3] = Int64GetDatum(stats.queue_depth);
		values[4] = Int64GetDatum(stats.calls);
		values[5] = Int64GetDatum(stats.errors);
		values[6] = Int64GetDatum(stats.batches);
		values[7] = ObjectIdGetDatum(stats.owner);
		values[8] = Int32GetDatum(stats.home);
		nulls[8] = stats.home < 0;
		values[9] = CStringGetTextDatum(state_names[stats.state]);
		values[10] = Float8GetDatum((double) (GetCurrentTimestamp() - stats.busy_since) / 1000.0);
		nulls[10] = stats.busy_since == 0;
		values[11] = BoolGetDatum(stats.waiting);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* durable._gateway_epoch() RETURNS bigint: for the views over durable._sockets */
Datum
durable_gateway_epoch(PG_FUNCTION_ARGS)
{
	/* 0 where no gateway runs, or without preloading */
	PG_RETURN_INT64(DurableGatewayEpoch());
}
