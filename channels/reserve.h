/*
 * channels/reserve: the mesh's channel reservations (PROTOCOL.md 4) as a
 * plain state machine — per channel the password hash, the holder nodes and
 * the race rule of 4.4. No clock reads, no I/O: the node passes times and
 * turns results into responses. Event loop thread only.
 */
#ifndef WR_CHANNELS_RESERVE_H
#define WR_CHANNELS_RESERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channels.h"

#define CHAN_RESV_HOLDER_MAX 64       /* node name bytes, at least 1 */
#define CHAN_RESV_HOLDERS_DEFAULT 256 /* holders per channel when 0 is given */

/*
 * What a reserve or unreserve did. Only the ones a caller answers
 * differently matter to the protocol (ALREADY_RESERVED, STILL_OPEN); the
 * rest tell whether the table changed (logs, announce bookkeeping).
 */
enum chan_resv_result {
	CHAN_RESV_NEW,     /* reserve: the channel was unknown, added */
	CHAN_RESV_ADDED,   /* reserve: same hash, holder added */
	CHAN_RESV_PRESENT, /* reserve: same hash, holder already there */
	CHAN_RESV_ALREADY_RESERVED, /* reserve: lost the race; table unchanged */
	CHAN_RESV_REPLACED,   /* reserve: won the race; old holders reported */
	CHAN_RESV_REMOVED,    /* unreserve: holder removed, others remain */
	CHAN_RESV_DROPPED,    /* unreserve: last holder removed, entry gone */
	CHAN_RESV_NOT_HOLDER, /* unreserve: no such channel or holder */
	CHAN_RESV_STILL_OPEN, /* unreserve: active here (whatever else happened) */
};
const char *chan_resv_result_str(enum chan_resv_result r);

struct chan_resv_table;
struct chan_resv_entry;

/*
 * Called once per holder of a reservation that lost a race (REPLACED),
 * after the table holds the winner. @channel is a private copy, valid for
 * the call; the callback may modify the table.
 */
typedef void (*chan_resv_lost_cb)(const char *channel, size_t len,
				  const char *holder, void *arg);

/*
 * Returns an empty table the caller owns (chan_resv_table_destroy), or
 * NULL (ENOMEM, @max_channels == 0). At most
 * @max_channels entries and @max_holders holders per entry (0: the default).
 */
struct chan_resv_table *chan_resv_table_create(unsigned max_channels,
					       unsigned max_holders);
/* Frees the table and its entries; NULL is a no-op. */
void chan_resv_table_destroy(struct chan_resv_table *t);

/*
 * reserve-channel from @holder (NUL-terminated, 1..64 bytes) for channel
 * @name (@len bytes) with @hash (CHAN_HASH_LEN bytes, copied) or NULL for
 * no password, opened at @created (ms since the epoch).
 *
 * Same hash (or both none): @holder joins (idempotent; a holder seen again
 * keeps the smaller of its two @created). Different hash: the race rule
 * ranks each side by (created, holder) — a stored reservation by its best
 * holder — and the smaller wins (chan_resv_wins()); exact ties are broken by
 * the hash bytes, no password first, so every node picks the same winner.
 * The loser gets ALREADY_RESERVED and nothing changes; a winner replaces the
 * hash, leaves @holder as the only holder, and @lost (may be NULL) is called
 * for each old holder before this returns.
 *
 * Returns WR_OK and sets *@res (may be NULL); WR_EINVAL (bad name or
 * holder), WR_EFULL (max_channels, or max_holders for a join), WR_ENOMEM.
 * On error nothing changed and @lost was not called.
 */
int chan_resv_reserve(struct chan_resv_table *t, const char *name, size_t len,
		      const uint8_t *hash, int64_t created, const char *holder,
		      chan_resv_lost_cb lost, void *arg,
		      enum chan_resv_result *res);

/*
 * unreserve-channel from @holder: removes it from the channel's holders and
 * drops the entry when none is left. @active_here (the channel has local
 * subscribers) turns the result into STILL_OPEN — the caller answers
 * "channel still open" — after the removal was done all the same.
 * Returns WR_OK (an unknown channel or holder is NOT_HOLDER) or WR_EINVAL.
 */
int chan_resv_unreserve(struct chan_resv_table *t, const char *name, size_t len,
			const char *holder, bool active_here,
			enum chan_resv_result *res);

/* @holder is gone (3.6): leaves every holder set, emptied entries are
 * dropped. Returns how many entries changed (dropped ones included). */
unsigned chan_resv_holder_gone(struct chan_resv_table *t, const char *holder);

/* The entry or NULL; valid until the table is next modified. */
const struct chan_resv_entry *chan_resv_find(const struct chan_resv_table *t,
					     const char *name, size_t len);
unsigned chan_resv_count(const struct chan_resv_table *t);

/* Calls @fn for every entry in byte order of the names. @fn must not modify
 * the table. */
void chan_resv_foreach(const struct chan_resv_table *t,
		       void (*fn)(const struct chan_resv_entry *e, void *arg),
		       void *arg);

/* Accessors; strings are owned by the entry. */
const char *chan_resv_name(const struct chan_resv_entry *e, size_t *len);
/* CHAN_HASH_LEN bytes, or NULL for no password. */
const uint8_t *chan_resv_hash(const struct chan_resv_entry *e);
/* The reservation's rank: its best holder's (created, name). */
int64_t chan_resv_created(const struct chan_resv_entry *e);
const char *chan_resv_owner(const struct chan_resv_entry *e);
/* Holders in byte order of their names, 0 <= i < chan_resv_nholders(). */
unsigned chan_resv_nholders(const struct chan_resv_entry *e);
const char *chan_resv_holder(const struct chan_resv_entry *e, unsigned i);
/* When the i-th holder opened the channel (ms since the epoch). */
int64_t chan_resv_holder_created(const struct chan_resv_entry *e, unsigned i);
bool chan_resv_has_holder(const struct chan_resv_entry *e, const char *holder);

/*
 * The race rule of 4.4, pure: true when a reservation opened at @created_a
 * by @holder_a beats one opened at @created_b by @holder_b — smaller
 * created, then the smaller holder name in byte order. False on a tie.
 */
bool chan_resv_wins(int64_t created_a, const char *holder_a, int64_t created_b,
		    const char *holder_b);

#endif
