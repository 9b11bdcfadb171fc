/*-------------------------------------------------------------------------
 *
 * messages.c
 *	  Encoding and decoding of every message between sessions, hosts and the
 *	  gateway (messages.h has their fields).
 *
 * A message is stored in the shared message area as a list of parts
 * (area.c).  Each kind has its parts in a fixed order, written and read only
 * here:
 *
 *	call, session or host:	class, id, method, args (binary jsonb)
 *	call, gateway:			class, id, method, args (JSON text), socket,
 *							token, frame id (JSON text or NULL)
 *	reply, ok:				result (binary jsonb, NULL for SQL NULL)
 *	reply, error:			sqlstate, message, detail, hint, context
 *	to the gateway:			kind, then its fields (see encode_gateway)
 *
 * Numbers travel as decimal text.  Decoding a gateway message allocates
 * nothing and never throws (the gateway reads them inside lws callbacks).
 *
 * IDENTIFICATION
 *	  src/shared/messages.c
 *
 *-------------------------------------------------------------------------
 */
#include "shared/messages.h"
#include "shared/gateway_link.h"
#include "shared/settings.h"

#include <stdlib.h>

#include "utils/builtins.h"

/* append a part (NULL data: a NULL part) */
static void
put(DurableParts *parts, const char *data, uint32 len)
{
	int			i = parts->nparts++;

	Assert(i < DURABLE_MAX_PARTS);
	parts->data[i] = data;
	parts->len[i] = data ? len : 0;
	parts->isnull[i] = (data == NULL);
}

static void
put_string(DurableParts *parts, const char *s)
{
	put(parts, s, s ? strlen(s) : 0);
}

static void
put_bytes(DurableParts *parts, DurableBytes b)
{
	put(parts, b.data, b.len);
}

/* append a number as text, formatted into buf (which must outlive parts) */
static void
put_int(DurableParts *parts, char *buf, size_t size, int64 v)
{
	snprintf(buf, size, INT64_FORMAT, v);
	put_string(parts, buf);
}

static const char *
get_string(const DurableParts *parts, int i)
{
	return (i < parts->nparts && !parts->isnull[i]) ? parts->data[i] : NULL;
}

/* a number part; 0 for NULL or garbage.  Allocates nothing. */
static int64
get_int(const DurableParts *parts, int i)
{
	char		buf[32];
	size_t		n;

	if (i >= parts->nparts || parts->isnull[i])
		return 0;
	n = Min(parts->len[i], sizeof(buf) - 1);
	memcpy(buf, parts->data[i], n);
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

static DurableBytes
get_bytes(const DurableParts *parts, int i)
{
	DurableBytes b = {NULL, 0};

	if (i < parts->nparts && !parts->isnull[i])
	{
		b.data = parts->data[i];
		b.len = parts->len[i];
	}
	return b;
}

/* ----------------------------------------------------------------------
 * calls and replies
 * ----------------------------------------------------------------------
 */

/*
 * DurableCallMsgStore
 *		Store a call in the shared area, counted in msg->budget if set;
 *		InvalidDsaPointer when it is full or over the budget (see area.c,
 *		also for the one ERROR it may raise).
 */
dsa_pointer
DurableCallMsgStore(DurableRequestKind kind, const DurableCallMsg *msg)
{
	DurableParts parts;
	char		socket[24];
	char		token[24];

	memset(&parts, 0, sizeof(parts));
	put_string(&parts, msg->class_name);
	put_string(&parts, msg->id);
	put_string(&parts, msg->method);
	if (kind == DURABLE_REQUEST_CALL)
		put(&parts, (const char *) msg->args, VARSIZE(msg->args));
	else
	{
		put_string(&parts, msg->args_text);
		put_int(&parts, socket, sizeof(socket), msg->socket);
		snprintf(token, sizeof(token), UINT64_FORMAT, msg->token);
		put_string(&parts, token);
		put_string(&parts, msg->frame_id);
	}
	if (msg->budget != NULL)
		return DurableMessageStoreCounted(&parts, msg->budget);
	return DurableMessageStore(&parts);
}

/*
 * DurableCallMsgLoad
 *		Copy a stored call into the current memory context and free it in the
 *		shared area.
 */
void
DurableCallMsgLoad(DurableRequestKind kind, dsa_pointer message, DurableCallMsg *msg)
{
	DurableParts parts;

	memset(msg, 0, sizeof(*msg));
	DurableMessageLoad(message, &parts);
	msg->class_name = get_string(&parts, 0);
	msg->id = get_string(&parts, 1);
	msg->method = get_string(&parts, 2);
	if (kind == DURABLE_REQUEST_CALL)
		msg->args = (const Jsonb *) get_string(&parts, 3);
	else
	{
		msg->args_text = get_string(&parts, 3);
		msg->socket = get_int(&parts, 4);
		msg->token = (uint64) get_int(&parts, 5);
		msg->frame_id = get_string(&parts, 6);
	}
}

/*
 * DurableReplyMsgStore
 *		Store a reply; InvalidDsaPointer when the area is full (the caller
 *		then gets the status without its payload).  Never throws.
 */
dsa_pointer
DurableReplyMsgStore(const DurableReplyMsg *msg)
{
	DurableParts parts;

	memset(&parts, 0, sizeof(parts));
	if (msg->status == DURABLE_REPLY_OK)
		put(&parts, (const char *) msg->result, msg->result ? VARSIZE(msg->result) : 0);
	else
	{
		put_string(&parts, msg->sqlstate);
		put_string(&parts, msg->message);
		put_string(&parts, msg->detail);
		put_string(&parts, msg->hint);
		put_string(&parts, msg->context);
	}
	return DurableMessageStore(&parts);
}

/*
 * DurableReplyMsgLoad
 *		The reply of the given status stored at message (Invalid: it did not
 *		fit, msg->lost), copied into the current memory context.
 */
void
DurableReplyMsgLoad(DurableReplyStatus status, dsa_pointer message, DurableReplyMsg *msg)
{
	DurableParts parts;

	memset(msg, 0, sizeof(*msg));
	msg->status = status;
	msg->lost = !DsaPointerIsValid(message);
	if (msg->lost)
		return;
	DurableMessageLoad(message, &parts);
	if (status == DURABLE_REPLY_OK)
		msg->result = (Jsonb *) get_string(&parts, 0);
	else
	{
		msg->sqlstate = get_string(&parts, 0);
		msg->message = get_string(&parts, 1);
		msg->detail = get_string(&parts, 2);
		msg->hint = get_string(&parts, 3);
		msg->context = get_string(&parts, 4);
		msg->lost = (msg->message == NULL);
	}
}

/* ----------------------------------------------------------------------
 * messages to the gateway
 * ----------------------------------------------------------------------
 */

DurableBytes
DurableBytesOf(const char *s)
{
	DurableBytes b;

	b.data = s;
	b.len = s ? strlen(s) : 0;
	return b;
}

/*
 * DurableGatewaySend
 *		Queue msg for the gateway (its parts in the order below) and wake it;
 *		whether it was queued (not when no gateway runs or shared memory is
 *		exhausted).  Never throws.  The first part is the kind plus 256 times
 *		the database of the sending process (durable_db): the gateway reads
 *		a message as one of that database, whatever it says.
 */
bool
DurableGatewaySend(const DurableGatewayMsg *msg)
{
	DurableParts parts;
	char		kind[8];
	char		num1[24];
	char		num2[24];

	memset(&parts, 0, sizeof(parts));
	Assert(durable_db >= 0);
	put_int(&parts, kind, sizeof(kind), msg->kind + 256 * durable_db);
	switch (msg->kind)
	{
		case GATEWAY_MSG_CLASSES:
			put_bytes(&parts, msg->data);
			break;
		case GATEWAY_MSG_CONNECT:
			put_int(&parts, num1, sizeof(num1), msg->socket);
			put_string(&parts, msg->accept ? "t" : "f");
			put_int(&parts, num2, sizeof(num2), msg->code);
			put_bytes(&parts, msg->reason);
			put_bytes(&parts, msg->tags);
			break;
		case GATEWAY_MSG_READY:
			put_int(&parts, num1, sizeof(num1), msg->socket);
			break;
		case GATEWAY_MSG_REPLY:
		case GATEWAY_MSG_ERROR:
			put_int(&parts, num1, sizeof(num1), msg->socket);
			snprintf(num2, sizeof(num2), UINT64_FORMAT, msg->token);
			put_string(&parts, num2);
			put_bytes(&parts, msg->frame_id);
			if (msg->kind == GATEWAY_MSG_REPLY)
				put_bytes(&parts, msg->result);
			else
			{
				put_bytes(&parts, msg->sqlstate);
				put_bytes(&parts, msg->message);
			}
			break;
		case GATEWAY_MSG_EVENT:
			put_bytes(&parts, msg->class_name);
			put_bytes(&parts, msg->id);
			put_bytes(&parts, msg->tag);
			put_int(&parts, num1, sizeof(num1), msg->exclude);
			put_bytes(&parts, msg->data);
			put_string(&parts, msg->binary ? "t" : "f");
			put_int(&parts, num2, sizeof(num2), msg->seq);
			break;
		case GATEWAY_MSG_SEND:
			put_int(&parts, num1, sizeof(num1), msg->socket);
			put_bytes(&parts, msg->data);
			put_string(&parts, msg->binary ? "t" : "f");
			put_int(&parts, num2, sizeof(num2), msg->seq);
			break;
		case GATEWAY_MSG_GAP:
			put_int(&parts, num1, sizeof(num1), msg->socket);
			put_int(&parts, num2, sizeof(num2), msg->seq);
			break;
		case GATEWAY_MSG_DROPPED:
			break;
		case GATEWAY_MSG_CLOSE:
			put_int(&parts, num1, sizeof(num1), msg->socket);
			put_int(&parts, num2, sizeof(num2), msg->code);
			put_bytes(&parts, msg->reason);
			break;
	}
	return DurableGatewayPush(&parts);
}

/*
 * DurableGatewayMsgDecode
 *		In the gateway: the fields of a queued message, pointing into its
 *		parts.  False for a message of no known kind or with too few parts.
 *		Allocates nothing, never throws.
 */
bool
DurableGatewayMsgDecode(const DurableParts *parts, DurableGatewayMsg *msg)
{
	static const int nparts[] = {
		[GATEWAY_MSG_CLASSES] = 2,
		[GATEWAY_MSG_CONNECT] = 6,
		[GATEWAY_MSG_READY] = 2,
		[GATEWAY_MSG_REPLY] = 5,
		[GATEWAY_MSG_ERROR] = 6,
		[GATEWAY_MSG_EVENT] = 8,
		[GATEWAY_MSG_SEND] = 5,
		[GATEWAY_MSG_CLOSE] = 4,
		[GATEWAY_MSG_GAP] = 3,
		[GATEWAY_MSG_DROPPED] = 1
	};
	int64		kind = get_int(parts, 0) % 256;

	memset(msg, 0, sizeof(*msg));
	msg->db = (int) (get_int(parts, 0) / 256);
	if (kind < GATEWAY_MSG_CLASSES || kind > GATEWAY_MSG_DROPPED || parts->nparts < nparts[kind])
		return false;
	msg->kind = (DurableGatewayMsgKind) kind;
	switch (msg->kind)
	{
		case GATEWAY_MSG_CLASSES:
			msg->data = get_bytes(parts, 1);
			break;
		case GATEWAY_MSG_CONNECT:
			msg->socket = get_int(parts, 1);
			msg->accept = parts->len[2] == 1 && parts->data[2][0] == 't';
			msg->code = (int) get_int(parts, 3);
			msg->reason = get_bytes(parts, 4);
			msg->tags = get_bytes(parts, 5);
			break;
		case GATEWAY_MSG_READY:
			msg->socket = get_int(parts, 1);
			break;
		case GATEWAY_MSG_REPLY:
		case GATEWAY_MSG_ERROR:
			msg->socket = get_int(parts, 1);
			msg->token = (uint64) get_int(parts, 2);
			msg->frame_id = get_bytes(parts, 3);
			if (msg->kind == GATEWAY_MSG_REPLY)
				msg->result = get_bytes(parts, 4);
			else
			{
				msg->sqlstate = get_bytes(parts, 4);
				msg->message = get_bytes(parts, 5);
			}
			break;
		case GATEWAY_MSG_EVENT:
			msg->class_name = get_bytes(parts, 1);
			msg->id = get_bytes(parts, 2);
			msg->tag = get_bytes(parts, 3);
			msg->exclude = get_int(parts, 4);
			msg->data = get_bytes(parts, 5);
			msg->binary = parts->len[6] == 1 && parts->data[6][0] == 't';
			msg->seq = get_int(parts, 7);
			break;
		case GATEWAY_MSG_SEND:
			msg->socket = get_int(parts, 1);
			msg->data = get_bytes(parts, 2);
			msg->binary = parts->len[3] == 1 && parts->data[3][0] == 't';
			msg->seq = get_int(parts, 4);
			break;
		case GATEWAY_MSG_GAP:
			msg->socket = get_int(parts, 1);
			msg->seq = get_int(parts, 2);
			break;
		case GATEWAY_MSG_DROPPED:
			break;
		case GATEWAY_MSG_CLOSE:
			msg->socket = get_int(parts, 1);
			msg->code = (int) get_int(parts, 2);
			msg->reason = get_bytes(parts, 3);
			break;
	}
	return true;
}

/* a palloc'd copy of b (NUL-terminated) */
static DurableBytes
copy_bytes(DurableBytes b)
{
	char	   *copy;

	if (b.data == NULL)
		return b;
	copy = palloc(b.len + 1);
	memcpy(copy, b.data, b.len);
	copy[b.len] = '\0';
	b.data = copy;
	return b;
}

/*
 * DurableGatewayMsgCopy
 *		A deep copy of msg in the current memory context (hosts keep the
 *		messages of a call until it committed).
 */
DurableGatewayMsg *
DurableGatewayMsgCopy(const DurableGatewayMsg *msg)
{
	DurableGatewayMsg *copy = palloc(sizeof(DurableGatewayMsg));

	*copy = *msg;
	copy->frame_id = copy_bytes(msg->frame_id);
	copy->result = copy_bytes(msg->result);
	copy->sqlstate = copy_bytes(msg->sqlstate);
	copy->message = copy_bytes(msg->message);
	copy->reason = copy_bytes(msg->reason);
	copy->tags = copy_bytes(msg->tags);
	copy->class_name = copy_bytes(msg->class_name);
	copy->id = copy_bytes(msg->id);
	copy->tag = copy_bytes(msg->tag);
	copy->data = copy_bytes(msg->data);
	return copy;
}
