/*-------------------------------------------------------------------------
 *
 * origin.c
 *	  Which web pages may use the gateway: the Origin rules, for WebSocket
 *	  upgrades and HTTP calls alike.
 *
 * Browsers send an Origin header with every WebSocket upgrade and every
 * cross-site POST (and, today, with same-site POSTs too).  durable.allowed_
 * origins decides:
 *	'*'			any origin (it then gets CORS headers)
 *	a list		exactly these origins, byte for byte (they get CORS headers)
 *	'' (default) only a page of this gateway on a loopback address: the
 *				Origin's scheme://host[:port] must equal the Host header AND
 *				name a loopback host (localhost, *.localhost, 127.0.0.0/8,
 *				[::1]).  Trusting a matching Host alone is not enough: a page
 *				of attacker.example whose name the attacker re-points at
 *				127.0.0.1 (DNS rebinding) sends Origin and Host that match.
 * A request without Origin is not from a browser page and passes: the rule
 * protects browsers' users from other sites, it authenticates nobody.
 *
 * IDENTIFICATION
 *	  src/gateway/origin.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway_int.h"

#include <arpa/inet.h>

/* the longest Origin header looked at; longer ones are refused */
#define MAX_ORIGIN		255

/* whether the host part of an authority (host[:port]) is a loopback host */
static bool
loopback_authority(const char *authority)
{
	char		host[MAX_ORIGIN + 1];
	const char *end;
	size_t		n;
	struct in_addr a4;

	if (authority[0] == '[')
	{
		end = strchr(authority, ']');
		return end != NULL && end - authority == 4 && strncmp(authority, "[::1]", 5) == 0 &&
			(end[1] == '\0' || end[1] == ':');
	}
	end = strchr(authority, ':');
	n = end ? (size_t) (end - authority) : strlen(authority);
	if (n == 0 || n > MAX_ORIGIN)
		return false;
	memcpy(host, authority, n);
	host[n] = '\0';
	if (pg_strcasecmp(host, "localhost") == 0 ||
		(n > 10 && pg_strcasecmp(host + n - 10, ".localhost") == 0))
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* the default rule: a loopback page of this gateway */
static bool
same_loopback(const char *origin, const char *host)
{
	const char *authority;

	if (pg_strncasecmp(origin, "http://", 7) == 0)
		authority = origin + 7;
	else if (pg_strncasecmp(origin, "https://", 8) == 0)
		authority = origin + 8;
	else
		return false;
	return host != NULL && strchr(authority, '/') == NULL &&
		pg_strcasecmp(authority, host) == 0 && loopback_authority(authority);
}

/* whether origin is in the comma-separated list (spaces around commas ignored) */
static bool
listed(const char *list, const char *origin)
{
	const char *cursor = list;
	const char *o;
	size_t		len;

	while (DurableListItem(&cursor, &o, &len))
		if (len > 0 && len == strlen(origin) && strncmp(o, origin, len) == 0)
			return true;
	return false;
}

/*
 * GatewayOriginCheck
 *		The verdict of durable.allowed_origins on req's Origin header.
 */
GatewayOrigin
GatewayOriginCheck(const GatewayRequest *req)
{
	const char *origin = GatewayRequestHeader(req, "origin");
	const char *list = durable_allowed_origins ? durable_allowed_origins : "";

	if (origin == NULL)
		return GATEWAY_ORIGIN_NONE;
	if (strlen(origin) > MAX_ORIGIN)
		return GATEWAY_ORIGIN_REFUSED;
	if (strcmp(list, "*") == 0)
		return GATEWAY_ORIGIN_LISTED;
	if (list[0] != '\0')
		return listed(list, origin) ? GATEWAY_ORIGIN_LISTED : GATEWAY_ORIGIN_REFUSED;
	return same_loopback(origin, GatewayRequestHeader(req, "host")) ?
		GATEWAY_ORIGIN_SAME : GATEWAY_ORIGIN_REFUSED;
}
