/*-------------------------------------------------------------------------
 *
 * upkeep.c
 *	  The scheduler's chores for the gateway: tell it every class of its
 *	  database, and forget the sockets of a gateway that is gone.
 *
 * The gateway has no database connection, yet it must answer 404 or 403
 * before a WebSocket upgrade and serve auto_response pairs on its own.  So
 * the scheduler of each database reads every class's name and gateway options from durable._classes
 * and sends them to the gateway as one "classes" message, which replaces
 * the gateway's copy for that database (gateway/classes.c; the message
 * carries the database, shared/messages.c).  It does so when a transaction that
 * changed classes commits (sql/at_commit.c marks the directory dirty and
 * wakes the scheduler, epochs.c), when a new gateway started, and again
 * after a message could not be queued.  The directory has no fixed capacity:
 * no role can fill it to lock out the classes of others (the number of
 * classes one role may own is durable.max_classes_per_role, classes.c).
 *
 * The message's data (GATEWAY_MSG_CLASSES) is a list of records, in name
 * order:
 *	name length (1 byte), name, flags (1 byte: DURABLE_CLASS_*), and with
 *	DURABLE_CLASS_AUTO_RESPONSE: request length (2 bytes, little-endian),
 *	request, response length (2 bytes), response.
 *
 * The scheduler also drops the socket rows of a gateway that is gone.
 *
 * IDENTIFICATION
 *	  src/host/upkeep.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/epochs.h"
#include "shared/gateway_link.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

static SPIPlanPtr load_plan = NULL;

static void
append_length16(StringInfo buf, int len)
{
	appendStringInfoChar(buf, (char) (len & 0xFF));
	appendStringInfoChar(buf, (char) ((len >> 8) & 0xFF));
}

/*
 * encode_classes
 *		Read every class and encode the directory message's part into buf.
 *		Needs a transaction and a snapshot.
 */
static void
encode_classes(StringInfo buf)
{
	static const DurableStatement stmt = {
		"SELECT name, "
		"       coalesce((options OPERATOR(pg_catalog.->>) 'websocket')::pg_catalog.bool, false), "
		"       coalesce((options OPERATOR(pg_catalog.->>) 'http')::pg_catalog.bool, false), "
		"       options OPERATOR(pg_catalog.#>>) '{auto_response,request}', "
		"       options OPERATOR(pg_catalog.#>>) '{auto_response,response}', "
		"       coalesce(owner::pg_catalog.oid, 0::pg_catalog.oid) "
		"  FROM durable._classes ORDER BY name",
		0, {InvalidOid}
	};
	DurableSpiState spi;
	uint64		i;

	if (!DurableExtensionPresent())
		return;
	DurableSpiBegin(&spi);
	DurableSpiRun(&stmt, &load_plan, NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *name = SPI_getvalue(tup, desc, 1);
		char	   *request = SPI_getvalue(tup, desc, 4);
		char	   *response = SPI_getvalue(tup, desc, 5);
		bool		isnull;
		int			flags = 0;
		int			len = strlen(name);
		Oid			owner;
		int			b;

		if (len > DURABLE_MAX_CLASS_BYTES)
			continue;			/* the table's CHECK makes this impossible */
		if (DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull)))
			flags |= DURABLE_CLASS_WEBSOCKET;
		if (DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)))
			flags |= DURABLE_CLASS_HTTP;
		if (request != NULL && response != NULL &&
			strlen(request) <= DURABLE_MAX_AUTO_RESPONSE &&
			strlen(response) <= DURABLE_MAX_AUTO_RESPONSE)
			flags |= DURABLE_CLASS_AUTO_RESPONSE;
		appendStringInfoChar(buf, (char) len);
		appendBinaryStringInfo(buf, name, len);
		appendStringInfoChar(buf, (char) flags);
		owner = DatumGetObjectId(SPI_getbinval(tup, desc, 6, &isnull));
		for (b = 0; b < 4; b++)
			appendStringInfoChar(buf, (char) ((owner >> (8 * b)) & 0xFF));
		if (flags & DURABLE_CLASS_AUTO_RESPONSE)
		{
			append_length16(buf, strlen(request));
			appendBinaryStringInfo(buf, request, strlen(request));
			append_length16(buf, strlen(response));
			appendBinaryStringInfo(buf, response, strlen(response));
		}
	}
	DurableSpiEnd(&spi);
}

/*
 * send_classes
 *		Send the whole directory to the gateway; whether it was queued.
 *		Without the extension (DROP EXTENSION, or not created yet) the
 *		gateway is told that there are no classes and closes every socket.
 */
static bool
send_classes(void)
{
	StringInfoData buf;
	DurableGatewayMsg msg;
	bool		sent;

	if (!DurableExtensionPresent())
	{
		memset(&msg, 0, sizeof(msg));
		msg.kind = GATEWAY_MSG_DROPPED;
		return DurableGatewaySend(&msg);
	}
	initStringInfo(&buf);
	encode_classes(&buf);
	memset(&msg, 0, sizeof(msg));
	msg.kind = GATEWAY_MSG_CLASSES;
	msg.data.data = buf.data;
	msg.data.len = buf.len;
	sent = DurableGatewaySend(&msg);
	pfree(buf.data);
	return sent;
}

/*
 * DurableClassDirMaintain
 *		The scheduler, outside a transaction: send its database's directory
 *		to the gateway if classes changed or a new gateway runs, forget the
 *		socket rows of a gateway that is gone once a new one started, and tell
 *		the database's hosts to leave when the extension is gone.
 */
void
DurableClassDirMaintain(void)
{
	static int64 sent_epoch = 0;
	static int64 cleaned_epoch = -1;
	int64		epoch = DurableGatewayEpoch();
	bool		dirty = DurableClassDirTakeDirty(durable_db);
	bool		send = dirty || epoch != sent_epoch;

	/* no gateway runs: the next one gets the directory when it starts */
	if (epoch == 0)
		send = false;
	if (!send && !dirty && epoch == cleaned_epoch)
		return;

	DurableHostTransactionStart("durable class directory");
	PushActiveSnapshot(GetTransactionSnapshot());
	/* the extension is gone (or outdated): the hosts stop serving and leave */
	if (dirty && !DurableExtensionPresent())
		DurableExtensionGoneBump();
	if (send)
		sent_epoch = send_classes() ? epoch : 0;
	if (epoch != cleaned_epoch && DurableExtensionPresent())
	{
		DurableSocketsCleanup();
		cleaned_epoch = epoch;
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}
