/*-------------------------------------------------------------------------
 *
 * placement.h
 *	  Where objects live when durable.distribute() spread the per-object
 *	  tables over a Citus cluster (placement.c).
 *
 * IDENTIFICATION
 *	  src/shared/placement.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_PLACEMENT_H
#define DURABLE_PLACEMENT_H

#include "postgres.h"

extern bool DurableDistributed(void);
extern void DurableCheckObjectHere(const char *class_name, const char *id);
extern bool DurableLocalStatement(const char *sql, const char *table, int order_by,
								  const char *limit, char **local);

#endif							/* DURABLE_PLACEMENT_H */
