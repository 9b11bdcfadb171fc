/*-------------------------------------------------------------------------
 *
 * storage_cache.c
 *	  A host's in-memory copy of the storage of its objects.
 *
 * storage.c asks here first.  durable.get() of a key the host has read or
 * written before is answered from memory; durable.put() and durable.delete()
 * only change memory, and the keys a transaction changed are written to
 * durable._storage in one statement just before it commits (the
 * XACT_EVENT_PRE_COMMIT callback), so they commit with the batch or not at
 * all.  Twenty calls incrementing one counter in a batch write its row once.
 *
 * Every change records how the entry was before (an undo record tagged with
 * the subtransaction nesting level).  When a call's subtransaction rolls
 * back, its records are played backwards, so the cache is again what the
 * tables hold plus the writes of the calls that succeeded; when the whole
 * transaction aborts the cache is emptied.  Entries only ever become
 * "unknown" (a miss, read again from the table), never disappear, while a
 * transaction runs, so undo records can point at them.
 *
 * An object runs on one host at a time, but not always on the same one
 * (shared/lanes.c moves objects off busy hosts).  Each entry carries its
 * object's generation; when a call starts and another host ran its object
 * since this one did, the object's generation moves on and its entries count
 * as unknown (undo records keep the generation, so a rollback restores the
 * entry as it was).
 *
 * Hosts are the only writers of an object's storage.  Any other writer (a
 * superuser's UPDATE, COPY of a restore, durable.drop_class) fires the
 * statement trigger durable._storage_written (sql/at_commit.c), which bumps
 * the storage epoch when its transaction commits; a host that sees the epoch move forgets all
 * clean entries before its next call.  Values over CACHE_VALUE_BYTES are not
 * kept (written through at once); a hibernating object's entries are dropped
 * (residency.c); when the cache outgrows durable.cache_size after a commit it
 * is emptied and fills again from the hot keys.
 *
 * IDENTIFICATION
 *	  src/host/storage_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "host/host_int.h"
#include "shared/epochs.h"
#include "shared/objects.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "catalog/namespace.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* values larger than this are written through, not kept */
#define CACHE_VALUE_BYTES 8192

/*
 * A call that holds more changes than this writes them at once, inside the
 * call and under its time limit, instead of leaving a long write to the
 * batch's commit, where nothing limits it.
 */
#define HELD_FLUSH_CHANGES 4096
#define HELD_FLUSH_BYTES (4 * 1024 * 1024)

typedef enum EntryState
{
	ENTRY_UNKNOWN = 0,			/* not known: read the table */
	ENTRY_PRESENT,				/* the key holds value */
	ENTRY_ABSENT				/* the key does not exist */
} EntryState;

typedef struct CacheKey
{
	const char *class_name;
	const char *id;
	const char *key;			/* not NUL-terminated */
	int			keylen;
} CacheKey;

typedef struct CacheEntry
{
	CacheKey	k;				/* points into the entry's own copy */
	uint64		object;			/* DurableObjectKey of (class, id) */
	uint32		gen;			/* its object's generation when last changed */
	EntryState	state;
	bool		dirty;			/* changed by this transaction, not yet written */
	Jsonb	   *value;			/* ENTRY_PRESENT */
	const char *method;			/* dirty: the call that changed it (history.c) */
} CacheEntry;

typedef struct UndoRecord
{
	CacheEntry *entry;
	int			level;			/* subtransaction nesting level of the change */
	EntryState	state;			/* the entry before the change */
	uint32		gen;
	bool		dirty;
	Jsonb	   *value;
	const char *method;
	Jsonb	   *new_value;		/* the entry's value after the change */
} UndoRecord;

/* an object's generation: its entries of an older one are unknown */
typedef struct ObjectGen
{
	uint64		object;			/* hash key */
	uint32		gen;
} ObjectGen;

static MemoryContext CacheContext = NULL;
static HTAB *entries = NULL;
static HTAB *generations = NULL;
static UndoRecord *undo = NULL;
static int	nundo = 0;
static int	held_changes = 0;		/* changes held since the last flush */
static Size held_bytes = 0;
static const char *held_method = NULL;	/* the latest method of a change, this transaction's copy */
static int	undo_size = 0;
static uint64 seen_epoch = 0;
static bool callbacks_registered = false;
static Oid	storage_relid = InvalidOid; /* durable._storage, once looked up */
static bool relation_changed = false;	/* a relcache invalidation hit it */

static SPIPlanPtr upsert_plan = NULL;
static SPIPlanPtr delete_plan = NULL;

static const DurableStatement delete_statement = {
	"DELETE FROM durable._storage "
	" WHERE class OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2 "
	"   AND key OPERATOR(pg_catalog.=) $3",
	3, {TEXTOID, TEXTOID, TEXTOID}
};

static uint32
key_hash(const void *key, Size keysize)
{
	const CacheKey *k = key;

	return hash_combine(hash_combine(hash_bytes((const unsigned char *) k->class_name,
												strlen(k->class_name)),
									 hash_bytes((const unsigned char *) k->id, strlen(k->id))),
						hash_bytes((const unsigned char *) k->key, k->keylen));
}

static int
key_match(const void *key1, const void *key2, Size keysize)
{
	const CacheKey *a = key1;
	const CacheKey *b = key2;

	if (a->keylen != b->keylen || memcmp(a->key, b->key, a->keylen) != 0 ||
		strcmp(a->id, b->id) != 0 || strcmp(a->class_name, b->class_name) != 0)
		return 1;
	return 0;
}

/* forget everything (outside a running transaction's changes) */
static void
cache_reset(void)
{
	if (CacheContext)
		MemoryContextReset(CacheContext);
	entries = NULL;
	generations = NULL;
	undo = NULL;
	nundo = undo_size = 0;
	held_changes = 0;
	held_bytes = 0;
}

static void cache_xact_event(XactEvent event, void *arg);
static void cache_relcache_event(Datum arg, Oid relid);
static void cache_subxact_event(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg);

static void
ensure_cache(void)
{
	HASHCTL		ctl;

	if (!callbacks_registered)
	{
		RegisterXactCallback(cache_xact_event, NULL);
		RegisterSubXactCallback(cache_subxact_event, NULL);
		CacheRegisterRelcacheCallback(cache_relcache_event, (Datum) 0);
		CacheContext = AllocSetContextCreate(TopMemoryContext, "durable storage cache",
											 ALLOCSET_DEFAULT_SIZES);
		seen_epoch = DurableStorageEpoch();
		callbacks_registered = true;
	}
	if (entries)
		return;
	ctl.keysize = sizeof(CacheKey);
	ctl.entrysize = sizeof(CacheEntry);
	ctl.hash = key_hash;
	ctl.match = key_match;
	ctl.hcxt = CacheContext;
	entries = hash_create("durable storage cache", 1024, &ctl,
						  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(ObjectGen);
	ctl.hcxt = CacheContext;
	generations = hash_create("durable storage cache generations", 256, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* the current generation of object */
static uint32
object_generation(uint64 object)
{
	ObjectGen  *g = hash_search(generations, &object, HASH_FIND, NULL);

	return g ? g->gen : 0;
}

/* whether this process caches storage; if so, the cache is ready */
static bool
cache_enabled(void)
{
	if (durable_cache_size <= 0 || !DurableInHost())
		return false;
	ensure_cache();
	return true;
}

static void change(CacheEntry *e, EntryState state, bool dirty, Jsonb *value);

/* the entry of (class, id, key), created unknown if missing */
static CacheEntry *
lookup(const char *class_name, const char *id, const text *key, bool create)
{
	CacheKey	k;
	CacheEntry *e;
	bool		found;

	k.class_name = class_name;
	k.id = id;
	k.key = VARDATA_ANY(key);
	k.keylen = VARSIZE_ANY_EXHDR(key);
	e = hash_search(entries, &k, create ? HASH_ENTER : HASH_FIND, &found);
	if (e && found && e->state != ENTRY_UNKNOWN && e->gen != object_generation(e->object))
	{
		/* another host ran the object since: what we knew is unknown now */
		Assert(!e->dirty);
		change(e, ENTRY_UNKNOWN, false, NULL);
	}
	if (e && !found)
	{
		size_t		cl = strlen(class_name) + 1;
		size_t		il = strlen(id) + 1;
		char	   *copy = MemoryContextAlloc(CacheContext, cl + il + k.keylen);

		memcpy(copy, class_name, cl);
		memcpy(copy + cl, id, il);
		memcpy(copy + cl + il, k.key, k.keylen);
		e->k.class_name = copy;
		e->k.id = copy + cl;
		e->k.key = copy + cl + il;
		e->k.keylen = k.keylen;
		e->object = DurableObjectKey(class_name, id);
		e->gen = object_generation(e->object);
		e->state = ENTRY_UNKNOWN;
		e->dirty = false;
		e->value = NULL;
		e->method = NULL;
	}
	return e;
}

/* change e to (state, dirty, value), remembering how it was */
static void
change(CacheEntry *e, EntryState state, bool dirty, Jsonb *value)
{
	UndoRecord *u;

	if (nundo == undo_size)
	{
		undo_size = Max(64, undo_size * 2);
		undo = undo ? repalloc(undo, sizeof(UndoRecord) * undo_size)
			: MemoryContextAlloc(CacheContext, sizeof(UndoRecord) * undo_size);
	}
	u = &undo[nundo++];
	u->entry = e;
	u->level = GetCurrentTransactionNestLevel();
	u->state = e->state;
	u->gen = e->gen;
	u->dirty = e->dirty;
	u->value = e->value;
	u->method = e->method;
	u->new_value = value;
	e->state = state;
	e->gen = object_generation(e->object);
	e->dirty = dirty;
	e->value = value;
}

static Jsonb *
copy_value(const Jsonb *value)
{
	Jsonb	   *copy = MemoryContextAlloc(CacheContext, VARSIZE(value));

	memcpy(copy, value, VARSIZE(value));
	return copy;
}

/*
 * undo_to
 *		Play back the changes made at nesting level >= level, newest first,
 *		freeing the values they had set.
 */
static void
undo_to(int level)
{
	while (nundo > 0 && undo[nundo - 1].level >= level)
	{
		UndoRecord *u = &undo[--nundo];
		CacheEntry *e = u->entry;

		if (u->new_value && u->new_value != u->value)
			pfree(u->new_value);
		e->state = u->state;
		e->gen = u->gen;
		e->dirty = u->dirty;
		e->value = u->value;
		e->method = u->method;
	}
}

/* the transaction committed: free the values its changes replaced */
static void
forget_undo(void)
{
	int			i;

	/* each value is replaced by a different one at most once */
	for (i = 0; i < nundo; i++)
		if (undo[i].value && undo[i].value != undo[i].new_value)
			pfree(undo[i].value);
	nundo = 0;
	held_changes = 0;
	held_bytes = 0;
}

static void
cache_subxact_event(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i;

	if (event == SUBXACT_EVENT_ABORT_SUB)
		undo_to(level);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		for (i = nundo - 1; i >= 0 && undo[i].level >= level; i--)
			undo[i].level = level - 1;
}

static void
cache_xact_event(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/* outside any call: lock waits end at lock_timeout (sandbox.c) */
			DurableCacheFlush();
			break;
		case XACT_EVENT_COMMIT:
			held_method = NULL;
			forget_undo();
			if (MemoryContextMemAllocated(CacheContext, true) >
				(Size) Max(durable_cache_size, 0) * 1024)
				cache_reset();
			break;
		case XACT_EVENT_ABORT:
			held_method = NULL;
			cache_reset();
			break;
		default:
			break;
	}
}

/*
 * cache_relcache_event
 *		durable._storage was dropped (DROP EXTENSION), truncated, vacuumed ...:
 *		the next call forgets what the cache read from it.
 */
static void
cache_relcache_event(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == storage_relid)
	{
		relation_changed = true;
		storage_relid = InvalidOid;
	}
}

/*
 * DurableCacheBeginCall
 *		Before each call of object: unless cache_valid (no other host ran the
 *		object since this one did, shared/lanes.c), what this host knew of
 *		the object is unknown from now on.  And if anyone but a host wrote
 *		storage since we looked, or the table changed, forget every entry
 *		this transaction did not change.
 */
void
DurableCacheBeginCall(uint64 object, bool cache_valid)
{
	uint64		epoch;
	HASH_SEQ_STATUS scan;
	CacheEntry *e;

	if (!callbacks_registered)
		return;
	if (!cache_valid && generations != NULL)
	{
		bool		found;
		ObjectGen  *g = hash_search(generations, &object, HASH_ENTER, &found);

		g->gen = found ? g->gen + 1 : 1;
	}
	if (!OidIsValid(storage_relid))
		storage_relid = get_relname_relid("_storage", get_namespace_oid("durable", true));
	epoch = DurableStorageEpoch();
	if (epoch == seen_epoch && !relation_changed)
		return;
	seen_epoch = epoch;
	relation_changed = false;
	if (entries == NULL)
		return;
	hash_seq_init(&scan, entries);
	while ((e = hash_seq_search(&scan)) != NULL)
		if (!e->dirty && e->state != ENTRY_UNKNOWN)
			change(e, ENTRY_UNKNOWN, false, NULL);
}

/*
 * DurableCacheGet
 *		True if the cache knows (class, id, key): *value is a copy of the
 *		value in the current memory context, or NULL if the key is absent.
 */
bool
DurableCacheGet(const char *class_name, const char *id, const text *key, Jsonb **value)
{
	CacheEntry *e;

	if (!cache_enabled())
		return false;
	e = lookup(class_name, id, key, false);
	if (e == NULL || e->state == ENTRY_UNKNOWN)
		return false;
	if (e->state == ENTRY_ABSENT)
		*value = NULL;
	else
	{
		*value = palloc(VARSIZE(e->value));
		memcpy(*value, e->value, VARSIZE(e->value));
	}
	return true;
}

/*
 * DurableCacheFill
 *		Remember what the table said for (class, id, key) (value NULL: absent).
 */
void
DurableCacheFill(const char *class_name, const char *id, const text *key, const Jsonb *value)
{
	CacheEntry *e;

	if (!cache_enabled() || (value && VARSIZE(value) > CACHE_VALUE_BYTES))
		return;
	e = lookup(class_name, id, key, true);
	change(e, value ? ENTRY_PRESENT : ENTRY_ABSENT, false, value ? copy_value(value) : NULL);
}

/*
 * mark_changed
 *		e was changed by the running call: remember its method until the
 *		change is written (a copy that lives as long as the transaction).
 */
static void
mark_changed(CacheEntry *e)
{
	const char *method = DurableCurrentMethod();

	if (method == NULL)
		method = "?";
	if (held_method == NULL || strcmp(held_method, method) != 0)
		held_method = MemoryContextStrdup(TopTransactionContext, method);
	e->method = held_method;
}

/* a change of bytes bytes is held: write them all now if the call holds too many */
static void
hold(Size bytes)
{
	held_changes++;
	held_bytes += bytes;
	if (held_changes >= HELD_FLUSH_CHANGES || held_bytes >= HELD_FLUSH_BYTES)
		DurableCacheFlush();
}

/*
 * DurableCachePut
 *		Hold the new value of (class, id, key) until commit.  False if the
 *		cache does not take it (too large, or no cache): the caller writes it
 *		through and then calls DurableCacheForget.
 */
bool
DurableCachePut(const char *class_name, const char *id, const text *key, const Jsonb *value)
{
	CacheEntry *e;

	if (!cache_enabled() || VARSIZE(value) > CACHE_VALUE_BYTES)
		return false;
	e = lookup(class_name, id, key, true);
	change(e, ENTRY_PRESENT, true, copy_value(value));
	mark_changed(e);
	hold(VARSIZE(value));
	return true;
}

/*
 * DurableCacheDelete
 *		Delete (class, id, key) at commit if the cache knows it: 1 if it
 *		existed, 0 if not; -1 if unknown (the caller deletes through and
 *		then records the absence with DurableCacheFill).
 */
int
DurableCacheDelete(const char *class_name, const char *id, const text *key)
{
	CacheEntry *e;

	if (!cache_enabled())
		return -1;
	e = lookup(class_name, id, key, false);
	if (e == NULL || e->state == ENTRY_UNKNOWN)
		return -1;
	if (e->state == ENTRY_ABSENT)
		return 0;
	change(e, ENTRY_ABSENT, true, NULL);
	mark_changed(e);
	hold(0);
	return 1;
}

/* (class, id, key) was written through: read it from the table next time */
void
DurableCacheForget(const char *class_name, const char *id, const text *key)
{
	CacheEntry *e;

	if (!cache_enabled())
		return;
	e = lookup(class_name, id, key, false);
	if (e && e->state != ENTRY_UNKNOWN)
		change(e, ENTRY_UNKNOWN, false, NULL);
}

/* every key of (class, id) was deleted through: forget them all */
void
DurableCacheForgetObject(const char *class_name, const char *id)
{
	HASH_SEQ_STATUS scan;
	CacheEntry *e;

	if (!cache_enabled() || entries == NULL)
		return;
	hash_seq_init(&scan, entries);
	while ((e = hash_seq_search(&scan)) != NULL)
		if (e->state != ENTRY_UNKNOWN && strcmp(e->k.id, id) == 0 &&
			strcmp(e->k.class_name, class_name) == 0)
			change(e, ENTRY_UNKNOWN, false, NULL);
}

/*
 * DurableCacheForgetHibernated
 *		Between transactions, after objects hibernated (residency.c): drop
 *		the entries of every object for which resident(class, id) is false,
 *		values and all.
 */
void
DurableCacheForgetHibernated(bool (*resident) (const char *, const char *))
{
	HASH_SEQ_STATUS scan;
	CacheEntry *e;

	if (entries == NULL || nundo > 0)
		return;
	hash_seq_init(&scan, entries);
	while ((e = hash_seq_search(&scan)) != NULL)
	{
		char	   *copy = (char *) e->k.class_name;	/* the key's one allocation */
		Jsonb	   *value = e->value;

		if (resident(e->k.class_name, e->k.id))
			continue;
		(void) hash_search(entries, &e->k, HASH_REMOVE, NULL);
		if (value)
			pfree(value);
		pfree(copy);
	}
}

/*
 * DurableCacheFlush
 *		Write every change held in memory to durable._storage: the new values
 *		in one INSERT ... ON CONFLICT (those of classes that keep a history
 *		in another, which records them, history.c), the deleted keys one by
 *		one.  Before a statement that reads the table (durable.list ...) and
 *		before commit.
 *		Whether there was anything to write (a statement after it must take
 *		a new snapshot to see it).
 *		Marking entries clean is a change too: if the subtransaction that
 *		wrote them rolls back, they are dirty again.
 */
bool
DurableCacheFlush(void)
{
	static const Oid upsert_types[4] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID};
	Datum	   *put[4];
	Datum	   *kept[5];
	int			nput = 0;
	int			nkept = 0;
	int			n = nundo;
	int			i;
	DurableSpiState spi;
	bool		pushed = false;
	const char *last_class = NULL;
	bool		last_kept = false;

	held_changes = 0;
	held_bytes = 0;
	if (n == 0)
		return false;
	/* at pre-commit no statement holds a snapshot */
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	for (i = 0; i < 4; i++)
		put[i] = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		CacheEntry *e = undo[i].entry;
		text	   *key;

		if (!e->dirty)
			continue;
		key = cstring_to_text_with_len(e->k.key, e->k.keylen);
		/* the entries of one class mostly come together: one lookup for them */
		if (last_class == NULL || strcmp(last_class, e->k.class_name) != 0)
		{
			last_class = e->k.class_name;
			last_kept = DurableHistoryKept(last_class);
		}
		if (e->state == ENTRY_PRESENT && last_kept)
		{
			if (nkept == 0)
				for (int j = 0; j < 5; j++)
					kept[j] = palloc(sizeof(Datum) * n);
			kept[0][nkept] = CStringGetTextDatum(e->k.class_name);
			kept[1][nkept] = CStringGetTextDatum(e->k.id);
			kept[2][nkept] = PointerGetDatum(key);
			kept[3][nkept] = JsonbPGetDatum(e->value);
			kept[4][nkept] = CStringGetTextDatum(e->method ? e->method : "?");
			nkept++;
		}
		else if (e->state == ENTRY_PRESENT)
		{
			put[0][nput] = CStringGetTextDatum(e->k.class_name);
			put[1][nput] = CStringGetTextDatum(e->k.id);
			put[2][nput] = PointerGetDatum(key);
			put[3][nput] = JsonbPGetDatum(e->value);
			nput++;
		}
		else
			(void) DurableStorageDeleteKey(e->k.class_name, e->k.id, key, e->method);
		change(e, e->state, false, e->value);
	}
	if (nkept > 0)
		DurableHistoryUpsert(kept, nkept);
	if (nput > 0)
	{
		Datum		arrays[4];

		arrays[0] = PointerGetDatum(construct_array(put[0], nput, TEXTOID, -1, false, TYPALIGN_INT));
		arrays[1] = PointerGetDatum(construct_array(put[1], nput, TEXTOID, -1, false, TYPALIGN_INT));
		arrays[2] = PointerGetDatum(construct_array(put[2], nput, TEXTOID, -1, false, TYPALIGN_INT));
		arrays[3] = PointerGetDatum(construct_array(put[3], nput, JSONBOID, -1, false, TYPALIGN_INT));
		DurableSpiBegin(&spi);
		DurableSpiExecute(DurableSpiPlan(&upsert_plan,
										 "INSERT INTO durable._storage (class, id, key, value) "
										 "SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
										 "                  pg_catalog.unnest($3), pg_catalog.unnest($4)) "
										 "ON CONFLICT (class, id, key) DO UPDATE SET value = EXCLUDED.value",
										 4, (Oid *) upsert_types),
						  arrays, NULL, false, SPI_OK_INSERT);
		DurableSpiEnd(&spi);
	}
	if (pushed)
		PopActiveSnapshot();
	return true;
}

/*
 * DurableStorageDeleteKey
 *		Delete key of object (class_name, id) from durable._storage now, a
 *		change by method (history.c records it if the class keeps a
 *		history); whether it existed.  For storage.c and the flush above.
 */
bool
DurableStorageDeleteKey(const char *class_name, const char *id, text *key, const char *method)
{
	DurableSpiState spi;
	Datum		values[3];
	bool		existed;

	if (DurableHistoryKept(class_name))
		return DurableHistoryDelete(class_name, id, key, method);

	values[0] = CStringGetTextDatum(class_name);
	values[1] = CStringGetTextDatum(id);
	values[2] = PointerGetDatum(key);
	DurableSpiBegin(&spi);
	DurableSpiRun(&delete_statement, &delete_plan, values, NULL, SPI_OK_DELETE);
	existed = SPI_processed > 0;
	DurableSpiEnd(&spi);
	return existed;
}
