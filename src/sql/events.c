/*-------------------------------------------------------------------------
 *
 * events.c
 *	  durable.events(): an object's retained events, from SQL.
 *
 * The rows of durable._events within the class's retention window
 * (shared/event_log.c), after since, oldest first, binary ones as
 * {"binary": "<base64>"}.  Whoever may call the class's objects may read
 * their broadcasts (EXECUTE on the handler); what went to single sockets
 * (socket_send) only roles with the class owner's privileges (superusers
 * too).  Only committed events are seen.
 *
 * IDENTIFICATION
 *	  src/sql/events.c
 *
 *-------------------------------------------------------------------------
 */
#include "sql/sql.h"
#include "shared/event_log.h"
#include "shared/objects.h"

#include "common/base64.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(durable_events);

/* {"binary": "<base64 of bin>"} */
static Jsonb *
binary_json(const bytea *bin)
{
	int			len = VARSIZE_ANY_EXHDR(bin);
	int			enclen = pg_b64_enc_len(len);
	char	   *b64 = palloc(enclen + 1);
	int			n = len > 0 ? pg_b64_encode(VARDATA_ANY(bin), len, b64, enclen) : 0;
	JsonbParseState *state = NULL;
	JsonbValue	k,
				v;
	JsonbValue *root;

	if (n < 0)
		elog(ERROR, "could not encode a binary event");
	k.type = jbvString;
	k.val.string.val = "binary";
	k.val.string.len = 6;
	v.type = jbvString;
	v.val.string.val = b64;
	v.val.string.len = n;
	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	(void) pushJsonbValue(&state, WJB_KEY, &k);
	(void) pushJsonbValue(&state, WJB_VALUE, &v);
	root = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(root);
}

/*
 * durable_events
 *		durable.events(class text, id text, since bigint) RETURNS TABLE (seq
 *		bigint, data jsonb, at timestamptz)
 */
Datum
durable_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *class_name;
	char	   *id;
	int64		since;
	DurableClass cls;
	List	   *events;
	ListCell   *lc;
	int64		last;

	DurableCheckReady();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("class, object id and since must not be null")));
	class_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	since = PG_GETARG_INT64(2);
	DurableCheckClassName(class_name);
	DurableCheckId(id);
	DurableCheckCallable(class_name, &cls);

	InitMaterializedSRF(fcinfo, 0);
	last = DurableEventLast(class_name, id);
	/* what went to single sockets is the owner's to read */
	events = DurableEventRead(class_name, id, DurableEventAfter(&cls, last, since),
							  DurableEventCutoff(&cls),
							  !has_privs_of_role(GetUserId(), cls.owner));
	foreach(lc, events)
	{
		DurableEvent *e = lfirst(lc);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int64GetDatum(e->seq);
		values[1] = JsonbPGetDatum(e->bin != NULL ? binary_json(e->bin) : e->data);
		values[2] = TimestampTzGetDatum(e->at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
