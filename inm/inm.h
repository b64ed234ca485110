/*
 * inm: intra-node messages (PROTOCOL.md section 3) as plain C over plain
 * data — the packet codec, duplicate suppression, forwarding decisions,
 * pending commands with deadlines and one-time connection tokens.
 * No libwebsockets and no clock reads here: links are small integer ids and
 * every time-dependent call takes now_ms, so unit tests drive it directly.
 * Nothing here is thread-safe: everything runs on the event loop thread.
 */
#ifndef WR_INM_H
#define WR_INM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "wr.h"

#define INM_NAME_MAX 64  /* node name bytes, [A-Za-z0-9._-] */
#define INM_NONCE_LEN 32 /* lowercase hex of 128 random bits */
#define INM_TTL_DEFAULT 16
#define INM_TTL_MAX 255
#define INM_CHANNEL_MAX 128 /* same bound as the /connect protocol */
#define INM_CLIENT_NONCE_MAX 128
#define INM_TOKEN_LEN 64 /* hex of 32 random bytes */

/* ------------------------------------------------------------------ */
/* Packets (3.2)                                                       */

enum inm_type { INM_MESSAGE, INM_COMMAND, INM_RESPONSE, INM_EVENT };
#define INM_TYPE_COUNT 4
/* "message", "command", "response", "event"; "?" for anything else. */
const char *inm_type_name(enum inm_type t);

/*
 * Why a frame was dropped; the name is a stable metrics label. Every
 * malformed packet maps to exactly one reason: the first bad field found,
 * in the order below.
 */
enum inm_drop {
	INM_DROP_NONE = 0, /* decoded fine */
	INM_DROP_JSON, /* not JSON, not an object, duplicate key, "\u0000" */
	INM_DROP_SOURCE,
	INM_DROP_DESTINATION,
	INM_DROP_TYPE,
	INM_DROP_NONCE,
	INM_DROP_TTL,
	INM_DROP_DATA,  /* data missing, not an object, or wrong for the type */
	INM_DROP_NOMEM, /* not the peer's fault; counted apart */
};
#define INM_DROP_COUNT (INM_DROP_NOMEM + 1)
/* "none", "json", "source", ... "nomem". */
const char *inm_drop_name(enum inm_drop d);

/*
 * data stays a cJSON object, unlike STYLE's "decode into typed structs":
 * its shape depends on the command (a dozen of them, plus announce), so
 * each handler reads it at its own edge; the packet owns the subtree and
 * inm_packet_fini frees it before the frame handler returns.
 */
struct inm_packet {
	char source[INM_NAME_MAX + 1];
	char destination[INM_NAME_MAX + 1]; /* a node name or "*" */
	enum inm_type type;
	char nonce[INM_NONCE_LEN + 1];
	int ttl;     /* 0..255; INM_TTL_DEFAULT if absent */
	cJSON *data; /* owned object; NULL only if unset */
};

/* Empties @pkt: strings "", type message, ttl default, no data. */
void inm_packet_init(struct inm_packet *pkt);
/* Frees pkt->data; @pkt may be decoded or initialised again afterwards. */
void inm_packet_fini(struct inm_packet *pkt);

/*
 * Decodes one text frame (@buf, @len, not NUL-terminated; valid UTF-8 is
 * the caller's check, as for every text frame) and validates every field
 * (see inm/packet.c for the exact rules). Returns INM_DROP_NONE and fills
 * @pkt, which then owns pkt->data; on any other result pkt->data is NULL.
 * Always call inm_packet_fini() afterwards, whatever the result.
 * Unknown top-level keys are ignored (forward compatibility).
 */
enum inm_drop inm_packet_decode(struct inm_packet *pkt, const char *buf,
				size_t len);
/* The same without the fast path for the encoder's own shape: the tests
 * and the fuzzer hold the two to the same verdicts and fields. */
enum inm_drop inm_packet_decode_generic(struct inm_packet *pkt, const char *buf,
					size_t len);

/*
 * Appends @pkt as one JSON object in the shape of 3.2, ttl included:
 * {"source":..,"destination":..,"type":..,"nonce":..,"ttl":N,"data":{..}}
 * A NULL data is written as {}. Returns WR_OK, or WR_ENOMEM (b->oom set).
 * Does not validate: encode only what decode accepted or what you built.
 */
int inm_packet_encode(const struct inm_packet *pkt, struct wr_buf *b);

/* 1..64 bytes of [A-Za-z0-9._-]. "*" is not a node name. */
bool inm_node_name_valid(const char *s, size_t len);
/* Writes 32 lowercase hex chars of 128 random bits plus NUL. */
void inm_nonce_new(char out[INM_NONCE_LEN + 1]);

/*
 * The typed view of a decoded message packet's data. Pointers are into
 * pkt->data and live as long as it. client_nonce is NULL when absent.
 * Returns WR_EINVAL when @pkt is not a decoded message packet.
 */
int inm_message_fields(const struct inm_packet *pkt, const char **channel,
		       const char **message_b64, const char **client_nonce);

/* ---- channel entries (list-channels, list-reserved-channels, announce) ---- */

#define INM_HASH_LEN 32 /* a channel password hash (PBKDF2 output) */

/*
 * One channel entry: {"name", "password" (64 lowercase hex or null),
 * "created" (ms since the epoch), "holders" (node names)}. @name and
 * @holders point into the decoded JSON and live as long as it.
 */
struct inm_chan_entry {
	const char *name;
	bool has_hash;
	uint8_t hash[INM_HASH_LEN];
	bool has_created;
	int64_t created;
	const cJSON *holders; /* an array, or NULL when absent */
};
/* WR_OK, or WR_EINVAL: not an object, a bad name, password, created (not
 * inm_json_int_ok) or holders. An absent password is null; absent created
 * and holders are allowed (has_created false, holders NULL). */
int inm_chan_entry_decode(const cJSON *o, struct inm_chan_entry *e);
/* A number an int64_t holds, within +-2^53 where doubles are still exact
 * integers: casting a larger one to int64_t is undefined behaviour. */
static inline bool inm_json_int_ok(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble > -9007199254740992.0 &&
	       v->valuedouble < 9007199254740992.0;
}
/* A "password" field: null or absent (*has false), or 64 lowercase hex
 * chars. WR_OK or WR_EINVAL. */
int inm_hash_decode(const cJSON *v, uint8_t out[INM_HASH_LEN], bool *has);
/* {"name", "password", "created"} (caller owns it), or NULL on no memory. */
cJSON *inm_chan_entry_json(const char *name, const uint8_t *hash,
			   int64_t created);
/* Adds "password": the hash's hex, or null for @hash NULL. */
bool inm_hash_json(cJSON *o, const uint8_t *hash);

/* ---- base64 (standard alphabet, padded) for channel message payloads ---- */
/* Appends the base64 of @p[0..n). Returns WR_OK or WR_ENOMEM. */
int inm_base64_encode(struct wr_buf *b, const void *p, size_t n);
/*
 * Decodes canonical padded base64 @s[0..len). On WR_OK *out is a malloc'd
 * buffer the caller frees (NUL-terminated for convenience, not counted in
 * *outlen). WR_EINVAL on bad base64, WR_ENOMEM.
 */
int inm_base64_decode(const char *s, size_t len, unsigned char **out,
		      size_t *outlen);
bool inm_base64_valid(const char *s, size_t len);

/* ------------------------------------------------------------------ */
/* Duplicate suppression (3.3)                                         */

struct inm_dedup;

struct inm_dedup_stats {
	uint64_t checks;     /* inm_dedup_seen calls */
	uint64_t duplicates; /* of which already seen */
	uint64_t expired;    /* entries forgotten after the window */
	uint64_t evicted; /* entries forgotten early because the table was full */
	size_t size, capacity;
};

/*
 * Remembers (source, type, nonce) for @window_ms in at most @capacity
 * entries (~24 bytes each). When full, the oldest entry is evicted: under a
 * load above capacity / window the effective window shrinks below
 * @window_ms, and stats.evicted counts it. Returns NULL on bad arguments
 * (capacity 0 or > 2^30, window <= 0) or no memory; the caller owns it
 * (inm_dedup_destroy).
 */
struct inm_dedup *inm_dedup_create(size_t capacity, int64_t window_ms);
void inm_dedup_destroy(struct inm_dedup *d);
/*
 * True when (source, type, nonce) was recorded less than window_ms ago (a
 * duplicate: drop it); otherwise records it at @now_ms and returns false.
 * A duplicate does not refresh the timestamp. Entries are 64-bit keyed
 * hashes: a false duplicate needs a SipHash collision under a random key.
 */
bool inm_dedup_seen(struct inm_dedup *d, const char *source, enum inm_type type,
		    const char *nonce, int64_t now_ms);
void inm_dedup_stats(const struct inm_dedup *d, struct inm_dedup_stats *st);

/* ------------------------------------------------------------------ */
/* Forwarding decisions (3.3)                                          */

struct inm_route;

/*
 * A route table: direct peers (name <-> link id, set when a link comes up)
 * and learned routes (source node -> the link its packets arrived on
 * first). At most @max_learned learned routes: beyond that new sources
 * are not learned (they are flooded to instead), so spoofed sources cannot
 * grow memory. The caller owns it (inm_route_destroy); NULL on no memory.
 */
struct inm_route *inm_route_create(size_t max_learned);
void inm_route_destroy(struct inm_route *r);

/* Records that @name is directly linked on @link (replaces an older link
 * of that name). WR_EINVAL for a bad name or a negative link, WR_ENOMEM. */
int inm_route_link_up(struct inm_route *r, const char *name, int link);
/* Forgets the direct peer on @link and every learned route through it. */
void inm_route_link_down(struct inm_route *r, int link);
/*
 * Learns "@source is reached through @link" if no route to @source is
 * known yet (first arrival wins). Call it for packets that passed dedup,
 * never for the node's own name. WR_OK when learned, WR_EEXIST when a
 * route was already known, WR_EFULL, WR_EINVAL, WR_ENOMEM.
 */
int inm_route_learn(struct inm_route *r, const char *source, int link);
/* Forgets the learned route to @name (a node gone silent, 3.6). The direct
 * link, if any, stays until inm_route_link_down. */
void inm_route_forget_node(struct inm_route *r, const char *name);
/* The direct link to @name, or -1. */
int inm_route_direct(const struct inm_route *r, const char *name);
/* The link toward @name: direct if linked, else learned, else -1. */
int inm_route_lookup(const struct inm_route *r, const char *name);
/* Name of the direct peer on @link, or NULL. Valid until the next change. */
const char *inm_route_link_name(const struct inm_route *r, int link);

/*
 * For message packets: writes into @out up to @max names of the nodes that
 * hold @channel (pointers valid until inm_route_targets returns) and
 * returns how many holders there are, which may exceed @max; returns -1
 * when the holders are not known (then the packet is flooded).
 */
typedef int (*inm_holders_cb)(void *ud, const char *channel, const char **out,
			      size_t max);

/*
 * Decides where @pkt, arriving on @from_link (-1 when this node built it),
 * goes next among the node's current links @links[0..nlinks). Writes the
 * link ids into @out (room for nlinks entries; each id at most once, never
 * from_link) and their count into *nout. No forwarding when the packet is
 * for @self, or when pkt->ttl <= 1 (it would arrive with ttl 0 and be
 * dropped, 3.2). Processing locally (destination self or "*") and
 * decrementing ttl are the caller's business. @holders may be NULL.
 */
void inm_route_targets(const struct inm_route *r, const struct inm_packet *pkt,
		       int from_link, const int *links, size_t nlinks,
		       const char *self, inm_holders_cb holders,
		       void *holders_ud, int *out, size_t *nout);

/* ------------------------------------------------------------------ */
/* The mesh view: node-state records, reachability, trees (3.6)        */

#define INM_VIEW_PEERS_MAX 64 /* peers kept per node-state record */
#define INM_DIGEST_HEX 16     /* 64-bit digests on the wire */

/*
 * One node's state as it floods it (docs/mesh.md): who it is, its direct
 * peers, a digest of its active channels. (incarnation, version) orders
 * the records of one node: a restart starts a new incarnation (its wall
 * clock at start), every change within one bumps the version.
 */
struct inm_node_state {
	char name[INM_NAME_MAX + 1];
	char url[256];
	int64_t incarnation;
	uint64_t version;
	bool master;
	bool leaving; /* shutting down: gone at once, not redialled */
	bool legacy;  /* synthesised from an old full announce */
	unsigned npeers;
	char peers[INM_VIEW_PEERS_MAX][INM_NAME_MAX + 1];
	double latency[INM_VIEW_PEERS_MAX]; /* ms to each peer, < 0 unknown */
	uint32_t nchannels;
	uint64_t chan_digest; /* XOR of inm_chan_digest() of its channels */
	char rejoin[INM_TOKEN_LEN + 1]; /* "" when it offers none */
};

/* Decodes one record (a JSON object in the shape of docs/mesh.md) into
 * @st. WR_OK, or WR_EINVAL on any missing or malformed field. */
int inm_state_decode(const cJSON *o, struct inm_node_state *st);
/* The record as JSON (caller owns it), or NULL on no memory. */
cJSON *inm_state_json(const struct inm_node_state *st);
/* One channel's term of a channel digest: BLAKE2b-64 of the name, the
 * password hash (@hash NULL: none) and created. XOR the terms. */
uint64_t inm_chan_digest(const char *name, size_t len, const uint8_t *hash,
			 size_t hlen, int64_t created);
/* @d as 16 lowercase hex chars plus NUL; parse: WR_OK or WR_EINVAL. */
void inm_digest_hex(uint64_t d, char out[INM_DIGEST_HEX + 1]);
int inm_digest_parse(const char *s, uint64_t *d);

struct inm_view;

enum inm_merge {
	INM_MERGE_NEWS, /* newer than what we had: stored */
	INM_MERGE_OLD,  /* same or older: ignored */
	INM_MERGE_SELF, /* our own name: ignored */
	INM_MERGE_FULL, /* a new node and no room: ignored */
};

/* What inm_view_sweep reports about a node. */
enum inm_view_event {
	INM_VIEW_UP,   /* reachable, first time or after being gone */
	INM_VIEW_GONE, /* unreachable for the grace time, or leaving */
};
typedef void (*inm_view_cb)(void *ud, const struct inm_node_state *st,
			    enum inm_view_event ev);

/*
 * This node's view of the mesh: one record per node heard of (at most
 * @max_nodes, self included), the graph their peers form (an edge counts
 * only when both ends list each other), who is reachable from @self, and
 * shortest-path trees over it with one tie rule (neighbours in name
 * order) so that every node with the same records draws the same trees.
 * The caller owns it (inm_view_destroy); NULL on bad arguments or no
 * memory.
 */
struct inm_view *inm_view_create(const char *self, size_t max_nodes);
void inm_view_destroy(struct inm_view *v);
/* Our own record (its peers: the links up now). Copied. */
void inm_view_set_self(struct inm_view *v, const struct inm_node_state *st);
const struct inm_node_state *inm_view_self(const struct inm_view *v);
/* Stores @st when it is news (a newer incarnation or version). */
enum inm_merge inm_view_merge(struct inm_view *v,
			      const struct inm_node_state *st, int64_t now_ms);
/*
 * Brings reachability up to date and reports changes: INM_VIEW_GONE for a
 * node unreachable for @grace_ms (at once when leaving; also one never
 * reported up), INM_VIEW_UP for a node reachable again or for the first
 * time. Records unreachable for
 * @forget_ms are dropped. @cb may be NULL.
 */
void inm_view_sweep(struct inm_view *v, int64_t now_ms, int64_t grace_ms,
		    int64_t forget_ms, inm_view_cb cb, void *ud);
/* True while inm_view_sweep has something to report soon: a node
 * reachable but not reported up, or unreachable and not reported gone. */
bool inm_view_unsettled(const struct inm_view *v);
/* Records held, self included; index 0 is self. */
size_t inm_view_count(const struct inm_view *v);
const struct inm_node_state *inm_view_at(const struct inm_view *v, size_t i);
const struct inm_node_state *inm_view_find(const struct inm_view *v,
					   const char *name);
/* Reachable over two-way edges now (self: always). */
bool inm_view_reachable(const struct inm_view *v, const char *name);
/* Not declared gone (reachable, or unreachable for less than the grace). */
bool inm_view_alive(const struct inm_view *v, const char *name);
/* Unreachable since (monotonic ms) or 0 when reachable. */
int64_t inm_view_lost_since(const struct inm_view *v, size_t i);
/* Reachable nodes, self included. */
size_t inm_view_reachable_count(const struct inm_view *v);
/* The smallest name among the reachable nodes, self included. */
const char *inm_view_leader(const struct inm_view *v);
/* The direct peer on a shortest path to @dest, or NULL (unreachable,
 * or @dest is self). */
const char *inm_view_next_hop(const struct inm_view *v, const char *dest);
/*
 * In the shortest-path tree rooted at @source: 1 and *hop = our child
 * toward @target when @target is below us, 0 when it is not, -1 when
 * @source or @target is not reachable (no tree).
 */
int inm_view_tree_hop(struct inm_view *v, const char *source,
		      const char *target, const char **hop);
/* A digest of the reachable records' (name, incarnation, version), legacy
 * ones aside: neighbours with equal digests hold the same records. */
uint64_t inm_view_digest(struct inm_view *v);

/* ------------------------------------------------------------------ */
/* Pending commands (3.4)                                              */

struct inm_pending;

/* What a pending command's callback is told. */
struct inm_pending_event {
	const char *nonce;
	const char *command;
	const struct inm_packet *response; /* NULL on timeout */
	const char *reason;                /* "timeout", else NULL */
	bool done;                         /* the last call for this nonce */
	size_t answered, expected;
	/* on timeout: the expected nodes that did not answer */
	const char *const *missing;
	size_t nmissing;
};
/*
 * Called once per accepted response and once more on timeout unless every
 * expected node answered; the call with done == true is the last. The
 * entry is already out of the table when done is true, so the callback may
 * add, cancel or expire freely; event pointers live for the call only (and
 * cancelling its own nonce from a done == false call ends them early).
 */
typedef void (*inm_pending_cb)(void *ud, const struct inm_pending_event *ev);

/* At most @max_entries commands in flight. The caller owns it
 * (inm_pending_destroy); NULL on no memory. */
struct inm_pending *inm_pending_create(size_t max_entries);
/* Frees everything; fires no callback. NULL is a no-op. */
void inm_pending_destroy(struct inm_pending *p);

/*
 * Registers a sent command. @expect[0..nexpect) names the nodes whose
 * response is awaited: the destination for a unicast command, every known
 * node for a "*" command (nexpect >= 1; copied). Responses from other
 * sources are refused. The callback fires at the latest from the first
 * inm_pending_expire at or after @deadline_ms. Returns WR_OK, WR_EINVAL
 * (bad nonce, no expected node, bad name), WR_EEXIST (nonce in flight),
 * WR_EFULL, WR_ENOMEM; on failure @cb is never called.
 */
int inm_pending_add(struct inm_pending *p, const char *nonce,
		    const char *command, const char *const *expect,
		    size_t nexpect, int64_t deadline_ms, inm_pending_cb cb,
		    void *ud);
/*
 * Feeds a response packet. WR_OK when it answered a pending command (the
 * callback ran), WR_ENOENT when no command has that nonce (late or
 * unsolicited), WR_EPERM when its source is not expected or already
 * answered. A response at or past the deadline still counts until
 * inm_pending_expire has run.
 */
int inm_pending_response(struct inm_pending *p, const struct inm_packet *resp);
/* Fires "timeout" for every command whose deadline <= @now_ms; returns how
 * many timed out. */
size_t inm_pending_expire(struct inm_pending *p, int64_t now_ms);
/* Drops a command without calling it back. True if it was pending. */
bool inm_pending_cancel(struct inm_pending *p, const char *nonce);
/* Earliest deadline, for the timer; INT64_MAX when nothing is pending. */
int64_t inm_pending_next_deadline(const struct inm_pending *p);
size_t inm_pending_count(const struct inm_pending *p);

/* ------------------------------------------------------------------ */
/* One-time connection tokens (3.1, get-connection-token)              */

struct inm_tokens;

enum inm_token_result {
	INM_TOKEN_OK = 0,
	INM_TOKEN_WRONG_NAME, /* known, bound to another name: now wiped */
	INM_TOKEN_UNKNOWN,    /* never issued, used, expired or evicted */
};

/*
 * At most @capacity live tokens, each valid for @ttl_ms after issue
 * (PROTOCOL: 60 s). While @capacity tokens are live, issuing is refused:
 * a token handed out is never invalidated early.
 * The caller owns it (inm_tokens_destroy); NULL on bad arguments or no
 * memory.
 */
struct inm_tokens *inm_tokens_create(size_t capacity, int64_t ttl_ms);
/* Wipes and frees every token. NULL is a no-op. */
void inm_tokens_destroy(struct inm_tokens *t);
/* Issues a token for node @name into @out (64 hex chars + NUL).
 * WR_OK, WR_EINVAL for a bad name, WR_EFULL while @capacity are live. */
int inm_token_issue(struct inm_tokens *t, const char *name, int64_t now_ms,
		    char out[INM_TOKEN_LEN + 1]);
/*
 * Spends @token (@len bytes, from a request header: not NUL-terminated)
 * for @name. A matching token is wiped whatever the outcome. The token is
 * compared in constant time against every live token.
 */
enum inm_token_result inm_token_use(struct inm_tokens *t, const char *token,
				    size_t len, const char *name,
				    int64_t now_ms);
/* True when @token is live (the upgrade's check, 403 otherwise); it is
 * spent at the handshake by inm_token_use(). Constant time per token. */
bool inm_token_known(struct inm_tokens *t, const char *token, size_t len,
		     int64_t now_ms);
/* Tokens issued and not yet spent, evicted or found expired by a use. */
size_t inm_tokens_count(const struct inm_tokens *t);
/* Issues refused because @capacity tokens were live. */
uint64_t inm_tokens_refused(const struct inm_tokens *t);

#endif
