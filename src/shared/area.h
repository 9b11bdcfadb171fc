/*-------------------------------------------------------------------------
 *
 * area.h
 *	  The shared message area: byte strings ("parts") in a DSA area (area.c).
 *
 * IDENTIFICATION
 *	  src/shared/area.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_AREA_H
#define DURABLE_AREA_H

#include "postgres.h"

#include "utils/dsa.h"

/*
 * A message as stored: a list of byte strings.  A NULL part is kept distinct
 * from an empty one.  messages.h gives each kind of message its fields.
 */
#define DURABLE_MAX_PARTS 8

typedef struct DurableParts
{
	int			nparts;
	const char *data[DURABLE_MAX_PARTS];
	uint32		len[DURABLE_MAX_PARTS];
	bool		isnull[DURABLE_MAX_PARTS];
} DurableParts;

/*
 * Accounts: the gateway counts the messages it stores for each client (a
 * connection) in the shared area, and all of them together, so that one
 * client cannot fill the area (area.c).
 */
#define DURABLE_AREA_ACCOUNTS	65536

typedef struct DurableAreaBudget
{
	uint32		account;		/* 1 .. DURABLE_AREA_ACCOUNTS - 1 */
	uint64		account_limit;	/* most bytes of the account's messages */
	uint64		total_limit;	/* most bytes of all counted messages */
	bool		over;			/* out: not stored, it would go over a limit */
} DurableAreaBudget;

extern void DurableAreaShmemRequest(void);
extern void DurableAreaShmemStartup(void);
extern void DurableAreaAttach(void);
extern dsa_area *DurableArea(void);
extern dsa_pointer DurableMessageStore(const DurableParts *parts);
extern dsa_pointer DurableMessageStoreCounted(const DurableParts *parts,
											  DurableAreaBudget *budget);
extern uint64 DurableAreaAccountBytes(uint32 account);
extern uint64 DurableAreaCountedBytes(void);
extern void DurableAreaApplyLimit(void);
extern void DurableMessageView(dsa_pointer message, DurableParts *parts);
extern void DurableMessageLoad(dsa_pointer message, DurableParts *parts);
extern void DurableMessageFree(dsa_pointer message);

#endif							/* DURABLE_AREA_H */
