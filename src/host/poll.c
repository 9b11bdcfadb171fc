/*-------------------------------------------------------------------------
 *
 * poll.c
 *	  How long an idle host watches its ring before it sleeps.
 *
 * A host that sleeps on its latch needs a wakeup (10-25 us of CPU on each
 * side) for every call.  When callers come back at once (one caller at a
 * time, a ping-pong), watching the ring for a few microseconds serves the
 * next call without one, and the caller, seeing the host poll, watches its
 * reply slot too (replies.c).
 *
 * IDENTIFICATION
 *	  src/host/poll.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/lanes.h"

#include "portability/instr_time.h"

#include "miscadmin.h"
#include "storage/latch.h"

/*
 * After a batch of one or two calls ("lone" calls: one caller at a time, a
 * ping-pong), the host measures how long the ring stays empty until the next
 * request; the average of these gaps decides how long it watches the ring
 * before it sleeps next time (twice the average, at most HOST_POLL_MAX_US;
 * not at all when callers come further apart than HOST_POLL_GAP_LIMIT_US).
 * A caller that is slow because it slept itself still counts as close, so
 * that polling, once lost, comes back.  A watch that ended without a request
 * is not repeated for the next HOST_POLL_SKIP lone batches: callers whose
 * gaps are just longer than the watch would only burn CPU.
 */
#define HOST_POLL_MAX_US 250
#define HOST_POLL_GAP_LIMIT_US 1000	/* callers further apart: no polling */
#define HOST_GAP_SAMPLE_MAX_US 10000	/* an idle pause counts as this much */
#define HOST_POLL_SKIP 4			/* lone batches without polling after a miss */
static double gap_avg_us = 0;
static TimestampTz lone_end;
static bool lone_pending = false;
static int	poll_skip = 0;

/*
 * DurablePollBatchDone
 *		A batch of calls calls ran: remember whether it was a lone one.
 */
void
DurablePollBatchDone(uint64 calls)
{
	lone_pending = calls > 0 && calls <= 2;
	if (lone_pending)
		lone_end = GetCurrentTimestamp();
}

/*
 * DurablePollRequestArrived
 *		A batch was taken after a lone one: the gap is measured to when its
 *		first request was enqueued, not to when the host noticed it, so that
 *		a host that slept (and was slow to wake) does not conclude that its
 *		callers are slow and stop polling for good.
 */
void
DurablePollRequestArrived(const DurableRequest *first)
{
	if (!lone_pending || first->enqueued_at == 0)
		return;
	gap_avg_us = 0.8 * gap_avg_us +
		0.2 * (double) Min(Max(first->enqueued_at - lone_end, 0), HOST_GAP_SAMPLE_MAX_US);
	lone_pending = false;
}

/*
 * DurablePollRing
 *		After answering a lone call: watch the ring (and the latch) for a
 *		while before sleeping, so that a caller who calls again at once, or
 *		one that watches for its reply, is served without a wakeup.  Whether
 *		something arrived.
 */
bool
DurablePollRing(void)
{
	double		budget_us = Max(2 * gap_avg_us, 20);
	instr_time	start;
	instr_time	now;
	bool		found = false;

	if (!lone_pending || gap_avg_us > HOST_POLL_GAP_LIMIT_US)
		return false;
	if (poll_skip > 0)
	{
		poll_skip--;
		return false;
	}
	budget_us = Min(budget_us, HOST_POLL_MAX_US);
	DurableHostSetPolling(durable_host_number, true);
	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		if (!DurableRingEmpty(durable_host_number) || ((volatile Latch *) MyLatch)->is_set)
		{
			found = true;
			break;
		}
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		if (INSTR_TIME_GET_MICROSEC(now) >= budget_us)
		{
			poll_skip = HOST_POLL_SKIP;
			break;
		}
		pg_spin_delay();
	}
	DurableHostSetPolling(durable_host_number, false);
	return found;
}

