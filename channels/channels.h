/*
 * channels: the channel registry (active channels, subscriptions), the
 * per-client bounded outbound queues that fan-out frames are shared into,
 * the /connect frame decoder, and channel passwords (PBKDF2 on worker
 * threads, a cache of verifications, the per-connection rate limit).
 * Plain C over plain data: no libwebsockets here. Everything but the
 * password worker's threads runs on the event loop thread.
 */
#ifndef WR_CHANNELS_H
#define WR_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wr.h"

#define CHAN_NAME_MAX 128
#define CHAN_NONCE_MAX 128
#define CHAN_HASH_LEN 32 /* PBKDF2-HMAC-SHA256 output bytes */
#define CHAN_PBKDF2_ITERATIONS 32768

/* ------------------------------------------------------------------ */
/* Client frame decoding                                               */

enum chan_cmd_type {
	CHAN_CMD_SUBSCRIBE,
	CHAN_CMD_UNSUBSCRIBE,
	CHAN_CMD_LIST,
	CHAN_CMD_SEND,
	CHAN_CMD_AUTH,     /* 7.1: data.token, a compact JWT */
	CHAN_CMD_HISTORY,  /* 7.3: data.channel, data.limit (optional) */
	CHAN_CMD_PRESENCE, /* 7.4: data.channel */
};

struct chan_str {
	const char *p; /* NULL when absent */
	size_t len;
};

struct chan_cmd {
	enum chan_cmd_type type;
	struct chan_str nonce; /* echoed in the response when p != NULL */
	struct chan_str
		channel; /* subscribe/unsubscribe "topic", send "channel" */
	struct chan_str
		password; /* subscribe; absent and null are "no password" */
	struct chan_str message; /* send */
	struct chan_str token;   /* auth */
	/* subscribe (7.3): recover, or since (which implies it) */
	bool recover, has_since;
	bool presence_events; /* subscribe (7.4) */
	struct chan_str since_epoch;
	uint64_t since_offset;
	/* history: limit, when given */
	bool has_limit;
	uint64_t limit;
	/* strings that needed unescaping live here; freed by chan_cmd_fini() */
	char *heap[4];
	size_t heap_len[4];
	int nheap;
};

/*
 * Decodes one text frame (@buf, @len; valid UTF-8 already checked by the
 * caller) of the /connect protocol. Returns NULL when @cmd is ready, else
 * the exact PROTOCOL.md reason string; cmd->nonce is set whenever it can be
 * echoed (never for "invalid json" or a bad nonce). @cmd's strings point
 * into @buf or into cmd->heap: keep @buf alive while using @cmd.
 * Always call chan_cmd_fini(), whatever the result.
 */
const char *chan_cmd_decode(struct chan_cmd *cmd, const char *buf, size_t len,
			    size_t max_message_bytes);
void chan_cmd_fini(struct chan_cmd *cmd);

/* 1..128 bytes of valid UTF-8 without control characters. */
bool chan_name_valid(const char *name, size_t len);

/* Appends a response frame's JSON: {"type":"response","data":{"ok":..}}. */
void chan_response_json(struct wr_buf *b, bool ok, const char *reason,
			const struct chan_str *nonce);
/* The delivery frame's JSON, built once per message. */
void chan_delivery_json(struct wr_buf *b, const char *channel, size_t clen,
			const char *msg, size_t mlen,
			const struct chan_str *nonce);

/* Where things are in a delivery frame (a struct wr_msg holding the
 * WebSocket header and the JSON), as byte indexes into its data: the
 * message as a JSON string (quotes included) and the '}' closing "data",
 * where an offset variant inserts ',"offset":N' (7.3). */
struct chan_delivery_pos {
	uint32_t msg_start, msg_end;
	uint32_t split;
};
/* chan_delivery_json() into a whole frame (header included) with the
 * positions of @pos; NULL on no memory. One reference, the caller's. */
struct wr_msg *chan_delivery_frame(struct wr_buf *scratch, const char *channel,
				   size_t clen, const char *msg, size_t mlen,
				   const struct chan_str *nonce,
				   struct chan_delivery_pos *pos);
/* The offset variant of a delivery frame: the same bytes with
 * ',"offset":@off' before the '}' at @split. NULL on no memory. */
struct wr_msg *chan_offset_frame(const struct wr_msg *frame, size_t split,
				 uint64_t off);

/* ------------------------------------------------------------------ */
/* History (PROTOCOL.md 7.3): per channel a ring of the delivery frames
 * that passed through the node, with offsets 1, 2, 3... in an epoch.
 * The ring keeps a reference to the very frame the subscribers' queues
 * share: no copy per message; the offset variant is built once per
 * message, when a recovering subscriber first needs it, and kept beside.
 * Bounds: @size entries per channel, @ttl_ms per entry, @max_bytes over
 * every channel of the node, the oldest entry (across channels) first.
 * An entry counts its frames' bytes (the message JSON-escaped, channel,
 * nonce, framing) plus CHAN_HIST_ENTRY_OVERHEAD: for a message without
 * escapes, message bytes + at most 128 (channel) + 128 (nonce) + 60
 * (JSON, header) + 128 = 444 <= 512 (PROTOCOL.md 7.5.8). */

#define CHAN_HIST_ENTRY_OVERHEAD 128 /* the entry, its list links, malloc's */
#define CHAN_EPOCH_LEN 16            /* hex characters */

struct chan_hist_limits {
	unsigned size; /* per channel; 0: history off (offsets still count) */
	int64_t ttl_ms;
	size_t max_bytes; /* the whole node */
	/* history on: a channel whose last subscriber's connection went
	 * away stays open (reserved, keeping what arrives) this long, so
	 * that subscriber can come back and recover; 0: closes at once */
	int64_t linger_ms;
};

struct chan_hist_entry;

/* The node's history: every entry of every ring, oldest first. */
struct chan_hist {
	struct chan_hist_limits lim;
	struct chan_hist_entry *oldest, *newest;
	uint64_t entries;
	size_t bytes;
};

/* One channel's ring. */
struct chan_ring {
	char epoch[CHAN_EPOCH_LEN + 1];
	uint64_t last; /* the last offset given; 0: no message yet */
	struct chan_hist_entry *first, *end; /* kept, oldest first */
	unsigned count;
};

void chan_hist_init(struct chan_hist *h, const struct chan_hist_limits *lim);
/* New limits: applied at once (entries over them go). */
void chan_hist_set_limits(struct chan_hist *h,
			  const struct chan_hist_limits *lim, int64_t now_ms);
/* @epoch: CHAN_EPOCH_LEN characters (copied). */
void chan_ring_init(struct chan_ring *r, const char *epoch);
/* Drops the ring's entries (the channel closed). */
void chan_ring_fini(struct chan_hist *h, struct chan_ring *r);
/*
 * Gives the next offset to the delivery @frame (@split: where its offset
 * variant inserts the field; @pos as chan_delivery_frame() reported) and,
 * history on, keeps a reference to it, dropping what the bounds say.
 * Returns the offset. An entry that cannot be allocated is not kept (the
 * ring then has a gap before it: a recovery across it says false).
 */
uint64_t chan_ring_append(struct chan_hist *h, struct chan_ring *r,
			  struct wr_msg *frame,
			  const struct chan_delivery_pos *pos, int64_t now_ms);
/* Drops every entry older than ttl_ms. */
void chan_hist_expire(struct chan_hist *h, int64_t now_ms);
/* The oldest kept offset; last + 1 when nothing is kept. */
uint64_t chan_ring_first(const struct chan_ring *r);
/* True when every message after @since is kept (@since <= last): a
 * recovery from there replays (since, last] with no gap. */
bool chan_ring_covers(const struct chan_ring *r, uint64_t since);
/* The offset variant of the entry @off (a new reference: the caller
 * unrefs), built once and kept with the entry; an offset not kept is
 * built from @frame when given, else NULL. */
struct wr_msg *chan_ring_offset_frame(struct chan_hist *h, struct chan_ring *r,
				      uint64_t off, struct wr_msg *frame,
				      size_t split);
/* Calls @fn for the kept entries with offsets in (@after, @upto], oldest
 * first, with their offset variant. Stops at the first non-zero return
 * and returns it; WR_ENOMEM when a variant could not be built. */
typedef int (*chan_ring_cb)(void *arg, uint64_t off, struct wr_msg *oframe);
int chan_ring_replay(struct chan_hist *h, struct chan_ring *r, uint64_t after,
		     uint64_t upto, chan_ring_cb fn, void *arg);
/* Calls @fn for the newest @limit kept entries, oldest first, with the
 * message as a JSON string (quotes included, @json, @jlen). */
typedef void (*chan_ring_msg_cb)(void *arg, uint64_t off, const char *json,
				 size_t jlen);
void chan_ring_newest(const struct chan_ring *r, unsigned limit,
		      chan_ring_msg_cb fn, void *arg);

/* ------------------------------------------------------------------ */
/* Registry                                                            */

struct chan_registry;
struct chan_channel;
struct chan_member;

/*
 * The registry's view of one /connect client, embedded in the node's
 * client struct. The outbound queue holds references to shared frames.
 */
struct chan_client {
	struct wr_msg **q; /* ring of frames */
	unsigned q_head, q_len, q_cap;
	bool overflowed;           /* cut off: accepts no more frames */
	size_t q_bytes;            /* sum of queued frames' lengths */
	size_t q_off;              /* bytes of q[q_head] already written */
	struct chan_member **subs; /* channels this client is in */
	unsigned nsubs, subs_cap;
	void *owner; /* the node's client */
};

struct chan_ops {
	/* the client's queue went from empty to non-empty: ask for WRITEABLE */
	void (*wake)(struct chan_client *cl, void *arg);
	/* the client exceeded max_queue_bytes: close it (1008). Its queue is
	 * emptied when this returns (cl->q_len tells how many frames are
	 * dropped) and it receives nothing more. Must not change membership. */
	void (*overflow)(struct chan_client *cl, void *arg);
	/* a channel lost its last local subscriber and is about to be freed */
	void (*closed)(struct chan_channel *ch, void *arg);
};

struct chan_limits {
	size_t max_queue_bytes;
	unsigned max_subscriptions;
	struct chan_hist_limits hist; /* [history] (7.3) */
};

/* Returns a registry the caller owns (chan_registry_destroy), or NULL;
 * @ops and @arg are borrowed for its lifetime. */
struct chan_registry *chan_registry_create(const struct chan_limits *lim,
					   const struct chan_ops *ops,
					   void *arg);
/* A reload: new limits for what comes next (a queue already past a new
 * max_queue_bytes is cut at its next frame; subscriptions past a new
 * max_subscriptions stay). */
void chan_registry_set_limits(struct chan_registry *reg,
			      const struct chan_limits *lim);
/* Frees every channel; clients must have been finalised first. */
void chan_registry_destroy(struct chan_registry *reg);

void chan_client_init(struct chan_client *cl, void *owner);
/* Leaves every channel (firing ops->closed for emptied ones) and drops the queue. */
void chan_client_fini(struct chan_registry *reg, struct chan_client *cl);

struct chan_channel *chan_find(struct chan_registry *reg, const char *name,
			       size_t len);
/*
 * Creates an active channel with @hash (CHAN_HASH_LEN bytes) or no password
 * (@hash NULL). It has no members until chan_join(); a channel left with no
 * members is freed by chan_leave()/chan_client_fini() only, so join at once.
 * Returns WR_OK, WR_EEXIST (already there), WR_EINVAL or WR_ENOMEM.
 */
int chan_create(struct chan_registry *reg, const char *name, size_t len,
		const uint8_t *hash, int64_t created_ms,
		struct chan_channel **out);
/* WR_OK, WR_EEXIST (already a member), WR_EFULL (max_subscriptions), WR_ENOMEM. */
int chan_join(struct chan_registry *reg, struct chan_channel *ch,
	      struct chan_client *cl);
/* A subscription's flags (7.3). RECOVER: its deliveries are the offset
 * variant. HELD: it receives no delivery yet (a recovering subscribe
 * waiting for the mesh: its replay, when answered, covers the time). */
#define CHAN_SUB_RECOVER 1u
#define CHAN_SUB_HELD 2u
/* PRESENCE: receives join / leave events (7.4). Not a fan-out flag: a
 * channel's messages keep the shared frame path. */
#define CHAN_SUB_PRESENCE 4u
/* chan_join() with @flags. */
int chan_join_flags(struct chan_registry *reg, struct chan_channel *ch,
		    struct chan_client *cl, unsigned flags);
/* chan_join_flags() for an authenticated client: @user (@ulen bytes, the
 * token's sub) counts in the channel's presence (7.4); a first
 * subscription of a user nobody on the mesh had emits a join to the
 * PRESENCE members but @cl. @user NULL: anonymous. */
int chan_join_as(struct chan_registry *reg, struct chan_channel *ch,
		 struct chan_client *cl, unsigned flags, const char *user,
		 size_t ulen);
/* Sets the flags of @cl's subscription to @ch: WR_OK or WR_ENOENT. */
int chan_sub_set_flags(struct chan_registry *reg, struct chan_channel *ch,
		       struct chan_client *cl, unsigned flags);
/* The flags of @cl's subscription to @ch (0 when not a member). */
unsigned chan_sub_flags(const struct chan_channel *ch,
			const struct chan_client *cl);
/* Channels lingering (chan_client_fini() emptied them with history on)
 * whose time is up are closed (ops->closed, then freed). */
void chan_linger_expire(struct chan_registry *reg, int64_t now_ms);
/* Lingering channels (no member, kept for a recovery). */
unsigned chan_lingering(const struct chan_registry *reg);
/* WR_OK or WR_ENOENT; frees @ch (after ops->closed) when it empties. */
int chan_leave(struct chan_registry *reg, struct chan_channel *ch,
	       struct chan_client *cl);
bool chan_is_member(const struct chan_channel *ch,
		    const struct chan_client *cl);
/* Frees a channel chan_create() made whose first chan_join() failed (no
 * ops->closed: it was never open). No-op when it has members. */
void chan_drop_empty(struct chan_registry *reg, struct chan_channel *ch);

const char *chan_name(const struct chan_channel *ch, size_t *len);
/* The password hash or NULL for an open channel. */
const uint8_t *chan_hash(const struct chan_channel *ch);
unsigned chan_members(const struct chan_channel *ch);
/* The i-th member (0 <= i < chan_members()), or NULL. */
struct chan_client *chan_member(const struct chan_channel *ch, unsigned i);
/* The created_ms given to chan_create(). */
int64_t chan_created(const struct chan_channel *ch);

/*
 * Queues one reference to @frame on every member but @except (may be NULL).
 * Members over max_queue_bytes are cut off (ops->overflow).
 * Returns the number of members the frame was queued for.
 */
unsigned chan_publish(struct chan_registry *reg, struct chan_channel *ch,
		      struct wr_msg *frame, const struct chan_client *except);

/*
 * The fan-out of one message (7.3): gives it the channel's next offset
 * (kept in the history when on), queues @frame on every member but
 * @except and the HELD ones, and its offset variant - built once, only
 * when a RECOVER member is there - on the RECOVER ones. @pos: as
 * chan_delivery_frame() reported. Returns the members it was queued for.
 */
unsigned chan_publish_msg(struct chan_registry *reg, struct chan_channel *ch,
			  struct wr_msg *frame,
			  const struct chan_delivery_pos *pos,
			  const struct chan_client *except, int64_t now_ms);
/* The channel's ring and the node's history. */
struct chan_ring *chan_ring_of(struct chan_channel *ch);
struct chan_hist *chan_registry_hist(struct chan_registry *reg);

/* Queues one frame on one client (responses). Takes no reference from the
 * caller: it adds its own. WR_EFULL when the client overflowed. */
int chan_client_push(struct chan_registry *reg, struct chan_client *cl,
		     struct wr_msg *frame);

/* Drops @n bytes from the queue front (after a write). */
void chan_client_consume(struct chan_client *cl, size_t n);
/* The i-th queued frame (0 = front) or NULL. */
static inline struct wr_msg *chan_client_peek(const struct chan_client *cl,
					      unsigned i)
{
	if (i >= cl->q_len)
		return NULL;
	return cl->q[(cl->q_head + i) & (cl->q_cap - 1)];
}

struct chan_registry_stats {
	unsigned channels;
	uint64_t subscriptions;
};
void chan_registry_stats(const struct chan_registry *reg,
			 struct chan_registry_stats *st);

/* Calls @fn for every active channel, in unspecified order. */
void chan_foreach(struct chan_registry *reg,
		  void (*fn)(struct chan_channel *ch, void *arg), void *arg);

/* ------------------------------------------------------------------ */
/* Presence (PROTOCOL.md 7.4, 7.5.9; presence.c)                       */

/* Users in a presence answer, sorted (7.4). */
#define CHAN_PRESENCE_USERS_MAX 1000
/* The longest user name (a token's sub) presence carries. */
#define CHAN_USER_MAX 256

struct chan_pres;
struct chan_user;
/* A user's presence changed mesh-wide: @join, else a leave. */
typedef void (*chan_pres_emit_cb)(void *arg, bool join, const char *user,
				  size_t len);
typedef void (*chan_pres_user_cb)(void *arg, const char *user, size_t len);
typedef void (*chan_pres_holder_cb)(void *arg, const char *holder);

struct chan_pres *chan_pres_create(void);
void chan_pres_destroy(struct chan_pres *p);
/* One more local subscription of @name; *@joined when the user was
 * present nowhere before. NULL on no memory. */
struct chan_user *chan_pres_local_add(struct chan_pres *p, const char *name,
				      size_t len, bool *joined);
/* One local subscription of @u less; at the last one @u is freed and,
 * when no holder has the user either, @emit (may be NULL) tells the leave.
 * True on that leave. */
bool chan_pres_local_remove(struct chan_pres *p, struct chan_user *u,
			    chan_pres_emit_cb emit, void *arg);
const char *chan_user_name(const struct chan_user *u, size_t *len);
/* Distinct local users; their set's revision (grows on each change). */
unsigned chan_pres_local_count(const struct chan_pres *p);
uint64_t chan_pres_rev(const struct chan_pres *p);
/* The local users, sorted. */
void chan_pres_local_each(const struct chan_pres *p, chan_pres_user_cb fn,
			  void *arg);
/* Holder @holder's users are now @users[0..@n) (taken: the array and its
 * strings, malloc'd; any order, duplicates allowed). The edges are
 * emitted unless @quiet (a baseline: what was there before anyone here
 * listened). WR_OK or WR_ENOMEM (then nothing changed; @users freed). */
int chan_pres_remote_set(struct chan_pres *p, const char *holder, char **users,
			 unsigned n, bool quiet, chan_pres_emit_cb emit,
			 void *arg);
/* @holder is no holder any more (or not alive): its users leave unless
 * present elsewhere. */
void chan_pres_remote_drop(struct chan_pres *p, const char *holder,
			   chan_pres_emit_cb emit, void *arg);
/* Every holder with a list; @fn may drop the one it is given. */
void chan_pres_remote_each(const struct chan_pres *p, chan_pres_holder_cb fn,
			   void *arg);
bool chan_pres_known(const struct chan_pres *p, const char *holder);
/* Forgets every holder's list without events (nobody listens here). */
void chan_pres_forget_remote(struct chan_pres *p);
/* A poll of the holders is under way (flows/presence.c). */
bool chan_pres_polling(const struct chan_pres *p);
void chan_pres_set_polling(struct chan_pres *p, bool on);
/* The first poll round since someone here listens is over: the lists it
 * brought were the baseline, later ones bring events. */
bool chan_pres_seeded(const struct chan_pres *p);
void chan_pres_set_seeded(struct chan_pres *p);

/* The channel's presence state: NULL until a user or a PRESENCE member
 * came. */
struct chan_pres *chan_presence(struct chan_channel *ch);
/* Members with CHAN_SUB_PRESENCE. */
unsigned chan_presence_listeners(const struct chan_channel *ch);
/* @holder reported @users (see chan_pres_remote_set); the edges go to
 * the channel's PRESENCE members. */
int chan_presence_remote(struct chan_registry *reg, struct chan_channel *ch,
			 const char *holder, char **users, unsigned n,
			 bool quiet);
void chan_presence_drop(struct chan_registry *reg, struct chan_channel *ch,
			const char *holder);
/* Channels with a PRESENCE member. */
unsigned chan_presence_channels(const struct chan_registry *reg);
/* Events sent (join + leave frames queued), for /metrics. */
uint64_t chan_presence_events(const struct chan_registry *reg);

/* ------------------------------------------------------------------ */
/* Passwords                                                           */

/* PBKDF2-HMAC-SHA256(pw, salt = channel name, 32768, 32 bytes). Slow:
 * worker threads and tests only. Returns WR_OK or WR_ENOMEM. */
int chan_pw_hash(const char *channel, size_t clen, const char *pw, size_t pwlen,
		 uint8_t out[CHAN_HASH_LEN]);

struct chan_pw_job {
	/* input, owned by the job; the password is wiped on free */
	char *channel;
	size_t clen;
	char *password;
	size_t pwlen;
	/* output */
	uint8_t hash[CHAN_HASH_LEN];
	int rc;
	/* loop-side bookkeeping; the worker never touches these */
	void *owner;              /* NULLed if the requester went away */
	char tag[CHAN_NONCE_MAX]; /* the requester's correlation bytes */
	size_t tag_len;
	bool has_tag;
	struct wr_addr from; /* the requester's address, when from_set */
	bool from_set;
	unsigned sub_flags;    /* the subscription's CHAN_SUB_PRESENCE */
	uint8_t cache_key[32]; /* chan_pw_cache_key(), set by the loop */
	struct chan_pw_job *next;
};

/* Copies the inputs; the caller owns the job (chan_pw_submit takes it,
 * else chan_pw_job_free). NULL on ENOMEM. */
struct chan_pw_job *chan_pw_job_create(const char *channel, size_t clen,
				       const char *pw, size_t pwlen);
void chan_pw_job_free(struct chan_pw_job *job);

struct chan_pw_worker;
/* Starts @nthreads threads; @wake(@arg) is called from a worker thread
 * after a job completes (the node passes lws_cancel_service). The caller
 * owns the worker (chan_pw_worker_destroy). */
struct chan_pw_worker *chan_pw_worker_create(int nthreads,
					     void (*wake)(void *arg),
					     void *arg);
/* Stops and joins the threads, frees queued and finished jobs. */
void chan_pw_worker_destroy(struct chan_pw_worker *w);
/* Takes ownership of @job. Loop thread. */
void chan_pw_submit(struct chan_pw_worker *w, struct chan_pw_job *job);
/* Takes @job off the queue if no thread took it yet: it comes back from
 * chan_pw_take_done() with rc WR_EAGAIN, nothing derived. Loop thread.
 * True when it did. */
bool chan_pw_cancel(struct chan_pw_worker *w, struct chan_pw_job *job);
/* Returns the finished jobs as a list (job->next), caller owns them. */
struct chan_pw_job *chan_pw_take_done(struct chan_pw_worker *w);

/* A cache of successful verifications: keyed hash of (channel, password)
 * -> PBKDF2 output. The plain password is never stored. */
struct chan_pw_cache;
/* The caller owns it (chan_pw_cache_destroy); NULL on no memory. */
struct chan_pw_cache *chan_pw_cache_create(unsigned entries);
void chan_pw_cache_destroy(struct chan_pw_cache *c);
bool chan_pw_cache_get(struct chan_pw_cache *c, const char *channel,
		       size_t clen, const char *pw, size_t pwlen,
		       uint8_t out[CHAN_HASH_LEN]);
void chan_pw_cache_put(struct chan_pw_cache *c, const char *channel,
		       size_t clen, const char *pw, size_t pwlen,
		       const uint8_t hash[CHAN_HASH_LEN]);
/* The entry key of (channel, password), for a put after the password is
 * gone (a PBKDF2 job wipes it once hashed). */
#define CHAN_PW_KEY_LEN 32
void chan_pw_cache_key(const struct chan_pw_cache *c, const char *channel,
		       size_t clen, const char *pw, size_t pwlen,
		       uint8_t key[CHAN_PW_KEY_LEN]);
void chan_pw_cache_put_key(struct chan_pw_cache *c,
			   const uint8_t key[CHAN_PW_KEY_LEN],
			   const uint8_t hash[CHAN_HASH_LEN]);

/* Per-connection failed-attempt window: 5 failures in 10 s. */
#define CHAN_PW_MAX_FAILS 5
#define CHAN_PW_WINDOW_MS 10000
struct chan_pw_rate {
	int64_t fails[CHAN_PW_MAX_FAILS]; /* ring of failure times */
	unsigned next;
};
bool chan_pw_rate_limited(const struct chan_pw_rate *r, int64_t now_ms);
void chan_pw_rate_fail(struct chan_pw_rate *r, int64_t now_ms);

#endif
