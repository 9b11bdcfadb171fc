/*-------------------------------------------------------------------------
 *
 * call_io.c
 *	  A call comes in from a host's ring; its outcome goes out.
 *
 * DurableCallLoad turns a ring request (messages.h) into a DurableCall.
 * After commit, DurableCallPublish releases what one call produced, in this
 * order: a socket's acceptance ($connect), the messages for sockets, the
 * reply: to the waiting session or host (its reply slot), or to the gateway
 * (a call frame's result, an HTTP call's answer, an error of any call a
 * socket started).  Nothing here runs a handler or throws after commit.
 *
 * IDENTIFICATION
 *	  src/host/call_io.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/protocol.h"
#include "shared/replies.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"

/*
 * DurableCallLoad
 *		Fill call from a ring request, copying its message into the current
 *		memory context (and freeing it in shared memory).
 */
void
DurableCallLoad(const DurableRequest *req, DurableCall *call)
{
	DurableCallMsg msg;

	memset(call, 0, sizeof(*call));
	call->source = DURABLE_SOURCE_REQUEST;
	call->req = *req;
	call->object = req->object;
	DurableCallMsgLoad(req->kind, req->message, &msg);
	call->class_name = (char *) msg.class_name;
	call->id = (char *) msg.id;
	call->method = (char *) msg.method;
	call->args = (Jsonb *) msg.args;
	call->args_text = (char *) msg.args_text;
	call->socket = msg.socket;
	call->token = msg.token;
	call->frame_id = (char *) msg.frame_id;
}

/*
 * DurableRequestRefuse
 *		Answer a request that will not run with an error.
 */
void
DurableRequestRefuse(const DurableRequest *req, int sqlerrcode, const char *message,
					 const char *detail)
{
	DurableReplyMsg reply;

	if (req->caller < 0)
		return;
	memset(&reply, 0, sizeof(reply));
	reply.status = DURABLE_REPLY_ERROR;
	reply.sqlstate = unpack_sql_state(sqlerrcode);
	reply.message = message;
	reply.detail = detail;
	DurableReplySlotPublish(req->caller, req->seq, &reply);
}

/*
 * publish_gateway_reply
 *		Answer a request of the gateway: the result of a socket's "call" frame
 *		or of an HTTP call, or the error of any socket-started call.
 */
static void
publish_gateway_reply(DurableCall *call)
{
	DurableGatewayMsg msg;
	bool		is_error = call->status == DURABLE_REPLY_ERROR;

	if (!is_error && call->frame_id == NULL && call->socket != 0)
		return;					/* $message, $close: nothing to answer */
	if (strcmp(call->method, "$close") == 0)
		return;					/* the socket is gone */

	memset(&msg, 0, sizeof(msg));
	msg.kind = is_error ? GATEWAY_MSG_ERROR : GATEWAY_MSG_REPLY;
	msg.socket = call->socket;
	msg.token = call->token;
	msg.frame_id = DurableBytesOf(call->frame_id);
	if (is_error)
	{
		msg.sqlstate = DurableBytesOf(unpack_sql_state(call->error->sqlerrcode));
		msg.message = DurableBytesOf(call->error->message ? call->error->message : "unknown error");
	}
	else
		msg.result = DurableBytesOf(call->result ?
									JsonbToCString(NULL, &call->result->root,
												   VARSIZE(call->result)) : "null");
	(void) DurableGatewaySend(&msg);
}

/*
 * publish_connect
 *		Tell the gateway whether $connect accepted its socket.  Goes out before
 *		the messages the $connect call sent, so they arrive right after the open.
 */
static void
publish_connect(DurableCall *call)
{
	bool		ok = call->status == DURABLE_REPLY_OK;
	DurableGatewayMsg msg;
	const char *reason;

	memset(&msg, 0, sizeof(msg));
	msg.kind = GATEWAY_MSG_CONNECT;
	msg.socket = call->socket;
	msg.accept = ok && call->connect_accept;
	msg.code = ok ? call->connect_code : DURABLE_CLOSE_INTERNAL;
	reason = ok ? call->connect_reason :
		(call->error->message ? call->error->message : "");
	msg.reason = DurableBytesOf(reason);
	if (reason != NULL)
		msg.reason.len = pg_mbcliplen(reason, msg.reason.len, DURABLE_MAX_CLOSE_REASON);
	msg.tags = DurableBytesOf(msg.accept ? call->connect_tags : "[]");
	(void) DurableGatewaySend(&msg);
}

/*
 * publish_ready
 *		After the messages an accepting $connect sent: the gateway may now pass
 *		on the frames the socket sent meanwhile (answers to them come after).
 */
static void
publish_ready(DurableCall *call)
{
	DurableGatewayMsg msg;

	if (call->status != DURABLE_REPLY_OK || !call->connect_accept)
		return;
	memset(&msg, 0, sizeof(msg));
	msg.kind = GATEWAY_MSG_READY;
	msg.socket = call->socket;
	(void) DurableGatewaySend(&msg);
}

/*
 * DurableCallPublish
 *		After commit: release what one call produced, in this order: a
 *		socket's acceptance, the messages for sockets, the reply.  Must not
 *		throw.
 */
void
DurableCallPublish(DurableCall *call)
{
	DurableReplyMsg reply;
	bool		from_gateway = call->source == DURABLE_SOURCE_REQUEST &&
		call->req.kind == DURABLE_REQUEST_GATEWAY;

	if (call->skipped)
		return;
	if (call->source == DURABLE_SOURCE_REQUEST && call->req.enqueued_at != 0 &&
		durable_host_number >= 0)
		DurableHostRecordLatency(durable_host_number,
								 GetCurrentTimestamp() - call->req.enqueued_at);
	if (from_gateway && strcmp(call->method, "$connect") == 0)
	{
		publish_connect(call);
		DurableOutboundPublish(call);
		publish_ready(call);
		return;
	}
	DurableOutboundPublish(call);
	if (from_gateway)
	{
		publish_gateway_reply(call);
		return;
	}
	if (call->source != DURABLE_SOURCE_REQUEST || call->req.caller < 0)
		return;
	memset(&reply, 0, sizeof(reply));
	reply.status = call->status;
	if (call->status == DURABLE_REPLY_ERROR)
	{
		ErrorData  *e = call->error;

		reply.sqlstate = unpack_sql_state(e->sqlerrcode);
		reply.message = e->message ? e->message : "unknown error";
		reply.detail = e->detail;
		reply.hint = e->hint;
		reply.context = e->context;
	}
	else
		reply.result = call->result;
	DurableReplySlotPublish(call->req.caller, call->req.seq, &reply);
}

/*
 * DurableCallFail
 *		Give call an error made of the given fields and answer it.
 */
void
DurableCallFail(DurableCall *call, int sqlerrcode, const char *message, const char *detail)
{
	ErrorData  *e = palloc0(sizeof(ErrorData));

	e->sqlerrcode = sqlerrcode;
	e->message = pstrdup(message);
	e->detail = detail ? pstrdup(detail) : NULL;
	call->status = DURABLE_REPLY_ERROR;
	call->error = e;
	DurableCallPublish(call);
}
