/*-------------------------------------------------------------------------
 *
 * epochs.h
 *	  Counters that tell the hosts to forget what they keep in memory
 *	  (epochs.c).
 *
 * IDENTIFICATION
 *	  src/shared/epochs.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_EPOCHS_H
#define DURABLE_EPOCHS_H

#include "postgres.h"

extern void DurableEpochsShmemRequest(void);
extern void DurableEpochsShmemStartup(void);

extern uint64 DurableStorageEpoch(void);
extern void DurableStorageEpochBump(void);
extern uint64 DurableSettingsEpoch(void);
extern void DurableSettingsEpochBump(void);
extern void DurableClassDirMarkDirty(void);
extern bool DurableClassDirTakeDirty(int db);
extern uint64 DurableExtensionGoneEpoch(void);
extern void DurableExtensionGoneBump(void);

#endif							/* DURABLE_EPOCHS_H */
