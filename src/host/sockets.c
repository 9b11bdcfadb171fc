/*-------------------------------------------------------------------------
 *
 * sockets.c
 *	  The sockets of objects, host side: the handler API and the rows.
 *
 * The gateway (gateway.c) owns the WebSocket connections; hosts know them
 * as rows of the UNLOGGED table durable._sockets, written in the calls that
 * change them: $connect inserts the row before its handler runs (a refusal
 * or a failure removes it again), $close deletes it, set_attachment updates
 * it.  Rows carry the epoch (start time)
 * of the gateway that owns the socket, so rows of a gateway that is gone are
 * ignored and cleaned up.
 *
 * Handlers call broadcast, socket_send and socket_close; those only queue an
 * outbound message (outbound.c), sent after the call committed; events take
 * the next number of the object's stream (events.c), and an accepting
 * $connect of a socket that resumes has the events it missed replayed.
 *
 * IDENTIFICATION
 *	  src/host/sockets.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/gateway_link.h"
#include "shared/objects.h"
#include "shared/protocol.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(durable_socket);
PG_FUNCTION_INFO_V1(durable_sockets);
PG_FUNCTION_INFO_V1(durable_broadcast);
PG_FUNCTION_INFO_V1(durable_broadcast_bytea);
PG_FUNCTION_INFO_V1(durable_broadcast_text);
PG_FUNCTION_INFO_V1(durable_socket_send);
PG_FUNCTION_INFO_V1(durable_socket_send_bytea);
PG_FUNCTION_INFO_V1(durable_socket_send_text);
PG_FUNCTION_INFO_V1(durable_socket_close);
PG_FUNCTION_INFO_V1(durable_set_attachment);

enum
{
	PLAN_SOCKETS,
	PLAN_OWNS,
	PLAN_CONNECT,
	PLAN_ACCEPT,
	PLAN_REFUSE,
	PLAN_CLOSE,
	PLAN_ATTACH,
	PLAN_CLEANUP,
	PLAN_COUNT
};

static const DurableStatement statements[PLAN_COUNT] =
{
	[PLAN_SOCKETS] = {
		"SELECT socket, tags, attachment, connected_at FROM durable._sockets "
		" WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "
		"   AND epoch OPERATOR(pg_catalog.=) $3 "
		"   AND ($4::pg_catalog.text IS NULL OR $4 OPERATOR(pg_catalog.=) ANY (tags)) "
		" ORDER BY socket",
		4, {TEXTOID, TEXTOID, INT8OID, TEXTOID}
	},
	[PLAN_OWNS] = {
		"SELECT FROM durable._sockets WHERE socket OPERATOR(pg_catalog.=) $3 "
		"   AND class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "
		"   AND epoch OPERATOR(pg_catalog.=) $4",
		4, {TEXTOID, TEXTOID, INT8OID, INT8OID}
	},
	[PLAN_CONNECT] = {
		"INSERT INTO durable._sockets (socket, class, id, tags, attachment, epoch) "
		"VALUES ($3, $1, $2, '{}', NULL, $4) "
		"ON CONFLICT (socket) DO UPDATE SET class = EXCLUDED.class, id = EXCLUDED.id, "
		"   tags = EXCLUDED.tags, attachment = NULL, "
		"   connected_at = pg_catalog.now(), epoch = EXCLUDED.epoch",
		4, {TEXTOID, TEXTOID, INT8OID, INT8OID}
	},
	[PLAN_ACCEPT] = {
		"UPDATE durable._sockets SET tags = $2, "
		"       attachment = CASE WHEN $4 THEN $3 ELSE attachment END "
		" WHERE socket OPERATOR(pg_catalog.=) $1",
		4, {INT8OID, TEXTARRAYOID, JSONBOID, BOOLOID}
	},
	[PLAN_REFUSE] = {
		"DELETE FROM durable._sockets WHERE socket OPERATOR(pg_catalog.=) $1",
		1, {INT8OID}
	},
	[PLAN_CLOSE] = {
		"DELETE FROM durable._sockets WHERE socket OPERATOR(pg_catalog.=) $1 "
		"   AND epoch OPERATOR(pg_catalog.=) $2 "
		"RETURNING $3 OPERATOR(pg_catalog.||) "
		"          pg_catalog.jsonb_build_object('attachment', attachment)",
		3, {INT8OID, INT8OID, JSONBOID}
	},
	[PLAN_ATTACH] = {
		"UPDATE durable._sockets SET attachment = $5 WHERE socket OPERATOR(pg_catalog.=) $3 "
		"   AND class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "
		"   AND epoch OPERATOR(pg_catalog.=) $4",
		5, {TEXTOID, TEXTOID, INT8OID, INT8OID, JSONBOID}
	},
	[PLAN_CLEANUP] = {
		"DELETE FROM durable._sockets WHERE epoch OPERATOR(pg_catalog.<>) $1",
		1, {INT8OID}
	},
};

static SPIPlanPtr plans[PLAN_COUNT];

/* ----------------------------------------------------------------------
 * helpers
 * ----------------------------------------------------------------------
 */

static char *
jsonb_text(Jsonb *jb)
{
	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

static Jsonb *
message_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	Jsonb	   *message;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	message = PG_GETARG_JSONB_P(argno);
	DurableCheckMessageSize(VARSIZE(message), what);
	return message;
}

static int64
socket_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("socket must not be null")));
	return PG_GETARG_INT64(argno);
}

/*
 * check_own_socket
 *		ERROR 22023 unless socket is an open socket of the current object (the
 *		one being accepted by a running $connect counts: its row exists).
 */
static void
check_own_socket(const char *function, int64 socket)
{
	const char *class_name;
	const char *id;
	DurableSpiState spi;
	Datum		values[4];
	bool		own;

	DurableCurrentObject(function, &class_name, &id);
	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = Int64GetDatum(socket);
	values[3] = Int64GetDatum(DurableGatewayEpoch());
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_OWNS], &plans[PLAN_OWNS], values, NULL, SPI_OK_SELECT);
	own = SPI_processed > 0;
	DurableSpiEnd(&spi);
	if (!own)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("socket " INT64_FORMAT " is not an open socket of object %s(%s)",
						socket, class_name, id)));
}

/* ----------------------------------------------------------------------
 * SQL functions
 * ----------------------------------------------------------------------
 */

/* durable.socket() RETURNS bigint: the socket whose frame started this call */
Datum
durable_socket(PG_FUNCTION_ARGS)
{
	const char *class_name;
	const char *id;
	int64		socket;

	DurableCurrentObject("durable.socket()", &class_name, &id);
	socket = DurableCurrentSocket();
	if (socket == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(socket);
}

/*
 * durable.sockets(tag text) RETURNS TABLE (socket bigint, tags text[],
 *		attachment jsonb, connected_at timestamptz)
 */
Datum
durable_sockets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *class_name;
	const char *id;
	DurableSpiState spi;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	uint64		row;

	DurableCurrentObject("durable.sockets()", &class_name, &id);
	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = Int64GetDatum(DurableGatewayEpoch());
	values[3] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	nulls[3] = PG_ARGISNULL(0) ? 'n' : ' ';

	InitMaterializedSRF(fcinfo, 0);
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_SOCKETS], &plans[PLAN_SOCKETS], values, nulls,
				  SPI_OK_SELECT);
	for (row = 0; row < SPI_processed; row++)
	{
		Datum		out[4];
		bool		isnull[4];
		int			i;

		for (i = 0; i < 4; i++)
			out[i] = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, i + 1,
								   &isnull[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, isnull);
	}
	DurableSpiEnd(&spi);
	return (Datum) 0;
}

/* how the message argument of broadcast/socket_send comes */
typedef enum EventArg
{
	EVENT_JSONB,
	EVENT_BYTEA,
	EVENT_TEXT					/* a string literal: JSON text */
} EventArg;

/*
 * event_arg
 *		The message argument argno of broadcast/socket_send: jsonb (or text,
 *		taken as JSON) into *data, or bytea into *bin, checked against
 *		durable.max_message_bytes.
 */
static void
event_arg(FunctionCallInfo fcinfo, int argno, EventArg kind, Jsonb **data, bytea **bin)
{
	*data = NULL;
	*bin = NULL;
	if (kind == EVENT_JSONB)
	{
		*data = message_arg(fcinfo, argno, "socket message");
		return;
	}
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("socket message must not be null")));
	if (kind == EVENT_BYTEA)
	{
		*bin = PG_GETARG_BYTEA_PP(argno);
		DurableCheckMessageSize(VARSIZE_ANY_EXHDR(*bin), "socket message");
	}
	else
	{
		*data = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
												   CStringGetDatum(text_to_cstring(PG_GETARG_TEXT_PP(argno)))));
		DurableCheckMessageSize(VARSIZE(*data), "socket message");
	}
}

/* an event's payload in msg: JSON text or bytes */
static void
event_payload(DurableGatewayMsg *msg, Jsonb *data, bytea *bin)
{
	if (bin != NULL)
	{
		msg->binary = true;
		msg->data.data = VARDATA_ANY(bin);
		msg->data.len = VARSIZE_ANY_EXHDR(bin);
	}
	else
		msg->data = DurableBytesOf(jsonb_text(data));
}

/* durable.broadcast(message jsonb|bytea|text, tag text, exclude bigint) RETURNS void */
static Datum
broadcast(FunctionCallInfo fcinfo, EventArg kind)
{
	const char *class_name;
	const char *id;
	DurableGatewayMsg msg;
	Jsonb	   *data;
	bytea	   *bin;
	char	   *tag = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));

	DurableCurrentObject("durable.broadcast()", &class_name, &id);
	event_arg(fcinfo, 0, kind, &data, &bin);
	memset(&msg, 0, sizeof(msg));
	msg.kind = GATEWAY_MSG_EVENT;
	msg.class_name = DurableBytesOf(class_name);
	msg.id = DurableBytesOf(id);
	msg.tag = DurableBytesOf(tag);
	msg.exclude = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
	event_payload(&msg, data, bin);
	msg.seq = DurableEventAppend(class_name, id, data, bin, tag, 0);
	DurableOutboundQueue(&msg);
	PG_RETURN_VOID();
}

Datum
durable_broadcast(PG_FUNCTION_ARGS)
{
	return broadcast(fcinfo, EVENT_JSONB);
}

Datum
durable_broadcast_bytea(PG_FUNCTION_ARGS)
{
	return broadcast(fcinfo, EVENT_BYTEA);
}

Datum
durable_broadcast_text(PG_FUNCTION_ARGS)
{
	return broadcast(fcinfo, EVENT_TEXT);
}

/* durable.socket_send(socket bigint, message jsonb|bytea|text) RETURNS void */
static Datum
socket_send(FunctionCallInfo fcinfo, EventArg kind)
{
	int64		socket = socket_arg(fcinfo, 0);
	const char *class_name;
	const char *id;
	DurableGatewayMsg msg;
	Jsonb	   *data;
	bytea	   *bin;

	check_own_socket("durable.socket_send()", socket);
	DurableCurrentObject("durable.socket_send()", &class_name, &id);
	event_arg(fcinfo, 1, kind, &data, &bin);
	memset(&msg, 0, sizeof(msg));
	msg.kind = GATEWAY_MSG_SEND;
	msg.socket = socket;
	event_payload(&msg, data, bin);
	msg.seq = DurableEventAppend(class_name, id, data, bin, NULL, socket);
	DurableOutboundQueue(&msg);
	PG_RETURN_VOID();
}

Datum
durable_socket_send(PG_FUNCTION_ARGS)
{
	return socket_send(fcinfo, EVENT_JSONB);
}

Datum
durable_socket_send_bytea(PG_FUNCTION_ARGS)
{
	return socket_send(fcinfo, EVENT_BYTEA);
}

Datum
durable_socket_send_text(PG_FUNCTION_ARGS)
{
	return socket_send(fcinfo, EVENT_TEXT);
}

/* durable.socket_close(socket bigint, code integer, reason text) RETURNS void */
Datum
durable_socket_close(PG_FUNCTION_ARGS)
{
	int64		socket = socket_arg(fcinfo, 0);
	int32		code = PG_ARGISNULL(1) ? DURABLE_CLOSE_NORMAL : PG_GETARG_INT32(1);
	char	   *reason = PG_ARGISNULL(2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	DurableGatewayMsg msg;

	if (code != DURABLE_CLOSE_NORMAL &&
		(code < DURABLE_CLOSE_APP_MIN || code > DURABLE_CLOSE_APP_MAX))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("close code %d is not allowed", code),
				 errhint("Use %d or a code from %d to %d.", DURABLE_CLOSE_NORMAL,
						 DURABLE_CLOSE_APP_MIN, DURABLE_CLOSE_APP_MAX)));
	if (strlen(reason) > DURABLE_MAX_CLOSE_REASON)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("close reason must have at most %d bytes", DURABLE_MAX_CLOSE_REASON)));
	check_own_socket("durable.socket_close()", socket);
	memset(&msg, 0, sizeof(msg));
	msg.kind = GATEWAY_MSG_CLOSE;
	msg.socket = socket;
	msg.code = code;
	msg.reason = DurableBytesOf(reason);
	DurableOutboundQueue(&msg);
	PG_RETURN_VOID();
}

/* durable.set_attachment(socket bigint, attachment jsonb) RETURNS void */
Datum
durable_set_attachment(PG_FUNCTION_ARGS)
{
	int64		socket = socket_arg(fcinfo, 0);
	Jsonb	   *attachment = message_arg(fcinfo, 1, "socket attachment");
	const char *class_name;
	const char *id;
	DurableSpiState spi;
	Datum		values[5];

	check_own_socket("durable.set_attachment()", socket);
	DurableCurrentObject("durable.set_attachment()", &class_name, &id);
	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = Int64GetDatum(socket);
	values[3] = Int64GetDatum(DurableGatewayEpoch());
	values[4] = JsonbPGetDatum(attachment);
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_ATTACH], &plans[PLAN_ATTACH], values, NULL, SPI_OK_UPDATE);
	DurableSpiEnd(&spi);
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------------
 * lifecycle calls from the gateway
 * ----------------------------------------------------------------------
 */

/*
 * note_resume
 *		$connect of a socket that resumes ("since" in its args, put there by
 *		the gateway from ?since=N): remember after which seq, and where the
 *		object's stream stands before the handler runs.
 */
static void
note_resume(DurableCall *call)
{
	JsonbValue *v;

	call->resume = false;
	if (call->args == NULL || !JB_ROOT_IS_OBJECT(call->args))
		return;
	v = getKeyJsonValueFromContainer(&call->args->root, "since", 5, NULL);
	if (v == NULL || v->type != jbvNumeric)
		return;
	call->resume = true;
	call->resume_since = DatumGetInt64(DirectFunctionCall1(numeric_int8,
														   NumericGetDatum(v->val.numeric)));
	call->resume_mark = DurableEventPosition(call->class_name, call->id);
}

/*
 * DurableSocketBeforeCall
 *		In the call's subtransaction, before its handler: for $connect, record
 *		the socket (undone if $connect refuses or fails); for $close, remove
 *		its row and add its attachment to the args.  Returns false when the
 *		handler must not run ($close of a socket that was never accepted).
 */
bool
DurableSocketBeforeCall(DurableCall *call)
{
	DurableSpiState spi;
	Datum		values[4];
	Datum		args = (Datum) 0;
	bool		isnull;
	bool		run = true;

	if (call->req.kind != DURABLE_REQUEST_GATEWAY || call->socket == 0)
		return true;

	if (strcmp(call->method, "$connect") == 0)
	{
		/* the row exists while $connect runs, so the socket functions see it */
		values[0] = CStringGetTextDatum(call->class_name);
		values[1] = CStringGetTextDatum(call->id);
		values[2] = Int64GetDatum(call->socket);
		values[3] = Int64GetDatum(DurableGatewayEpoch());
		DurableSpiBegin(&spi);
		DurableSpiRun(&statements[PLAN_CONNECT], &plans[PLAN_CONNECT], values, NULL,
					  SPI_OK_INSERT);
		DurableSpiEnd(&spi);
		note_resume(call);
	}
	else if (strcmp(call->method, "$close") == 0)
	{
		values[0] = Int64GetDatum(call->socket);
		values[1] = Int64GetDatum(DurableGatewayEpoch());
		values[2] = JsonbPGetDatum(call->args);
		DurableSpiBegin(&spi);
		DurableSpiRun(&statements[PLAN_CLOSE], &plans[PLAN_CLOSE], values, NULL,
					  SPI_OK_DELETE_RETURNING);
		/* no row: the socket was refused, or never accepted */
		run = SPI_processed > 0;
		if (run)
			args = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull),
									 false, -1);
		DurableSpiEnd(&spi);
		/* detoast outside SPI: its memory is gone after DurableSpiEnd */
		if (run)
			call->args = DatumGetJsonbP(args);
	}
	return run;
}

/*
 * DurableSocketAfterFailure
 *		In the batch transaction, after a gateway call failed and its
 *		subtransaction rolled back: the socket of a failed $close is gone all
 *		the same, so its row goes too.
 */
void
DurableSocketAfterFailure(DurableCall *call)
{
	DurableSpiState spi;
	Datum		values[1];

	if (call->req.kind != DURABLE_REQUEST_GATEWAY || call->socket == 0 ||
		strcmp(call->method, "$close") != 0)
		return;
	PushActiveSnapshot(GetTransactionSnapshot());
	values[0] = Int64GetDatum(call->socket);
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_REFUSE], &plans[PLAN_REFUSE], values, NULL, SPI_OK_DELETE);
	DurableSpiEnd(&spi);
	PopActiveSnapshot();
}

/*
 * DurableSocketAfterCall
 *		In the call's subtransaction, after its handler returned result: for
 *		$connect, decide accept or refuse from the result; on accept record the
 *		tags (and the attachment, if the result has one), on refusal forget
 *		the socket.
 */
void
DurableSocketAfterCall(DurableCall *call, Jsonb *result)
{
	JsonbValue *v;
	Jsonb	   *attachment = NULL;
	ArrayType  *tags;
	Datum	   *tag_datums = NULL;
	int			ntags = 0;
	DurableSpiState spi;
	Datum		values[4];

	if (call->req.kind != DURABLE_REQUEST_GATEWAY || strcmp(call->method, "$connect") != 0)
		return;

	call->connect_accept = true;
	call->connect_code = 0;
	call->connect_reason = "";
	call->connect_tags = "[]";
	if (result != NULL && JB_ROOT_IS_OBJECT(result))
	{
		v = getKeyJsonValueFromContainer(&result->root, "accept", 6, NULL);
		if (v && v->type == jbvBool && !v->val.boolean)
		{
			call->connect_accept = false;
			call->connect_code = DURABLE_CLOSE_REFUSED;
			v = getKeyJsonValueFromContainer(&result->root, "code", 4, NULL);
			if (v && v->type == jbvNumeric)
			{
				int			code = DatumGetInt32(DirectFunctionCall1(numeric_int4,
																	 NumericGetDatum(v->val.numeric)));

				if (code >= DURABLE_CLOSE_REFUSE_MIN && code <= DURABLE_CLOSE_APP_MAX)
					call->connect_code = code;
			}
			v = getKeyJsonValueFromContainer(&result->root, "reason", 6, NULL);
			if (v && v->type == jbvString)
				call->connect_reason = pnstrdup(v->val.string.val,
												pg_mbcliplen(v->val.string.val,
															 v->val.string.len,
															 DURABLE_MAX_CLOSE_REASON));
			values[0] = Int64GetDatum(call->socket);
			DurableSpiBegin(&spi);
			DurableSpiRun(&statements[PLAN_REFUSE], &plans[PLAN_REFUSE], values, NULL,
						  SPI_OK_DELETE);
			DurableSpiEnd(&spi);
			return;
		}
		v = getKeyJsonValueFromContainer(&result->root, "tags", 4, NULL);
		if (v && v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
		{
			Jsonb	   *arr = JsonbValueToJsonb(v);
			JsonbIterator *it = JsonbIteratorInit(&arr->root);
			JsonbValue	e;
			JsonbIteratorToken tok;

			tag_datums = palloc(sizeof(Datum) * JsonContainerSize(&arr->root));
			while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
				if (tok == WJB_ELEM && e.type == jbvString)
					tag_datums[ntags++] = PointerGetDatum(cstring_to_text_with_len(e.val.string.val,
																				   e.val.string.len));
			call->connect_tags = jsonb_text(arr);
		}
		v = getKeyJsonValueFromContainer(&result->root, "attachment", 10, NULL);
		if (v)
			attachment = JsonbValueToJsonb(v);
	}
	DurableCheckMessageSize(attachment ? VARSIZE(attachment) : 0, "socket attachment");

	tags = construct_array(tag_datums, ntags, TEXTOID, -1, false, TYPALIGN_INT);
	values[0] = Int64GetDatum(call->socket);
	values[1] = PointerGetDatum(tags);
	values[2] = attachment ? JsonbPGetDatum(attachment) : (Datum) 0;
	values[3] = BoolGetDatum(attachment != NULL);
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_ACCEPT], &plans[PLAN_ACCEPT], values,
				  attachment ? "    " : "  n ", SPI_OK_UPDATE);
	DurableSpiEnd(&spi);
	if (call->resume)
	{
		char	  **tags = palloc(sizeof(char *) * Max(ntags, 1));
		int			i;

		for (i = 0; i < ntags; i++)
			tags[i] = TextDatumGetCString(tag_datums[i]);
		DurableEventsReplay(call->class_name, call->id, call->socket, call->resume_since,
							call->resume_mark, tags, ntags);
	}
}

/*
 * DurableSocketsCleanup
 *		Host 0, in a transaction: forget socket rows of gateways that are gone.
 */
void
DurableSocketsCleanup(void)
{
	DurableSpiState spi;
	Datum		values[1];

	values[0] = Int64GetDatum(DurableGatewayEpoch());
	DurableSpiBegin(&spi);
	DurableSpiRun(&statements[PLAN_CLEANUP], &plans[PLAN_CLEANUP], values, NULL,
				  SPI_OK_DELETE);
	DurableSpiEnd(&spi);
}
