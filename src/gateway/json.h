/*-------------------------------------------------------------------------
 *
 * json.h
 *	  The jansson-backed JSON writers of the gateway (json.c).
 *
 * Plain C types only: this header must not pull in jansson.h (whose
 * json_object clashes with PostgreSQL's headers) nor PostgreSQL's fmgr.
 * Results are malloc'd; nothing here raises an error.
 *
 * IDENTIFICATION
 *	  src/gateway/json.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_JSON_H
#define DURABLE_JSON_H

extern char *DurableJsonConnectArgs(const char *const *query_names,
									const char *const *query_values, int nquery,
									const char *const *header_names,
									const char *const *header_values, int nheaders,
									const char *remote_addr, int64 since);
extern char *DurableJsonCloseArgs(int64 socket, int code, const char *reason,
								  const char *tags_json);
extern int	DurableJsonTags(const char *tags_json, char ***tags);

#endif							/* DURABLE_JSON_H */
