/*-------------------------------------------------------------------------
 *
 * conn.c
 *	  A client connection: input kept for later, reading paused and resumed,
 *	  writes, timeouts and the end of a connection.
 *
 * Every client connection is an lws raw socket (TLS included) with one
 * GatewayConn.  What arrives is handled at once where possible (serve.c);
 * what cannot be yet (the rest of a request head, bytes behind a request
 * being answered, frames behind a call waiting for room) is kept in the
 * connection's input buffer, and reading is paused (lws_rx_flow_control)
 * for as long as any reason to wait lasts, so TCP slows the client down and
 * the kept input is at most one read.  When the last reason goes, reading
 * resumes and a writeable callback is requested, in which dispatch.c hands
 * the kept input on.
 *
 * Writes go through lws_write: lws sends what the kernel takes and keeps the
 * rest, which it sends before anything else (and before calling us
 * writeable again).  An answer is done once lws holds none of it; the next
 * request is read only then, so a client that pipelines requests without
 * reading answers holds at most one.
 *
 * Ending.  After our last bytes (an answer with Connection: close, a Close
 * frame) the connection lingers: its sending side is shut down, so the
 * client sees the end right away, and what it still sends is read and
 * dropped until it closes too or GATEWAY_CLOSE_TIMEOUT passes.  Closing at
 * once could make the kernel reset the connection (unread input) and lose
 * our last bytes.  Every state has a time bound (lws_set_timeout).
 *
 * Also here: the gateway-wide receive budget (durable.max_receive_bytes),
 * the accounts of the message area each connection gets (area.c), and the
 * error boundary's clean-up.
 *
 * IDENTIFICATION
 *	  src/gateway/conn.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "storage/lwlock.h"
#include "utils/memutils.h"

/* bytes of all messages and bodies being received (durable.max_receive_bytes) */
static size_t rx_used = 0;

/* free accounts of the message area, a FIFO ring (reused last) */
static uint32 *free_accounts = NULL;
static uint32 free_head = 0;
static uint32 free_count = 0;
static uint32 next_account = 1;

/*
 * take_account / give_account
 *		A connection's account of the message area.  Past DURABLE_AREA_
 *		ACCOUNTS - 1 open connections, new ones share accounts.
 */
static uint32
take_account(bool *own)
{
	uint32		a;

	*own = true;
	if (free_count > 0)
	{
		a = free_accounts[free_head];
		free_head = (free_head + 1) % DURABLE_AREA_ACCOUNTS;
		free_count--;
		return a;
	}
	if (next_account < DURABLE_AREA_ACCOUNTS)
		return next_account++;
	*own = false;
	return 1 + (uint32) (random() % (DURABLE_AREA_ACCOUNTS - 1));
}

static void
give_account(uint32 a)
{
	if (free_accounts == NULL)
	{
		free_accounts = malloc(sizeof(uint32) * DURABLE_AREA_ACCOUNTS);
		if (free_accounts == NULL)
			return;				/* the account is not reused */
	}
	free_accounts[(free_head + free_count) % DURABLE_AREA_ACCOUNTS] = a;
	free_count++;
}

/*
 * GatewayConnOpen
 *		A client connected (LWS_CALLBACK_RAW_ADOPT): its state, waiting for a
 *		request head.  NULL when out of memory.
 */
GatewayConn *
GatewayConnOpen(struct lws *wsi)
{
	GatewayConn *c = calloc(1, sizeof(GatewayConn));
	bool		own;

	if (c == NULL)
		return NULL;
	c->wsi = wsi;
	c->state = CONN_HEAD;
	c->file_fd = -1;
	c->account = take_account(&own);
	if (!own)
		c->account |= 0x80000000;	/* shared: not given back */
	GatewayConnTimeout(c, GATEWAY_HEAD_TIMEOUT);
	return c;
}

/*
 * GatewayConnFree
 *		The connection is gone (after ws.c and http.c let go of it).
 */
void
GatewayConnFree(GatewayConn *c)
{
	GatewayRequestFree(&c->req);
	free(c->body);
	GatewayRxRelease(&c->body_reserved);
	free(c->in);
	if (c->file_fd >= 0)
		close(c->file_fd);
	if ((c->account & 0x80000000) == 0)
		give_account(c->account);
	free(c);
}

/* the account to count the connection's messages in */
static inline uint32
account_of(GatewayConn *c)
{
	return c->account & 0x7FFFFFFF;
}

/*
 * GatewayConnPause / GatewayConnResume
 *		Stop reading the connection for a reason, or end that reason.  When
 *		no reason is left, reading resumes and kept input is handed on from a
 *		writeable callback.
 */
void
GatewayConnPause(GatewayConn *c, uint32 reason)
{
	if (c->paused == 0)
		lws_rx_flow_control(c->wsi, 0);
	c->paused |= reason;
}

void
GatewayConnResume(GatewayConn *c, uint32 reason)
{
	if ((c->paused & reason) == 0)
		return;
	c->paused &= ~reason;
	if (c->paused != 0)
		return;
	lws_rx_flow_control(c->wsi, 1);
	if (c->in_len > 0)
		lws_callback_on_writable(c->wsi);
}

/*
 * GatewayConnKeep
 *		Keep in[0..len-1] (not already kept) after what is kept.  False when
 *		out of memory.
 */
bool
GatewayConnKeep(GatewayConn *c, const unsigned char *in, size_t len)
{
	if (c->in_len + len > c->in_cap)
	{
		size_t		cap = Max(c->in_len + len, c->in_cap * 2);
		unsigned char *grown = realloc(c->in, cap);

		if (grown == NULL)
			return false;
		c->in = grown;
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, in, len);
	c->in_len += len;
	return true;
}

/*
 * GatewayConnTake
 *		The first n bytes of the kept input were handled: drop them.  A
 *		large buffer is freed once empty.
 */
void
GatewayConnTake(GatewayConn *c, size_t n)
{
	if (n >= c->in_len)
	{
		c->in_len = 0;
		if (c->in_cap > GATEWAY_TX_PACKET)
		{
			free(c->in);
			c->in = NULL;
			c->in_cap = 0;
		}
		return;
	}
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/*
 * GatewayConnTimeout
 *		End the connection if it is still in the same wait in seconds (0: no
 *		limit).
 */
void
GatewayConnTimeout(GatewayConn *c, int seconds)
{
	if (seconds > 0)
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, seconds);
	else
		lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
}

/*
 * GatewayConnKill
 *		End the connection now, without lingering.
 */
void
GatewayConnKill(GatewayConn *c)
{
	c->broken = true;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/*
 * GatewayConnWrite
 *		Hand data[0..len-1] to lws (data has LWS_PRE bytes before it it may
 *		use).  False if the connection failed: it is then being closed.
 */
bool
GatewayConnWrite(GatewayConn *c, unsigned char *data, size_t len)
{
	if (c->broken)
		return false;
	if (len > 0 && lws_write(c->wsi, data, len, LWS_WRITE_RAW) < (int) len)
	{
		GatewayConnKill(c);
		return false;
	}
	return true;
}

/*
 * GatewayConnAnswered
 *		The answer to the current request is written (its file, if any,
 *		follows): finish it from the writeable callback.
 */
void
GatewayConnAnswered(GatewayConn *c)
{
	c->answered = true;
	GatewayConnTimeout(c, GATEWAY_WRITE_TIMEOUT);
	lws_callback_on_writable(c->wsi);
}

/* the next piece of a static file; false if it cannot be read or written */
static bool
send_file_piece(GatewayConn *c)
{
	unsigned char *buf = malloc(LWS_PRE + GATEWAY_TX_PACKET);
	size_t		want = (size_t) Min(c->file_left, (uint64) GATEWAY_TX_PACKET);
	ssize_t		n;
	bool		ok;

	if (buf == NULL)
		return false;
	n = read(c->file_fd, buf + LWS_PRE, want);
	ok = n > 0 && GatewayConnWrite(c, buf + LWS_PRE, n);
	free(buf);
	if (!ok)
		return false;
	c->file_left -= n;
	return true;
}

/*
 * GatewayConnWriteable
 *		LWS_CALLBACK_RAW_WRITEABLE of an HTTP connection: send the next
 *		piece of a file, or finish an answer that is all out.  Returns -1 to
 *		close, 1 when the next request may be read (the caller hands on the
 *		kept input), else 0.
 */
int
GatewayConnWriteable(GatewayConn *c)
{
	if (c->broken)
		return -1;
	if (c->state == CONN_LINGER || !c->answered)
		return 0;
	if (c->file_fd >= 0 && c->file_left > 0)
	{
		if (!send_file_piece(c))
			return -1;
		GatewayConnTimeout(c, GATEWAY_WRITE_TIMEOUT);
		lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (lws_partial_buffered(c->wsi))
	{
		lws_callback_on_writable(c->wsi);
		return 0;
	}

	/* the whole answer is out */
	if (c->file_fd >= 0)
	{
		close(c->file_fd);
		c->file_fd = -1;
	}
	GatewayRequestFree(&c->req);
	c->have_req = false;
	free(c->body);
	c->body = NULL;
	c->body_len = 0;
	GatewayRxRelease(&c->body_reserved);
	c->answered = false;
	c->head_only = false;
	c->cors_origin = NULL;
	if (c->close_after)
	{
		GatewayConnLinger(c);
		return 0;
	}
	c->state = CONN_HEAD;
	c->head_scanned = 0;
	GatewayConnTimeout(c, GATEWAY_HEAD_TIMEOUT);
	GatewayConnResume(c, GATEWAY_PAUSE_BUSY);
	return 1;
}

/*
 * GatewayConnLinger
 *		Our last bytes are out (lws holds none): shut our sending side down,
 *		so that the client sees the end now, and drop whatever it still sends
 *		until it closes or GATEWAY_CLOSE_TIMEOUT passes.
 */
void
GatewayConnLinger(GatewayConn *c)
{
	if (c->state == CONN_LINGER)
		return;
	c->state = CONN_LINGER;
	(void) shutdown(lws_get_socket_fd(c->wsi), SHUT_WR);
	c->in_len = 0;
	c->paused = GATEWAY_PAUSE_BUSY;
	GatewayConnResume(c, GATEWAY_PAUSE_BUSY);
	GatewayConnTimeout(c, GATEWAY_CLOSE_TIMEOUT);
}

/*
 * GatewayRxReserve / GatewayRxRelease
 *		Grow a reservation of the receive budget to want bytes (false, and
 *		nothing changed, if that would take all reservations over
 *		durable.max_receive_bytes); give a reservation back.
 */
bool
GatewayRxReserve(size_t *reserved, size_t want)
{
	size_t		more;

	if (want <= *reserved)
		return true;
	more = want - *reserved;
	if (rx_used + more > (size_t) durable_max_receive_bytes)
		return false;
	rx_used += more;
	*reserved = want;
	return true;
}

void
GatewayRxRelease(size_t *reserved)
{
	rx_used -= *reserved;
	*reserved = 0;
}

/*
 * GatewayConnAccount
 *		The account of the message area the connection's calls count in.
 */
uint32
GatewayConnAccount(GatewayConn *c)
{
	return account_of(c);
}

/*
 * GatewayCatchError
 *		In a PG_CATCH of the gateway (dispatch.c, and the timers): the error
 *		goes to the server log as a LOG line, its state is cleared, and the
 *		LWLocks it left held (the gateway holds none between calls) are
 *		released.  context is the memory context of the PG_TRY.
 */
void
GatewayCatchError(MemoryContext context, const char *what)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(context);
	edata = CopyErrorData();
	FlushErrorState();
	LWLockReleaseAll();
	ereport(LOG,
			(errmsg("pg_durable_objects gateway: %s: %s", what, edata->message),
			 errdetail("The gateway goes on; only what was being done is affected.")));
	FreeErrorData(edata);
}
