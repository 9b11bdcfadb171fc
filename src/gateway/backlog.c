/*-------------------------------------------------------------------------
 *
 * backlog.c
 *	  Calls waiting for room in their host's queue, tried again.
 *
 * Backpressure instead of refusal: when a call cannot be handed to its host
 * (the host's queue is full, or the client's share or the gateway's part of
 * the message area is used up: routes.c says GATEWAY_WAIT), the socket or
 * HTTP request it came from stops being read (conn.c) and waits here, in
 * arrival order, with a function that tries again.  The backlog is tried
 * after every batch of messages from the hosts (they answer calls, so their
 * queues have room again) and every BACKLOG_RETRY_US while it is not empty
 * (a host taking calls does not tell the gateway).  A waiter that is done
 * leaves (its retry function removes it), and so does one whose socket or
 * request goes away.  Retry functions only act on their own socket or
 * request; closing it is asynchronous, so no other waiter disappears while
 * the backlog is being tried.
 *
 * IDENTIFICATION
 *	  src/gateway/backlog.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include "utils/memutils.h"

#define BACKLOG_RETRY_US	2000

static GatewayWaiter *head = NULL;
static GatewayWaiter *tail = NULL;
static int	length = 0;
static struct lws_context *context = NULL;
static lws_sorted_usec_list_t timer;
static bool timer_set = false;

static void backlog_timer(lws_sorted_usec_list_t *sul);

static void
arm(void)
{
	if (!timer_set && head != NULL && context != NULL)
	{
		timer_set = true;
		lws_sul_schedule(context, 0, &timer, backlog_timer, BACKLOG_RETRY_US);
	}
}

/*
 * GatewayBacklogStart
 *		At gateway start: the lws context whose timer tries the backlog.
 */
void
GatewayBacklogStart(struct lws_context *ctx)
{
	context = ctx;
}

/*
 * GatewayBacklogAdd
 *		Wait for room: retry(arg) is called until it removes w.  Already
 *		waiting: nothing changes (it keeps its place).
 */
void
GatewayBacklogAdd(GatewayWaiter *w, GatewayRetryFn retry, void *arg)
{
	if (w->waiting)
		return;
	w->retry = retry;
	w->arg = arg;
	w->waiting = true;
	w->next = NULL;
	w->prev = tail;
	if (tail)
		tail->next = w;
	else
		head = w;
	tail = w;
	length++;
	pg_atomic_fetch_add_u64(&DurableGatewayStats()->calls_waited, 1);
	arm();
}

/* leave the backlog (not waiting: nothing) */
void
GatewayBacklogRemove(GatewayWaiter *w)
{
	if (!w->waiting)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		tail = w->prev;
	w->prev = w->next = NULL;
	w->waiting = false;
	length--;
}

/*
 * GatewayBacklogRetry
 *		Try every waiter once, oldest first; those still waiting keep their
 *		places.  Waiters added meanwhile are tried too.
 */
void
GatewayBacklogRetry(void)
{
	GatewayWaiter *w;
	GatewayWaiter *next;

	if (head == NULL)
		return;
	GatewayEnqueueRound();
	for (w = head; w != NULL; w = next)
	{
		next = w->next;
		w->retry(w->arg);
	}
}

/* the number of waiters, for /metrics */
int
GatewayBacklogLength(void)
{
	return length;
}

/* every BACKLOG_RETRY_US while the backlog is not empty */
static void
backlog_timer(lws_sorted_usec_list_t *sul)
{
	MemoryContext ctx = CurrentMemoryContext;

	timer_set = false;
	PG_TRY();
	{
		GatewayBacklogRetry();
	}
	PG_CATCH();
	{
		GatewayCatchError(ctx, "retrying waiting calls");
	}
	PG_END_TRY();
	arm();
}
