/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The durable.* settings and the fixed limits of pg_durable_objects.
 *
 * Every other file may include this one; it includes nothing of ours.
 *
 * IDENTIFICATION
 *	  src/shared/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_SETTINGS_H
#define DURABLE_SETTINGS_H

#include "postgres.h"

#define DURABLE_EXTENSION_NAME	"pg_durable_objects"
#define DURABLE_SCHEMA			"durable"

/* fixed limits */
#define DURABLE_MAX_HOME_HOSTS	64	/* maximum of durable.hosts */
#define DURABLE_MAX_HOSTS		256 /* maximum of durable.max_hosts */
#define DURABLE_MAX_DATABASES	16	/* most names in durable.database */
#define DURABLE_MAX_BATCH		1000	/* maximum of durable.max_batch */
#define DURABLE_MAX_CLASS_BYTES 63
#define DURABLE_MAX_ID_BYTES	512
#define DURABLE_MAX_KEY_BYTES	2048
#define DURABLE_MAX_AUTO_RESPONSE 255	/* bytes of each auto_response string */
#define DURABLE_MAX_CLOSE_REASON 123	/* bytes of a WebSocket close reason */
#define DURABLE_RETAIN_EVENTS_DEFAULT 100	/* class option retain.events */
#define DURABLE_RETAIN_EVENTS_MAX 100000
#define DURABLE_HISTORY_MAX_YEARS 100	/* class option history: at most this long */

/* hosts and calls */
extern char *durable_database;	/* as set: a list of names */
extern int	durable_db;			/* this process serves database number durable_db
								 * of the list (0: the first); -1: none */
extern int	durable_hosts;
extern int	durable_max_hosts;
extern int	durable_busy_threshold;
extern int	durable_max_batch;
extern int	durable_call_timeout;
extern int	durable_max_message_bytes;
extern int	durable_idle_timeout;
extern int	durable_cache_size;
extern int	durable_max_attempts;
extern int	durable_retry_delay;
extern int	durable_max_classes_per_role;

/* the gateway */
extern char *durable_listen_address;
extern int	durable_port;
extern char *durable_static_dir;
extern char *durable_ssl_cert_file;
extern char *durable_ssl_key_file;
extern int	durable_max_sockets;
extern int	durable_socket_buffer_bytes;
extern char *durable_allowed_origins;
extern int	durable_message_area_bytes;
extern int	durable_client_area_bytes;
extern int	durable_max_receive_bytes;
extern int	durable_slow_consumer_timeout;

extern void DurableDefineSettings(bool preloading);
extern bool DurableListItem(const char **cursor, const char **item, size_t *len);
extern int	DurableDatabaseCount(void);
extern const char *DurableDatabaseName(int db);
extern int	DurableDatabaseNumber(const char *name);
extern bool DurableGatewayEnabled(void);

#endif							/* DURABLE_SETTINGS_H */
