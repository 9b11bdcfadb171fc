/*-------------------------------------------------------------------------
 *
 * pg_durable_objects.c
 *	  Module entry point: settings, shared memory hooks, worker registration.
 *
 * _PG_init runs in the postmaster when the library is preloaded.  It defines
 * the durable.* settings (shared/settings.c), asks for the shared memory of
 * each module, creates the gateway's wake eventfd, registers the host
 * workers and the gateway, and installs a utility hook that tells the hosts
 * when ALTER ROLE/DATABASE ... SET changed the settings of class owners.
 * Loaded any other way, it defines only the reloadable settings, and the SQL
 * functions explain that the library must be preloaded.
 *
 * The source is layered; each layer uses only the ones below it
 * (docs/internals.md has the picture):
 *	this file		_PG_init
 *	sql/, gateway/	what sessions call; the HTTP/WebSocket listener
 *	host/			the host workers that run calls
 *	shared/			settings, shared memory, messages, the class cache
 *
 * IDENTIFICATION
 *	  src/pg_durable_objects.c
 *
 *-------------------------------------------------------------------------
 */
#include "gateway/gateway.h"
#include "host/host.h"
#include "shared/area.h"
#include "shared/epochs.h"
#include "shared/gateway_link.h"
#include "shared/hosts.h"
#include "shared/lanes.h"
#include "shared/replies.h"
#include "shared/settings.h"
#include "sql/sql.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "tcop/utility.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

static void
durable_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	DurableHostsShmemRequest();
	DurableLanesShmemRequest();
	DurableRepliesShmemRequest();
	DurableAreaShmemRequest();
	DurableGatewayLinkShmemRequest();
	DurableEpochsShmemRequest();
}

static void
durable_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	DurableHostsShmemStartup();
	DurableLanesShmemStartup();
	DurableRepliesShmemStartup();
	DurableAreaShmemStartup();
	DurableGatewayLinkShmemStartup();
	DurableEpochsShmemStartup();
}

/*
 * durable_process_utility
 *		ProcessUtility_hook: after ALTER ROLE/DATABASE ... SET, the hosts read
 *		the settings of class owners again once the transaction commits.
 */
static void
durable_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params,
								  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	if (IsA(stmt, AlterRoleSetStmt) || IsA(stmt, AlterDatabaseSetStmt))
		DurableSettingsChangedAtCommit();
}

/*
 * _PG_init
 *		Module load.  Everything but the settings needs shared_preload_libraries.
 */
void
_PG_init(void)
{
	DurableDefineSettings(process_shared_preload_libraries_in_progress);
	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = durable_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = durable_shmem_startup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = durable_process_utility;

	DurableGatewayInit();
	DurableSchedulerRegister();
	DurableGatewayRegister();
}
