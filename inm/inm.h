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

#define INM_NAME_MAX 64          /* node name bytes, [A-Za-z0-9._-] */
#define INM_NONCE_LEN 32         /* lowercase hex of 128 random bits */
#define INM_TTL_DEFAULT 16
#define INM_TTL_MAX 255
#define INM_CHANNEL_MAX 128      /* same bound as the /connect protocol */
#define INM_CLIENT_NONCE_MAX 128
#define INM_TOKEN_LEN 64         /* hex of 32 random bytes */

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
	INM_DROP_NONE = 0,     /* decoded fine */
	INM_DROP_JSON,         /* not JSON, not an object, duplicate key, "\u0000" */
	INM_DROP_SOURCE,
	INM_DROP_DESTINATION,
	INM_DROP_TYPE,
	INM_DROP_NONCE,
	INM_DROP_TTL,
	INM_DROP_DATA,         /* data missing, not an object, or wrong for the type */
	INM_DROP_NOMEM,        /* not the peer's fault; counted apart */
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
	char destination[INM_NAME_MAX + 1];  /* a node name or "*" */
	enum inm_type type;
	char nonce[INM_NONCE_LEN + 1];
	int ttl;                             /* 0..255; INM_TTL_DEFAULT if absent */
	cJSON *data;                         /* owned object; NULL only if unset */
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
	uint64_t checks;      /* inm_dedup_seen calls */
	uint64_t duplicates;  /* of which already seen */
	uint64_t expired;     /* entries forgotten after the window */
	uint64_t evicted;     /* entries forgotten early because the table was full */
	size_t size, capacity;
};

/*
 * Remembers (source, type, nonce) for @window_ms in at most @capacity
 * entries (~24 bytes each). When full, the oldest entry is evicted: under a
 * load above capacity / window the effective window shrinks below
 * @window_ms, and stats.evicted counts it. Returns NULL on bad arguments
 * (capacity 0 or > 2^30, window <= 0) or no memory.
 */
struct inm_dedup *inm_dedup_create(size_t capacity, int64_t window_ms);
void inm_dedup_destroy(struct inm_dedup *d);
/*
 * True when (source, type, nonce) was recorded less than window_ms ago (a
 * duplicate: drop it); otherwise records it at @now_ms and returns false.
 * A duplicate does not refresh the timestamp. Entries are 64-bit keyed
 * hashes: a false duplicate needs a SipHash collision under a random key.
 */
bool inm_dedup_seen(struct inm_dedup *d, const char *source,
		    enum inm_type type, const char *nonce, int64_t now_ms);
void inm_dedup_stats(const struct inm_dedup *d, struct inm_dedup_stats *st);

/* ------------------------------------------------------------------ */
/* Forwarding decisions (3.3)                                          */

struct inm_route;

/*
 * A route table: direct peers (name <-> link id, set when a link comes up)
 * and learned routes (source node -> the link its packets arrived on
 * first). At most @max_learned learned routes: beyond that new sources
 * are not learned (they are flooded to instead), so spoofed sources cannot
 * grow memory. Returns NULL on no memory.
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
typedef int (*inm_holders_cb)(void *ud, const char *channel,
			      const char **out, size_t max);

/*
 * Decides where @pkt, arriving on @from_link (-1 when this node built it),
 * goes next among the node's current links @links[0..nlinks). Writes the
 * link ids into @out (room for nlinks entries; each id at most once, never
 * from_link) and their count into *nout. No forwarding when the packet is
 * for @self, or when pkt->ttl <= 1 (it would arrive with ttl 0 and be
 * dropped, 3.2). Processing locally (destination self or "*") and
 * decrementing ttl are the caller's business. @holders may be NULL.
 */
void inm_route_targets(const struct inm_route *r,
		       const struct inm_packet *pkt, int from_link,
		       const int *links, size_t nlinks, const char *self,
		       inm_holders_cb holders, void *holders_ud,
		       int *out, size_t *nout);

/* ------------------------------------------------------------------ */
/* Pending commands (3.4)                                              */

struct inm_pending;

/* What a pending command's callback is told. */
struct inm_pending_event {
	const char *nonce;
	const char *command;
	const struct inm_packet *response;  /* NULL on timeout */
	const char *reason;                 /* "timeout", else NULL */
	bool done;                /* the last call for this nonce */
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

/* At most @max_entries commands in flight. NULL on no memory. */
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
	INM_TOKEN_WRONG_NAME,   /* known, bound to another name: now wiped */
	INM_TOKEN_UNKNOWN,      /* never issued, used, expired or evicted */
};

/*
 * At most @capacity live tokens, each valid for @ttl_ms after issue
 * (PROTOCOL: 60 s). Issuing past capacity evicts the oldest token.
 * NULL on bad arguments or no memory.
 */
struct inm_tokens *inm_tokens_create(size_t capacity, int64_t ttl_ms);
/* Wipes and frees every token. NULL is a no-op. */
void inm_tokens_destroy(struct inm_tokens *t);
/* Issues a token for node @name into @out (64 hex chars + NUL).
 * WR_OK, or WR_EINVAL for a bad name. */
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
uint64_t inm_tokens_evicted(const struct inm_tokens *t);

#endif
