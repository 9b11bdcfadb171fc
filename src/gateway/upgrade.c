/*-------------------------------------------------------------------------
 *
 * upgrade.c
 *	  Before a WebSocket upgrade: may this request become a socket?
 *
 * ws://HOST:PORT/objects/{class}/{id}.  The gateway answers on its own from
 * its class directory: 404 unknown class, 403 a class without websocket or an
 * Origin not allowed, 503 too many sockets or the directory not arrived yet.
 * An accepted upgrade is remembered, with the args of its $connect (the
 * query, some headers, the peer), until lws opens the socket (ws.c).
 *
 * IDENTIFICATION
 *	  src/gateway/upgrade.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"
#include "gateway/json.h"

#include <stdlib.h>

#define MAX_HEADERS			16
#define MAX_QUERY			32

/* an upgrade accepted by us, waiting for lws to open the socket */
struct GwPending
{
	struct lws *wsi;
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	char	   *args;
	GatewayClassEntry entry;
	struct GwPending *next;
};

static GwPending *pending_upgrades = NULL;

/*
 * origin_allowed
 *		durable.allowed_origins: '' the same host only (or no Origin header),
 *		'*' any, else a comma-separated list of exact origins.
 */
static bool
origin_allowed(struct lws *wsi)
{
	char		origin[256];
	char		host[256];
	const char *list = durable_allowed_origins ? durable_allowed_origins : "";
	const char *o;
	int			n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);

	if (n <= 0)
		return lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) == 0;
	if (strcmp(list, "*") == 0)
		return true;
	if (list[0] == '\0')
	{
		o = strstr(origin, "://");
		if (o == NULL || lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
			return false;
		return strcmp(o + 3, host) == 0;
	}
	for (o = list; *o;)
	{
		const char *end = strchr(o, ',');
		size_t		len = end ? (size_t) (end - o) : strlen(o);

		while (len > 0 && (*o == ' ' || *o == '\t'))
		{
			o++;
			len--;
		}
		while (len > 0 && (o[len - 1] == ' ' || o[len - 1] == '\t'))
			len--;
		if (len == strlen(origin) && strncmp(o, origin, len) == 0)
			return true;
		if (end == NULL)
			break;
		o = end + 1;
	}
	return false;
}

/*
 * connect_args
 *		The args of $connect: the query, some request headers and the peer.
 */
static char *
connect_args(struct lws *wsi)
{
	static const struct
	{
		enum lws_token_indexes token;
		const char *name;
	}			headers[] =
	{
		{WSI_TOKEN_HOST, "host"},
		{WSI_TOKEN_ORIGIN, "origin"},
		{WSI_TOKEN_HTTP_USER_AGENT, "user-agent"},
		{WSI_TOKEN_HTTP_COOKIE, "cookie"},
		{WSI_TOKEN_HTTP_AUTHORIZATION, "authorization"},
		{WSI_TOKEN_HTTP_ACCEPT_LANGUAGE, "accept-language"},
		{WSI_TOKEN_PROTOCOL, "sec-websocket-protocol"},
		{WSI_TOKEN_X_FORWARDED_FOR, "x-forwarded-for"},
		{WSI_TOKEN_HTTP_REFERER, "referer"},
	};
	const char *hnames[MAX_HEADERS];
	const char *hvalues[MAX_HEADERS];
	char	   *hbufs[MAX_HEADERS];
	const char *qnames[MAX_QUERY];
	const char *qvalues[MAX_QUERY];
	char	   *qbufs[MAX_QUERY];
	char		peer[64];
	int			nh = 0;
	int			nq = 0;
	int			i;
	char	   *args;

	for (i = 0; i < (int) lengthof(headers) && nh < MAX_HEADERS; i++)
	{
		int			len = lws_hdr_total_length(wsi, headers[i].token);

		if (len <= 0 || (hbufs[nh] = malloc(len + 1)) == NULL)
			continue;
		if (lws_hdr_copy(wsi, hbufs[nh], len + 1, headers[i].token) < 0)
		{
			free(hbufs[nh]);
			continue;
		}
		hnames[nh] = headers[i].name;
		hvalues[nh] = hbufs[nh];
		nh++;
	}
	for (i = 0; nq < MAX_QUERY; i++)
	{
		char		frag[1024];
		char	   *eq;
		int			len = lws_hdr_copy_fragment(wsi, frag, sizeof(frag),
												WSI_TOKEN_HTTP_URI_ARGS, i);

		if (len < 0)
			break;
		if ((qbufs[nq] = strdup(frag)) == NULL)
			break;
		/* libwebsockets has percent-decoded the fragment already */
		eq = strchr(qbufs[nq], '=');
		if (eq)
			*eq++ = '\0';
		qnames[nq] = qbufs[nq];
		qvalues[nq] = eq ? eq : "";
		nq++;
	}
	peer[0] = '\0';
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	args = DurableJsonConnectArgs(qnames, qvalues, nq, hnames, hvalues, nh, peer);
	for (i = 0; i < nh; i++)
		free(hbufs[i]);
	for (i = 0; i < nq; i++)
		free(qbufs[i]);
	return args;
}

static int
refuse_upgrade(struct lws *wsi, unsigned int status, const char *code, const char *message)
{
	GatewayBuf	body;
	int			rc;

	GatewayBufInit(&body, 128);
	GatewayBufAppend(&body, "{", 1);
	GatewayBufAppendError(&body, code, message);
	GatewayBufAppend(&body, "}\n", 2);
	if (body.failed)
		rc = -1;
	else
	{
		body.data[LWS_PRE + body.len] = '\0';
		rc = GatewayRespondNow(wsi, status, "application/json", (char *) body.data + LWS_PRE);
	}
	GatewayBufFree(&body);
	return rc;
}

/*
 * GatewayUpgrade
 *		LWS_CALLBACK_HTTP_CONFIRM_UPGRADE of any path: decide before the
 *		upgrade.  Returns 0 to let lws upgrade, 1 after refusing with an HTTP
 *		response, -1 to hang up.
 */
int
GatewayUpgrade(struct lws *wsi, GatewaySession *pss, const char *path)
{
	char		class_name[DURABLE_MAX_CLASS_BYTES + 1];
	char	   *id;
	GatewayClassEntry entry;
	unsigned int status;
	GwPending  *p;

	if (!GatewayParseObjectPath(path, class_name, &id, NULL, false))
		return refuse_upgrade(wsi, HTTP_STATUS_NOT_FOUND, DURABLE_STATE_NO_CLASS,
							  "no such object route");
	status = GatewayLookupClass(class_name, &entry);
	if (status != 0)
	{
		free(id);
		return refuse_upgrade(wsi, status, GatewayRefusalState(status),
							  GatewayRefusalMessage(status));
	}
	if (!entry.websocket)
	{
		free(id);
		return refuse_upgrade(wsi, HTTP_STATUS_FORBIDDEN, DURABLE_STATE_PRIVILEGE,
							  "the class does not accept WebSockets");
	}
	if (!origin_allowed(wsi))
	{
		free(id);
		return refuse_upgrade(wsi, HTTP_STATUS_FORBIDDEN, DURABLE_STATE_PRIVILEGE,
							  "origin not allowed");
	}
	if ((int) pg_atomic_read_u32(&DurableGatewayStats()->sockets_open) >= durable_max_sockets)
	{
		free(id);
		return refuse_upgrade(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, DURABLE_STATE_TOO_MANY,
							  "too many sockets");
	}

	p = calloc(1, sizeof(GwPending));
	if (p == NULL || (p->args = connect_args(wsi)) == NULL)
	{
		free(p);
		free(id);
		return -1;
	}
	p->wsi = wsi;
	strlcpy(p->class_name, class_name, sizeof(p->class_name));
	p->id = id;
	p->entry = entry;
	p->next = pending_upgrades;
	pending_upgrades = p;
	return 0;
}

/* the upgrade waiting for wsi, taken off the list (NULL: none) */
GwPending *
GatewayTakePending(struct lws *wsi)
{
	GwPending **pp;

	for (pp = &pending_upgrades; *pp; pp = &(*pp)->next)
	{
		if ((*pp)->wsi == wsi)
		{
			GwPending  *p = *pp;

			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

void
GatewayFreePending(GwPending *p)
{
	if (p == NULL)
		return;
	free(p->id);
	free(p->args);
	free(p);
}

/* what a pending upgrade is for */
const char *
GatewayPendingClass(GwPending *p)
{
	return p->class_name;
}

const char *
GatewayPendingId(GwPending *p)
{
	return p->id;
}

const char *
GatewayPendingArgs(GwPending *p)
{
	return p->args;
}

const GatewayClassEntry *
GatewayPendingEntry(GwPending *p)
{
	return &p->entry;
}
