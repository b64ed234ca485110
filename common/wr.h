/*
 * common: the few things every module shares — the error enum, the logger,
 * monotonic time, refcounted immutable message buffers, a growable byte
 * buffer with JSON string escaping, UTF-8 validation and hex.
 * No lws here: inm/, channels/ and health/ build on this alone.
 */
#ifndef WR_COMMON_H
#define WR_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WR_VERSION "0.1.0"

/* One project-wide error enum: 0 is success, errors are negative. */
enum wr_err {
	WR_OK = 0,
	WR_ENOMEM = -1,
	WR_EINVAL = -2,
	WR_ENOENT = -3,
	WR_EFULL = -4,
	WR_EPERM = -5,
	WR_EAGAIN = -6,
	WR_EEXIST = -7,
	WR_EIO = -8,
};
const char *wr_strerror(int err);

/* ---- logging: one line per event on stderr, "TIMESTAMP LEVEL message" ---- */
enum wr_log_level { WR_LOG_DEBUG, WR_LOG_INFO, WR_LOG_WARN, WR_LOG_ERROR };
void wr_log_set_level(enum wr_log_level lvl);
enum wr_log_level wr_log_get_level(void);
/* Returns 0 and sets *out for "debug", "info", "warn", "error"; else -1. */
int wr_log_level_parse(const char *name, enum wr_log_level *out);
void wr_log(enum wr_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void wr_vlog(enum wr_log_level lvl, const char *fmt, va_list ap);
/* Logs whatever the level: for the few lines tools wait for (the banner). */
void wr_log_force(enum wr_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "text" (the default): "TIMESTAMP LEVEL message". "json": one object a
 * line, {"time","level","node","msg", fields...}, for log shippers. */
enum wr_log_format { WR_LOG_TEXT, WR_LOG_JSON };
void wr_log_set_format(enum wr_log_format fmt);
/* Returns 0 and sets *out for "text", "json"; else -1. */
int wr_log_format_parse(const char *name, enum wr_log_format *out);
/* The "node" field of json lines; copied (truncated at 127 bytes). */
void wr_log_set_node(const char *name);
/* Writes one json line, newline included, into out (cap >= 256): the
 * message escaped (invalid UTF-8 becomes U+FFFD), cut short rather than
 * overflow. Returns its length. Exposed for the unit tests. */
size_t wr_log_json_line(char *out, size_t cap, const char *time,
			enum wr_log_level lvl, const char *node,
			const char *msg, size_t n);
/*
 * Structured fields (client address, peer, channel, close code...): json
 * lines carry them as keys after "msg" (a string, or a number when str is
 * NULL); text lines append " key=value". Keys are fixed identifiers; values
 * are never secrets (the callers' invariant, as for messages).
 */
struct wr_log_field {
	const char *key;
	const char *str; /* NULL: num */
	long long num;
};
#define WR_LOG_FIELD_MAX 256 /* a string value's bytes beyond are cut */
#define WR_LF_STR(k, v) ((struct wr_log_field){ (k), (v), 0 })
#define WR_LF_NUM(k, v) ((struct wr_log_field){ (k), NULL, (long long)(v) })
void wr_log_fields(enum wr_log_level lvl, const struct wr_log_field *f,
		   size_t nf, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* wr_log_json_line() with fields; exposed for the unit tests. */
size_t wr_log_json_line_f(char *out, size_t cap, const char *time,
			  enum wr_log_level lvl, const char *node,
			  const char *msg, size_t n,
			  const struct wr_log_field *f, size_t nf);
#define wr_debug(...) wr_log(WR_LOG_DEBUG, __VA_ARGS__)
#define wr_info(...) wr_log(WR_LOG_INFO, __VA_ARGS__)
#define wr_warn(...) wr_log(WR_LOG_WARN, __VA_ARGS__)
#define wr_error(...) wr_log(WR_LOG_ERROR, __VA_ARGS__)

/* ---- time ---- */
int64_t wr_now_ms(void);  /* monotonic milliseconds */
int64_t wr_now_us(void);  /* monotonic microseconds */
int64_t wr_wall_ms(void); /* milliseconds since the Unix epoch */

/*
 * ---- refcounted immutable messages ----
 * A fan-out frame is built once and shared by every subscriber queue.
 * Single-threaded (event loop only): the count is a plain integer.
 */
struct wr_msg {
	unsigned refs;
	size_t len;
	unsigned char data[];
};
/* Returns a message of @len uninitialised bytes with one reference, the
 * caller's (wr_msg_unref), or NULL. */
struct wr_msg *wr_msg_create(size_t len);
static inline struct wr_msg *wr_msg_ref(struct wr_msg *m)
{
	m->refs++;
	return m;
}
/* Drops one reference, frees on the last; NULLs the caller's pointer. */
void wr_msg_unref(struct wr_msg **pmsg);

/* ---- growable byte buffer ---- */
struct wr_buf {
	char *p;
	size_t len, cap;
	bool oom; /* sticky: an append failed; the content is incomplete */
};
void wr_buf_init(struct wr_buf *b);
void wr_buf_fini(struct wr_buf *b);
void wr_buf_reset(struct wr_buf *b); /* len = 0, keeps capacity, clears oom */
int wr_buf_reserve(struct wr_buf *b, size_t extra);
void wr_buf_append(struct wr_buf *b, const void *p, size_t n);
void wr_buf_puts(struct wr_buf *b, const char *s);
void wr_buf_printf(struct wr_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends "..." : @s (@n bytes, valid UTF-8) as a JSON string with quotes. */
void wr_buf_json_str(struct wr_buf *b, const char *s, size_t n);
/* The length of the leading run of @s[0..n) that a JSON string holds as it
 * stands: no byte below 0x20, no '"', '\\' or 0x7f. */
size_t wr_json_plain_run(const char *s, size_t n);

/* SWAR tests of 8 bytes at once: bit 7 of a byte of the result is set
 * where that byte of @w is below @n (n <= 0x80; bytes over 0x7f never
 * are), or equal to @c. Only "any bit set" is exact, not which byte. */
#define WR_SWAR_ONES 0x0101010101010101ull
#define WR_SWAR_HIGHS 0x8080808080808080ull
static inline uint64_t wr_swar_below(uint64_t w, unsigned n)
{
	return (w - WR_SWAR_ONES * n) & ~w & WR_SWAR_HIGHS;
}
static inline uint64_t wr_swar_eq(uint64_t w, unsigned char c)
{
	return wr_swar_below(w ^ (WR_SWAR_ONES * c), 1);
}

/* ---- text helpers ---- */
/* True when @p[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool wr_utf8_valid(const void *p, size_t n);
/* Writes 2n lowercase hex chars plus NUL into @out (size >= 2n+1). */
void wr_hex(char *out, const void *in, size_t n);
/* @n bytes from exactly 2n lowercase hex chars of the NUL-terminated @s.
 * WR_OK, or WR_EINVAL (then @out is unspecified). */
int wr_unhex(void *out, const char *s, size_t n);
/* A channel name (PROTOCOL.md 2): 1 to 128 bytes of valid UTF-8, no
 * control characters. */
bool wr_channel_name_valid(const char *name, size_t len);
/* Constant-time equality of two equal-length byte strings. */
bool wr_ct_equal(const void *a, const void *b, size_t n);

/* ---- WebSocket framing (server side, unmasked), used to pre-build frames ---- */
/* Bytes of header a server text frame of @payload_len needs (2, 4 or 10). */
size_t wr_ws_header_len(size_t payload_len);
/* Writes the unmasked header of a text frame of @payload_len bytes into @d
 * (room for 10) and returns its length. */
size_t wr_ws_text_header(unsigned char *d, size_t payload_len);
/* Returns a message holding one complete unmasked text frame of @p, with
 * one reference, the caller's (wr_msg_unref), or NULL. */
struct wr_msg *wr_ws_text_frame(const void *p, size_t n);

/* ---- per-address limits (common/addr.c, PROTOCOL.md 7.2) ---- */

/* A client's address: IPv4 as ::ffff:a.b.c.d, IPv6 cut to its /64. */
struct wr_addr {
	unsigned char b[16];
};
/* From a struct sockaddr_in / sockaddr_in6 of @len bytes; WR_EINVAL for
 * another family. */
int wr_addr_from_sockaddr(const void *sa, size_t len, struct wr_addr *out);
/* Counters per address; only non-zero ones are kept. */
struct wr_addrtab;
struct wr_addrtab *wr_addrtab_create(void);
void wr_addrtab_destroy(struct wr_addrtab *t);
unsigned wr_addrtab_count(struct wr_addrtab *t, const struct wr_addr *a);
int wr_addrtab_inc(struct wr_addrtab *t, const struct wr_addr *a);
void wr_addrtab_dec(struct wr_addrtab *t, const struct wr_addr *a);
size_t wr_addrtab_size(const struct wr_addrtab *t);

/* Failures per address in a window (@max per @window_ms), then held off
 * (@ban_ms after the failure that reached @max; 0: to the window's end).
 * At most WR_ADDRFAIL_MAX addresses are tracked. */
#define WR_ADDRFAIL_MAX 65536
struct wr_addrfail;
struct wr_addrfail *wr_addrfail_create(unsigned max, int64_t window_ms,
				       int64_t ban_ms);
void wr_addrfail_destroy(struct wr_addrfail *t);
bool wr_addrfail_blocked(struct wr_addrfail *t, const struct wr_addr *a,
			 int64_t now_ms);
void wr_addrfail_note(struct wr_addrfail *t, const struct wr_addr *a,
		      int64_t now_ms);
size_t wr_addrfail_size(const struct wr_addrfail *t);

/* A token bucket in milli-tokens: starts full (@burst), refills
 * @per_second a second; wr_bucket_take() spends one or says no. */
struct wr_bucket {
	int64_t milli;
	int64_t last_ms;
};
void wr_bucket_init(struct wr_bucket *b, int64_t burst, int64_t now_ms);
bool wr_bucket_take(struct wr_bucket *b, int64_t per_second, int64_t burst,
		    int64_t now_ms);

/* ---- slab: fixed-size objects by the thousand, out of the malloc heap
 * (slab.c). One region per process, one thread (the caller's loop). ---- */
/* Reserves @region_bytes of address space (no memory until used); a second
 * call does nothing. 0, WR_EINVAL or WR_ENOMEM. */
int wr_slab_init(size_t region_bytes);
/* The class of objects of @size bytes (rounded up to 16; at most 16 KiB),
 * made at the first call: >= 0, WR_EINVAL (too big, no init) or WR_EFULL
 * (16 classes already). */
int wr_slab_class(size_t size);
/* An object of class @cls (not zeroed), or NULL: the region is full. */
void *wr_slab_alloc(int cls);
/* True when @p is inside the region (a wr_slab_alloc() object). */
bool wr_slab_owns(const void *p);
/* The class size of @p's slab, 0 when @p is not a slab object. */
size_t wr_slab_size(const void *p);
/* Frees an object of wr_slab_alloc(); NULL is fine. */
void wr_slab_free(void *p);
/* Gives the slabs that hold no object back to the kernel, @keep of each
 * class excepted (for the next burst); returns how many went. */
size_t wr_slab_trim(unsigned keep);
struct wr_slab_stats {
	size_t slabs;    /* slabs holding objects (64 KiB each) */
	size_t released; /* slabs given back to the kernel, for reuse */
	size_t objects;  /* objects handed out */
	size_t bytes;    /* their class sizes summed */
};
void wr_slab_stats(struct wr_slab_stats *st);

#endif
