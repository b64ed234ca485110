/*
 * wsrelay-loadgen: a single-threaded, epoll-driven WebSocket client that
 * loads a node's /connect endpoint (fan-out, many channels, latency, idle),
 * or, with --proto nats, a nats-server's client port with the same
 * scenarios, payloads and clocks, so the two are measured by one program.
 * Invariants: loopback peers only; client frames are always masked; every
 * wait has a deadline; any protocol surprise stops the run with one line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 1024
#define TAG_TIMER UINT64_MAX
#define TAG_STDIN (UINT64_MAX - 1)
#define PROBE_NS (20 * 1000000ull) /* --probe: one probe per group per 20 ms */
#define READ_CHUNK (256 * 1024)
#define MAX_FRAME (64u << 20) /* larger server frames are a bug */
#define MAX_OUT (64u << 20)   /* unsent bytes per connection */
#define HS_MAX 8192           /* upgrade response headers */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define NS 1000000000ull
#define MAX_PORTS 16   /* --port list */
#define PING_RING 1024 /* nats: PINGs a publisher has in flight */

enum scenario { SC_FANOUT, SC_CHANNELS, SC_LATENCY, SC_IDLE };
enum proto { PROTO_WS, PROTO_NATS };

struct opts {
	const char *host;
	unsigned ports[MAX_PORTS]; /* subscribers (and idle) spread over these */
	unsigned nports;
	unsigned pub_port; /* publishers connect here (default: ports[0]) */
	enum proto proto;
	enum scenario sc;
	uint32_t subs; /* 0: the scenario's default */
	uint32_t channels;
	uint32_t size;
	uint32_t window;
	uint32_t rate;
	uint32_t conns;
	uint32_t concurrency;
	double seconds, warmup, drain, timeout, hold;
	int server_pid;    /* 0: not given */
	int probe;         /* -1: default (on when a port != pub_port) */
	bool sync;         /* wait for stdin lines around the traffic */
	const char *token; /* ws: an `auth` command first on every connection */
	bool bare;         /* idle: connections that never subscribe */
};

/* A byte buffer; `off` is how much of the front was already written. */
struct buf {
	char *p;
	size_t len, off, cap;
};

enum conn_state {
	CS_IDLE,
	CS_CONNECTING,
	CS_HANDSHAKE,
	CS_OPEN,
	CS_CLOSING,
	CS_CLOSED
};
enum conn_role { ROLE_PUB, ROLE_SUB, ROLE_IDLE };

struct conn {
	int fd;
	uint8_t state, role;
	uint8_t frag_op; /* opcode of the message being reassembled */
	bool epollout;   /* EPOLLOUT is in the interest set */
	bool subscribed;
	bool warm;         /* sub: received a --probe message */
	uint8_t dest;      /* lg->dest[] it connects to */
	uint32_t group;    /* traffic: its group; idle: its own channel */
	char key[32];      /* Sec-WebSocket-Key (base64 of 16 bytes) */
	struct buf in;     /* handshake bytes, or a partial frame */
	struct buf out;    /* bytes the kernel did not take yet */
	struct buf frag;   /* fragmented message being reassembled */
	uint64_t progress; /* sub: highest seq received + 1 */
	uint64_t received; /* sub: deliveries, duplicates included */
	uint64_t dups;     /* sub: deliveries with seq < progress */
};

/* One channel: conns[first] is its publisher, the next nsubs its subscribers. */
struct group {
	uint32_t first, nsubs;
	uint32_t live_subs; /* subscribers the node has not closed */
	uint32_t n_at_min;  /* live subscribers whose progress == min_prog */
	uint64_t min_prog;  /* lowest progress over live subscribers */
	uint64_t sent, acked;
	/* nats has no per-message answer: a PING after each burst of PUBs,
	 * and its PONG acknowledges every PUB before it (the server handles
	 * a connection's input in order), as wsrelay's responses do */
	uint64_t ping_at[PING_RING]; /* g->sent when each PING left */
	uint32_t ping_head, ping_n;
};

/* Log-linear histogram: exact below 2^HIST_P, then 2^HIST_P buckets per
 * power of two (relative error under 1/2^HIST_P), like HdrHistogram. */
#define HIST_P 7
#define HIST_SUB (1u << HIST_P)
#define HIST_N ((64 - HIST_P + 1) * HIST_SUB)
struct hist {
	uint64_t n, min, max;
	uint64_t c[HIST_N];
};

struct snap {
	uint64_t t, recv, acked, cpu_self, cpu_node;
	bool node_ok;
};

/* Where a connection goes: --pub-port, or one of the --port list. */
struct dest {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned port;
	char hostport[80];
};

struct lg {
	struct opts o;
	/* [0]: --pub-port (publishers); [1 + k]: --port's k-th (subscribers) */
	struct dest dest[1 + MAX_PORTS];
	char chprefix[32]; /* channel names: chprefix + number */
	int ep, tfd;
	struct conn *conns;
	uint32_t nconns;
	struct group *groups;
	uint32_t ngroups;
	uint32_t next_open; /* next connection to open */
	uint32_t inflight;  /* connecting or handshaking */
	uint32_t nopen;     /* upgraded so far */
	uint32_t nlive;     /* upgraded and not closed */
	uint32_t nsubscribed;
	uint64_t t_all_open, t_all_subscribed;
	char *rbuf;
	size_t rcap;
	char *msg; /* scratch for one outgoing payload */
	size_t msgcap;
	uint64_t rng;
	bool sending, rate_mode;
	uint64_t ticks;            /* timer expirations not yet sent */
	uint64_t rec_from, rec_to; /* latency recorded for send times here */
	struct hist hist;
	uint64_t total_recv, total_acked, misrouted, unknown, slow_closes;
	uint64_t probes_sent, probes_acked, probes_recv;
	uint64_t stdin_lines; /* --sync: lines read so far */
	uint64_t stdin_used;  /* --sync: lines that released a wait */
	bool stdin_eof;
	char err[512];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* Records the first error only (later ones are consequences); returns -1. */
static int fail(struct lg *lg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int fail(struct lg *lg, const char *fmt, ...)
{
	va_list ap;

	if (lg->err[0])
		return -1;
	va_start(ap, fmt);
	vsnprintf(lg->err, sizeof(lg->err), fmt, ap);
	va_end(ap);
	return -1;
}

static uint64_t rng_next(struct lg *lg)
{
	/* xorshift64*: masking keys only need to be unpredictable to proxies */
	lg->rng ^= lg->rng >> 12;
	lg->rng ^= lg->rng << 25;
	lg->rng ^= lg->rng >> 27;
	return lg->rng * 0x2545F4914F6CDD1Dull;
}

/* ---- buffers ---------------------------------------------------------- */

/* Keeps one spare byte past len so text can be NUL-terminated in place. */
static int buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1, cap = b->cap ? b->cap : 256;
	char *p;

	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_append(struct buf *b, const void *d, size_t n)
{
	if (buf_reserve(b, n))
		return -1;
	memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- histogram -------------------------------------------------------- */

static unsigned hist_index(uint64_t v)
{
	unsigned e, shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	shift = e - HIST_P;
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

static void hist_record(struct hist *h, uint64_t v)
{
	if (!h->n || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->c[hist_index(v)]++;
}

/* The value at @permille (500 = median): the middle of its bucket. */
static uint64_t hist_quantile(const struct hist *h, unsigned permille)
{
	uint64_t target = (h->n * permille + 999) / 1000, seen = 0;
	unsigned i, b, s;
	uint64_t low, width;

	if (!h->n)
		return 0;
	if (!target)
		target = 1;
	for (i = 0; i < HIST_N; i++) {
		seen += h->c[i];
		if (seen >= target)
			break;
	}
	if (i == HIST_N)
		return h->max;
	b = i / HIST_SUB;
	s = i % HIST_SUB;
	if (!b)
		return s;
	low = (uint64_t)(HIST_SUB + s) << (b - 1);
	width = 1ull << (b - 1);
	low += width / 2;
	return low > h->max ? h->max : low;
}

/* ---- formatting ------------------------------------------------------- */

/* 1234567 -> "1,234,567" in @out (at least 32 bytes). */
static const char *fmt_count(char *out, uint64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v), i, j = 0;

	for (i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			out[j++] = ',';
		out[j++] = tmp[i];
	}
	out[j] = '\0';
	return out;
}

static const char *fmt_dur(char *out, uint64_t ns)
{
	if (ns < 1000000)
		snprintf(out, 32, "%.1f us", (double)ns / 1e3);
	else if (ns < NS)
		snprintf(out, 32, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(out, 32, "%.2f s", (double)ns / 1e9);
	return out;
}

static const char *fmt_mib(char *out, int64_t bytes)
{
	snprintf(out, 32, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
	return out;
}

/* ---- /proc readers ---------------------------------------------------- */

/* The node's resident set in bytes, or -1. */
static int64_t proc_rss(int pid)
{
	char path[64], line[256];
	int64_t kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "VmRSS:", 6)) {
			kb = strtoll(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* The node's user + system CPU time in ns; false if it cannot be read. */
static bool proc_cpu(int pid, uint64_t *ns)
{
	char path[64], line[1024], *p;
	unsigned long long ut, st;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	bool ok = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	/* the command name may hold spaces: fields count from its ')' */
	if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')) &&
	    sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
		   &st) == 2 &&
	    hz > 0) {
		*ns = (ut + st) * (NS / (uint64_t)hz);
		ok = true;
	}
	fclose(f);
	return ok;
}

static uint64_t self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * NS +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* ---- small JSON scanning (frames come from a trusted test node) ------- */

/* The first byte of the value of @key (given with its quotes), or NULL. */
static const char *json_find(const char *p, size_t len, const char *key)
{
	const char *e = p + len, *v;
	size_t kl = strlen(key);

	v = memmem(p, len, key, kl);
	if (!v)
		return NULL;
	for (v += kl;
	     v < e && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n');
	     v++)
		;
	if (v >= e || *v != ':')
		return NULL;
	for (v++;
	     v < e && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n');
	     v++)
		;
	return v < e ? v : NULL;
}

static bool has_prefix(const char *v, const char *e, const char *lit)
{
	size_t n = strlen(lit);

	return v && (size_t)(e - v) >= n && !memcmp(v, lit, n);
}

/* Length of the JSON string starting at @v (its opening quote), unescaped
 * bytes counted as they stand; 0 if @v is not a complete string. */
static size_t json_strlen(const char *v, const char *e)
{
	const char *q;

	if (!v || v >= e || *v != '"')
		return 0;
	for (q = v + 1; q < e && *q != '"'; q++)
		if (*q == '\\')
			q++;
	return q < e ? (size_t)(q - v - 1) : 0;
}

static bool parse_dec(const char **pp, const char *e, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (p >= e || *p < '0' || *p > '9')
		return false;
	for (; p < e && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	*pp = p;
	*out = v;
	return true;
}

static bool skip_lit(const char **pp, const char *e, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(e - *pp) < n || memcmp(*pp, lit, n))
		return false;
	*pp += n;
	return true;
}

/* ---- connections: sockets, writes, frames ----------------------------- */

static const char *role_name(const struct conn *c)
{
	return c->role == ROLE_PUB   ? "publisher"
	       : c->role == ROLE_SUB ? "subscriber"
				     : "idle";
}

static void group_rescan(struct lg *lg, struct group *g)
{
	uint64_t min = UINT64_MAX;
	uint32_t n = 0, k;

	for (k = 1; k <= g->nsubs; k++) {
		const struct conn *s = &lg->conns[g->first + k];

		if (s->state == CS_CLOSED)
			continue;
		if (s->progress < min) {
			min = s->progress;
			n = 1;
		} else if (s->progress == min) {
			n++;
		}
	}
	g->min_prog = n ? min : g->sent;
	g->n_at_min = n;
}

static void conn_close(struct lg *lg, uint32_t i)
{
	struct conn *c = &lg->conns[i];

	if (c->state == CS_CLOSED || c->state == CS_IDLE)
		return;
	if (c->state == CS_CONNECTING || c->state == CS_HANDSHAKE)
		lg->inflight--;
	else
		lg->nlive--;
	close(c->fd);
	c->fd = -1;
	c->state = CS_CLOSED;
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->frag);
	if (c->role == ROLE_SUB) {
		lg->groups[c->group].live_subs--;
		group_rescan(lg, &lg->groups[c->group]);
	}
}

/* The connection ended without a close frame: fine while we close it. */
static int conn_lost(struct lg *lg, uint32_t i, const char *why)
{
	struct conn *c = &lg->conns[i];

	if (c->state == CS_CLOSING) {
		conn_close(lg, i);
		return 0;
	}
	return fail(lg, "connection %u (%s): %s", i, role_name(c), why);
}

static int conn_set_out(struct lg *lg, uint32_t i, bool want)
{
	struct conn *c = &lg->conns[i];
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0),
				  .data.u64 = i };

	if (want == c->epollout)
		return 0;
	if (epoll_ctl(lg->ep, EPOLL_CTL_MOD, c->fd, &ev))
		return fail(lg, "epoll_ctl: %s", strerror(errno));
	c->epollout = want;
	return 0;
}

/* Writes what the kernel takes now; EPOLLOUT is armed while bytes remain. */
static int conn_flush(struct lg *lg, uint32_t i)
{
	struct conn *c = &lg->conns[i];
	ssize_t n;

	while (c->out.off < c->out.len) {
		n = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off,
			 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return conn_lost(lg, i, strerror(errno));
		}
		c->out.off += (size_t)n;
	}
	if (c->out.off == c->out.len)
		c->out.off = c->out.len = 0;
	return conn_set_out(lg, i, c->out.len > 0);
}

/* Appends one masked frame (RFC 6455 5.3: every client frame is masked). */
static int frame_append(struct lg *lg, uint32_t i, unsigned op, const char *pl,
			size_t len)
{
	struct conn *c = &lg->conns[i];
	unsigned char hdr[14];
	size_t hl = 2, k;
	uint32_t mask = (uint32_t)rng_next(lg);
	unsigned char m[4];
	char *dst;

	if (c->out.off) { /* reclaim what was written already */
		memmove(c->out.p, c->out.p + c->out.off,
			c->out.len - c->out.off);
		c->out.len -= c->out.off;
		c->out.off = 0;
	}
	if (c->out.len + len > MAX_OUT)
		return fail(lg,
			    "connection %u (%s): the node stopped reading "
			    "(%zu bytes unsent)",
			    i, role_name(c), c->out.len);
	hdr[0] = (unsigned char)(0x80 | op);
	if (len < 126) {
		hdr[1] = (unsigned char)(0x80 | len);
	} else if (len <= 0xffff) {
		hdr[1] = 0x80 | 126;
		hdr[2] = (unsigned char)(len >> 8);
		hdr[3] = (unsigned char)len;
		hl = 4;
	} else {
		hdr[1] = 0x80 | 127;
		for (k = 0; k < 8; k++)
			hdr[2 + k] = (unsigned char)((uint64_t)len >>
						     (56 - 8 * k));
		hl = 10;
	}
	memcpy(m, &mask, 4);
	memcpy(hdr + hl, m, 4);
	hl += 4;
	if (buf_reserve(&c->out, hl + len))
		return fail(lg, "out of memory");
	dst = c->out.p + c->out.len;
	memcpy(dst, hdr, hl);
	dst += hl;
	for (k = 0; k < len; k++)
		dst[k] = (char)(pl[k] ^ m[k & 3]);
	c->out.len += hl + len;
	return 0;
}

/* Appends raw protocol bytes (nats: no framing, no masking). */
static int raw_append(struct lg *lg, uint32_t i, const char *p, size_t len)
{
	struct conn *c = &lg->conns[i];

	if (c->out.len + len > MAX_OUT)
		return fail(lg,
			    "connection %u (%s): the server stopped reading "
			    "(%zu bytes unsent)",
			    i, role_name(c), c->out.len);
	if (buf_append(&c->out, p, len))
		return fail(lg, "out of memory");
	return 0;
}

/* Connection @c is ready (subscribed, or for --bare upgraded or logged
 * in): counted once; the last one stamps t_all_subscribed. */
static void conn_ready(struct lg *lg, struct conn *c, uint64_t now)
{
	if (c->subscribed)
		return;
	c->subscribed = true;
	if (++lg->nsubscribed == lg->nconns)
		lg->t_all_subscribed = now;
}

/* --token: the `auth` command, queued on connection @i */
static int conn_login(struct lg *lg, uint32_t i)
{
	int n = snprintf(lg->msg, lg->msgcap,
			 "{\"command\":\"auth\",\"data\":{\"token\":"
			 "\"%s\"},\"nonce\":\"a\"}",
			 lg->o.token);

	return frame_append(lg, i, 0x1, lg->msg, (size_t)n);
}

/*
 * WebSocket: subscribes to the group's channel (the publisher too: wsrelay
 * lets only members send, and does not echo a sender's own message).
 * nats: CONNECT, SUB for subscribers only (a subscribed publisher would
 * get its own messages), then PING: the PONG says the server handled both.
 */
static int conn_subscribe(struct lg *lg, uint32_t i)
{
	struct conn *c = &lg->conns[i];
	int n;

	if (lg->o.proto == PROTO_NATS) {
		n = snprintf(
			lg->msg, lg->msgcap,
			"CONNECT {\"verbose\":false,"
			"\"pedantic\":false,\"name\":\"wsrelay-loadgen\"}\r\n");
		if (c->role != ROLE_PUB)
			n += snprintf(lg->msg + n, lg->msgcap - (size_t)n,
				      "SUB %s%u %u\r\n", lg->chprefix, c->group,
				      i + 1);
		n += snprintf(lg->msg + n, lg->msgcap - (size_t)n, "PING\r\n");
		if (raw_append(lg, i, lg->msg, (size_t)n))
			return -1;
		return conn_flush(lg, i);
	}
	/* pipelined: the node answers a connection's commands in order */
	if (lg->o.token && conn_login(lg, i))
		return -1;
	n = snprintf(lg->msg, lg->msgcap,
		     "{\"command\":\"subscribe\",\"data\":{\"topic\":\"%s%u\"},"
		     "\"nonce\":\"s\"}",
		     lg->chprefix, c->group);
	if (frame_append(lg, i, 0x1, lg->msg, (size_t)n))
		return -1;
	return conn_flush(lg, i);
}

/* The opening of one send of @tlen text bytes to group @gi, in lg->msg:
 * a wsrelay send command up to its message string, or a nats PUB line.
 * Returns its length. */
static int send_head(struct lg *lg, uint32_t gi, size_t tlen)
{
	if (lg->o.proto == PROTO_NATS)
		return snprintf(lg->msg, lg->msgcap, "PUB %s%u %zu\r\n",
				lg->chprefix, gi, tlen);
	return snprintf(lg->msg, lg->msgcap,
			"{\"command\":\"send\",\"data\":{\"channel\":\"%s%u\","
			"\"message\":\"",
			lg->chprefix, gi);
}

/* Closes the send started by send_head() at lg->msg + @at and queues it:
 * the command's nonce @nonce and a frame, or the PUB's CRLF. */
static int send_tail(struct lg *lg, struct group *g, size_t at,
		     const char *nonce)
{
	size_t room = lg->msgcap - at;
	int n;

	if (lg->o.proto == PROTO_NATS) {
		n = snprintf(lg->msg + at, room, "\r\n");
		return raw_append(lg, g->first, lg->msg, at + (size_t)n);
	}
	n = snprintf(lg->msg + at, room, "\"},\"nonce\":\"%s\"}", nonce);
	return frame_append(lg, g->first, 0x1, lg->msg, at + (size_t)n);
}

/* Appends one send (not flushed). The text starts "t=<ns> seq=<n> p=<g> "
 * and is padded to --size bytes; subscribers find it with one memmem. */
static int pub_append(struct lg *lg, struct group *g, uint32_t gi)
{
	uint64_t seq = g->sent, t = now_ns();
	size_t size = lg->o.size;
	char *m = lg->msg, nonce[24];
	int pre, text;

	pre = send_head(lg, gi, size);
	text = snprintf(m + pre, lg->msgcap - (size_t)pre,
			"t=%" PRIu64 " seq=%" PRIu64 " p=%u ", t, seq, gi);
	if ((size_t)text > size)
		return fail(lg,
			    "--size %zu is too small for the timestamp "
			    "header (%d bytes)",
			    size, text);
	memset(m + pre + text, '.', size - (size_t)text);
	snprintf(nonce, sizeof(nonce), "%" PRIu64, seq);
	if (send_tail(lg, g, (size_t)pre + size, nonce))
		return -1;
	g->sent++;
	return 0;
}

/* nats: a PING behind the PUBs queued so far; its PONG acknowledges them.
 * With the ring full, the next burst's PING covers these PUBs too. */
static int pub_ping(struct lg *lg, struct group *g)
{
	uint32_t last = (g->ping_head + g->ping_n + PING_RING - 1) % PING_RING;

	if (g->ping_n == PING_RING ||
	    (g->ping_n && g->ping_at[last] == g->sent) || g->acked == g->sent)
		return 0;
	g->ping_at[(g->ping_head + g->ping_n) % PING_RING] = g->sent;
	g->ping_n++;
	return raw_append(lg, g->first, "PING\r\n", 6);
}

/* Appends and flushes one --probe send: text "probe p=<group>", nonce "p".
 * A nats probe needs no answer: it counts as acknowledged at once. */
static int probe_send(struct lg *lg, struct group *g, uint32_t gi)
{
	char text[32];
	int tl = snprintf(text, sizeof(text), "probe p=%u", gi);
	int pre = send_head(lg, gi, (size_t)tl);

	memcpy(lg->msg + pre, text, (size_t)tl);
	if (send_tail(lg, g, (size_t)(pre + tl), "p"))
		return -1;
	lg->probes_sent++;
	if (lg->o.proto == PROTO_NATS)
		lg->probes_acked++;
	return conn_flush(lg, g->first);
}

/* ---- inbound ---------------------------------------------------------- */

/* A --probe message (@q at its text): marks the subscriber warm. */
static int on_probe(struct lg *lg, uint32_t i, const char *q, const char *e)
{
	struct conn *c = &lg->conns[i];
	uint64_t gi;

	q += 8; /* probe p= */
	if (!parse_dec(&q, e, &gi)) {
		lg->unknown++;
		return 0;
	}
	if (c->role != ROLE_SUB || gi != c->group) {
		lg->misrouted++;
		return 0;
	}
	lg->probes_recv++;
	c->warm = true;
	return 0;
}

/* One delivered message text [@q, @e): "t=..." or "probe p=...". */
static int on_text_msg(struct lg *lg, uint32_t i, const char *q, const char *e,
		       uint64_t now)
{
	struct conn *c = &lg->conns[i];
	uint64_t t, seq, gi, old;
	struct group *g;

	if (has_prefix(q, e, "probe p="))
		return on_probe(lg, i, q, e);
	if (!skip_lit(&q, e, "t=")) {
		lg->unknown++;
		return 0;
	}
	if (!parse_dec(&q, e, &t) || !skip_lit(&q, e, " seq=") ||
	    !parse_dec(&q, e, &seq) || !skip_lit(&q, e, " p=") ||
	    !parse_dec(&q, e, &gi)) {
		lg->unknown++;
		return 0;
	}
	/* a publisher must not get its own message; idle ones get nothing */
	if (c->role != ROLE_SUB || gi != c->group) {
		lg->misrouted++;
		return 0;
	}
	g = &lg->groups[gi];
	if (seq >= g->sent) {
		lg->unknown++;
		return 0;
	}
	lg->total_recv++;
	c->received++;
	if (seq < c->progress) {
		c->dups++;
	} else {
		old = c->progress;
		c->progress = seq + 1;
		if (old == g->min_prog && --g->n_at_min == 0)
			group_rescan(lg, g);
	}
	if (t >= lg->rec_from && t < lg->rec_to)
		hist_record(&lg->hist, now > t ? now - t : 0);
	return 0;
}

/* A wsrelay delivery frame: the text is the "message" string's value. */
static int on_delivery(struct lg *lg, uint32_t i, const char *p, size_t len,
		       uint64_t now)
{
	const char *e = p + len, *q = memmem(p, len, "\"t=", 3);

	if (!q)
		q = memmem(p, len, "\"probe p=", 9);
	if (!q) {
		lg->unknown++;
		return 0;
	}
	return on_text_msg(lg, i, q + 1, e, now);
}

static int on_response(struct lg *lg, uint32_t i, const char *p, size_t len,
		       uint64_t now)
{
	struct conn *c = &lg->conns[i];
	const char *e = p + len, *ok = json_find(p, len, "\"ok\""),
		   *nonce = json_find(p, len, "\"nonce\""), *q;
	const char *reason = json_find(p, len, "\"reason\"");
	uint64_t seq;

	if (!has_prefix(ok, e, "true"))
		return fail(lg,
			    "connection %u (%s): the node refused command "
			    "%.*s: %.*s",
			    i, role_name(c),
			    nonce ? (int)json_strlen(nonce, e) + 2 : 4,
			    nonce ? nonce : "(no nonce)",
			    reason ? (int)json_strlen(reason, e) + 2 : 11,
			    reason ? reason : "(no reason)");
	if (has_prefix(nonce, e, "\"s\"")) {
		conn_ready(lg, c, now);
		return 0;
	}
	if (has_prefix(nonce, e, "\"a\"")) { /* --token: the login */
		if (lg->o.bare && c->role == ROLE_IDLE)
			conn_ready(lg, c, now);
		return 0;
	}
	if (c->role == ROLE_PUB && has_prefix(nonce, e, "\"p\"")) {
		lg->probes_acked++;
		return 0;
	}
	q = nonce ? nonce + 1 : NULL;
	if (c->role != ROLE_PUB || !q || !parse_dec(&q, e, &seq))
		return fail(lg, "connection %u (%s): unexpected response: %.*s",
			    i, role_name(c), (int)(len > 200 ? 200 : len), p);
	lg->groups[c->group].acked++;
	lg->total_acked++;
	return 0;
}

static int on_text(struct lg *lg, uint32_t i, const char *p, size_t len,
		   uint64_t now)
{
	const char *e = p + len, *type = json_find(p, len, "\"type\"");

	if (has_prefix(type, e, "\"message\""))
		return on_delivery(lg, i, p, len, now);
	if (has_prefix(type, e, "\"response\""))
		return on_response(lg, i, p, len, now);
	if (has_prefix(type, e, "\"unsubscribed\""))
		return fail(lg,
			    "connection %u (%s): the node removed it from "
			    "its channel: %.*s",
			    i, role_name(&lg->conns[i]),
			    (int)(len > 200 ? 200 : len), p);
	lg->unknown++;
	return 0;
}

static int on_close(struct lg *lg, uint32_t i, const char *pl, size_t len)
{
	struct conn *c = &lg->conns[i];
	unsigned code = 1005;
	const char *reason = "";
	size_t rlen = 0;

	if (len >= 2) {
		code = (unsigned)(unsigned char)pl[0] << 8 |
		       (unsigned char)pl[1];
		reason = pl + 2;
		rlen = len - 2;
	}
	if (c->state == CS_CLOSING) {
		conn_close(lg, i);
		return 0;
	}
	if (code == 1008 && rlen == 13 &&
	    !memcmp(reason, "slow consumer", 13)) {
		lg->slow_closes++;
		if (c->role == ROLE_SUB) {
			conn_close(lg, i);
			return 0;
		}
	}
	return fail(lg, "connection %u (%s): the node closed it: %u \"%.*s\"",
		    i, role_name(c), code, (int)rlen, reason);
}

static int on_frame(struct lg *lg, uint32_t i, bool fin, unsigned op,
		    const char *pl, size_t len, uint64_t now)
{
	struct conn *c = &lg->conns[i];
	int rc;

	if (op & 0x8) {
		if (!fin || len > 125)
			return fail(lg,
				    "connection %u: bad control frame "
				    "(opcode %u, %zu bytes)",
				    i, op, len);
		if (op == 0x8)
			return on_close(lg, i, pl, len);
		if (op == 0x9) {
			if (frame_append(lg, i, 0xA, pl, len))
				return -1;
			return conn_flush(lg, i);
		}
		if (op == 0xA)
			return 0;
		return fail(lg, "connection %u: unknown opcode %u", i, op);
	}
	if (op == 0x2)
		return fail(lg, "connection %u: unexpected binary frame", i);
	if (op == 0x1) {
		if (c->frag_op)
			return fail(lg,
				    "connection %u: new message inside a "
				    "fragmented one",
				    i);
		if (fin)
			return on_text(lg, i, pl, len, now);
		c->frag_op = (uint8_t)op;
		c->frag.len = 0;
	} else if (op != 0x0 || !c->frag_op) {
		return fail(lg, "connection %u: unexpected opcode %u", i, op);
	}
	if (c->frag.len + len > MAX_FRAME)
		return fail(lg, "connection %u: message over %u bytes", i,
			    MAX_FRAME);
	if (buf_append(&c->frag, pl, len))
		return fail(lg, "out of memory");
	if (!fin)
		return 0;
	c->frag_op = 0;
	rc = on_text(lg, i, c->frag.p, c->frag.len, now);
	c->frag.len = 0;
	return rc;
}

/* Handles every complete frame in @p; returns the bytes consumed or -1.
 * Stops early when a frame closed the connection. */
static ssize_t parse_frames(struct lg *lg, uint32_t i, char *p, size_t len,
			    uint64_t now)
{
	struct conn *c = &lg->conns[i];
	size_t pos = 0, hl, k;
	const unsigned char *h;
	uint64_t plen;
	char *pl;

	while (c->state == CS_OPEN || c->state == CS_CLOSING) {
		size_t avail = len - pos;

		if (avail < 2)
			break;
		h = (const unsigned char *)p + pos;
		if (h[0] & 0x70)
			return fail(lg,
				    "connection %u: RSV bits set without an "
				    "extension",
				    i);
		plen = h[1] & 0x7f;
		hl = 2;
		if (plen == 126) {
			if (avail < 4)
				break;
			plen = (uint64_t)h[2] << 8 | h[3];
			hl = 4;
		} else if (plen == 127) {
			if (avail < 10)
				break;
			for (plen = 0, k = 0; k < 8; k++)
				plen = plen << 8 | h[2 + k];
			hl = 10;
		}
		if (h[1] & 0x80) /* servers must not mask; tolerate it */
			hl += 4;
		if (plen > MAX_FRAME)
			return fail(lg,
				    "connection %u: frame of %" PRIu64 " bytes",
				    i, plen);
		if (avail < hl + plen)
			break;
		pl = p + pos + hl;
		if (h[1] & 0x80)
			for (k = 0; k < plen; k++)
				pl[k] ^= (char)h[hl - 4 + (k & 3)];
		pos += hl + (size_t)plen;
		if (on_frame(lg, i, h[0] & 0x80, h[0] & 0x0f, pl, (size_t)plen,
			     now))
			return -1;
	}
	return (ssize_t)pos;
}

/* ---- nats: the text protocol ------------------------------------------ */

/* The server's first INFO opens the connection: CONNECT, SUB, PING. A later
 * INFO is cluster news (connect_urls) and changes nothing here. */
static int nats_info(struct lg *lg, uint32_t i, uint64_t now)
{
	struct conn *c = &lg->conns[i];

	if (c->state != CS_HANDSHAKE)
		return 0;
	c->state = CS_OPEN;
	lg->inflight--;
	lg->nlive++;
	if (++lg->nopen == lg->nconns)
		lg->t_all_open = now;
	return conn_subscribe(lg, i);
}

/* The first PONG answers conn_subscribe()'s PING; a publisher's later ones
 * acknowledge the PUBs before each pub_ping(). */
static int nats_pong(struct lg *lg, uint32_t i, uint64_t now)
{
	struct conn *c = &lg->conns[i];
	struct group *g;

	if (!c->subscribed) {
		conn_ready(lg, c, now);
		return 0;
	}
	if (c->role != ROLE_PUB)
		return 0;
	g = &lg->groups[c->group];
	if (!g->ping_n)
		return fail(lg,
			    "connection %u (publisher): PONG without a PING",
			    i);
	lg->total_acked += g->ping_at[g->ping_head] - g->acked;
	g->acked = g->ping_at[g->ping_head];
	g->ping_head = (g->ping_head + 1) % PING_RING;
	g->ping_n--;
	return 0;
}

/* The payload size, the last field of "MSG <subject> <sid> [reply] <n>"
 * (@l past "MSG ", @e at its CR); -1 if malformed. */
static int64_t nats_msg_len(const char *l, const char *e)
{
	const char *q = e;
	uint64_t v;

	while (q > l && q[-1] != ' ')
		q--;
	if (q == l || !parse_dec(&q, e, &v) || q != e || v > MAX_FRAME)
		return -1;
	return (int64_t)v;
}

static bool is_op(const char *l, size_t ll, const char *op)
{
	size_t n = strlen(op);

	return ll >= n && !strncasecmp(l, op, n) &&
	       (ll == n || l[n] == ' ' || l[n] == '\t');
}

/* Handles every complete protocol line (a MSG with its payload) in @p;
 * returns the bytes consumed or -1. */
static ssize_t parse_nats(struct lg *lg, uint32_t i, char *p, size_t len,
			  uint64_t now)
{
	struct conn *c = &lg->conns[i];
	size_t pos = 0, ll, need;
	int64_t n;

	while (c->state == CS_HANDSHAKE || c->state == CS_OPEN ||
	       c->state == CS_CLOSING) {
		char *l = p + pos, *eol = memmem(l, len - pos, "\r\n", 2);

		if (!eol) {
			if (len - pos > HS_MAX)
				return fail(lg,
					    "connection %u: a protocol line "
					    "over %d bytes",
					    i, HS_MAX);
			break;
		}
		ll = (size_t)(eol - l);
		if (is_op(l, ll, "MSG")) {
			n = nats_msg_len(l + 4, eol);
			if (n < 0)
				return fail(lg,
					    "connection %u: bad MSG line: "
					    "%.*s",
					    i, (int)(ll > 200 ? 200 : ll), l);
			need = ll + 2 + (size_t)n + 2;
			if (len - pos < need)
				break;
			if (memcmp(eol + 2 + n, "\r\n", 2))
				return fail(lg,
					    "connection %u: no CRLF after a "
					    "MSG payload",
					    i);
			pos += need;
			if (on_text_msg(lg, i, eol + 2, eol + 2 + n, now))
				return -1;
			continue;
		}
		pos += ll + 2;
		if (is_op(l, ll, "PING")) {
			if (raw_append(lg, i, "PONG\r\n", 6) ||
			    conn_flush(lg, i))
				return -1;
		} else if (is_op(l, ll, "PONG")) {
			if (nats_pong(lg, i, now))
				return -1;
		} else if (is_op(l, ll, "INFO")) {
			if (nats_info(lg, i, now))
				return -1;
		} else if (is_op(l, ll, "-ERR")) {
			return fail(lg,
				    "connection %u (%s): the server said %.*s",
				    i, role_name(c), (int)(ll > 200 ? 200 : ll),
				    l);
		} else if (!is_op(l, ll, "+OK")) {
			return fail(lg, "connection %u: unexpected line: %.*s",
				    i, (int)(ll > 200 ? 200 : ll), l);
		}
	}
	return (ssize_t)pos;
}

/* Parses lg->rbuf[0, len) for connection @i, keeping a partial frame. */
static int conn_consume(struct lg *lg, uint32_t i, size_t len, uint64_t now)
{
	struct conn *c = &lg->conns[i];
	ssize_t used = lg->o.proto == PROTO_NATS
			       ? parse_nats(lg, i, lg->rbuf, len, now)
			       : parse_frames(lg, i, lg->rbuf, len, now);

	if (used < 0)
		return -1;
	if (c->state == CS_CLOSED || (size_t)used == len)
		return 0;
	if (buf_append(&c->in, lg->rbuf + used, len - (size_t)used))
		return fail(lg, "out of memory");
	return 0;
}

static int rbuf_reserve(struct lg *lg, size_t need)
{
	char *p;

	if (need <= lg->rcap)
		return 0;
	p = realloc(lg->rbuf, need);
	if (!p)
		return fail(lg, "out of memory");
	lg->rbuf = p;
	lg->rcap = need;
	return 0;
}

/* Reads into the shared buffer behind the connection's leftover bytes, so
 * only partial frames cost per-connection memory. */
static int conn_read(struct lg *lg, uint32_t i)
{
	struct conn *c = &lg->conns[i];
	size_t keep, room;
	ssize_t n;
	int iter;

	for (iter = 0; iter < 8 && c->state != CS_CLOSED; iter++) {
		keep = c->in.len;
		if (rbuf_reserve(lg, keep + READ_CHUNK))
			return -1;
		if (keep)
			memcpy(lg->rbuf, c->in.p, keep);
		room = lg->rcap - keep;
		n = recv(c->fd, lg->rbuf + keep, room, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return conn_lost(lg, i, strerror(errno));
		}
		if (n == 0)
			return conn_lost(lg, i,
					 "the node closed the TCP "
					 "connection without a close frame");
		c->in.len = 0;
		if (conn_consume(lg, i, keep + (size_t)n, now_ns()))
			return -1;
		if ((size_t)n < room)
			break; /* drained; level-triggered anyway */
	}
	return 0;
}

static bool accept_ok(const char *key, const char *hdrs)
{
	unsigned char digest[SHA_DIGEST_LENGTH];
	char cat[sizeof(((struct conn *)0)->key) + sizeof(WS_GUID)], want[32];
	const char *h = strcasestr(hdrs, "\r\nSec-WebSocket-Accept:");

	if (!h)
		return false;
	for (h += 23; *h == ' ' || *h == '\t'; h++)
		;
	snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
	SHA1((const unsigned char *)cat, strlen(cat), digest);
	EVP_EncodeBlock((unsigned char *)want, digest, SHA_DIGEST_LENGTH);
	return !strncmp(h, want, 28) &&
	       (h[28] == '\r' || h[28] == ' ' || h[28] == '\t');
}

static int conn_handshake_read(struct lg *lg, uint32_t i)
{
	struct conn *c = &lg->conns[i];
	char *end;
	size_t hlen, rest;
	ssize_t n;
	uint64_t now;

	if (buf_reserve(&c->in, HS_MAX - c->in.len))
		return fail(lg, "out of memory");
	n = recv(c->fd, c->in.p + c->in.len, HS_MAX - c->in.len, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
			       ? 0
			       : fail(lg, "connection %u: handshake: %s", i,
				      strerror(errno));
	if (n == 0)
		return fail(lg,
			    "connection %u: the node closed the connection "
			    "during the WebSocket handshake",
			    i);
	c->in.len += (size_t)n;
	c->in.p[c->in.len] = '\0';
	end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
	if (!end) {
		if (c->in.len >= HS_MAX)
			return fail(lg,
				    "connection %u: handshake response "
				    "headers over %d bytes",
				    i, HS_MAX);
		return 0;
	}
	now = now_ns();
	hlen = (size_t)(end - c->in.p) + 4;
	end[2] = '\0'; /* keep the last CRLF for header matching */
	if (strncmp(c->in.p, "HTTP/1.1 101", 12))
		return fail(lg, "connection %u: handshake refused: %.*s", i,
			    (int)strcspn(c->in.p, "\r\n"), c->in.p);
	if (!accept_ok(c->key, c->in.p))
		return fail(lg,
			    "connection %u: handshake: missing or wrong "
			    "Sec-WebSocket-Accept",
			    i);
	c->state = CS_OPEN;
	lg->inflight--;
	lg->nlive++;
	if (++lg->nopen == lg->nconns)
		lg->t_all_open = now;
	rest = c->in.len - hlen;
	if (rbuf_reserve(lg, rest + READ_CHUNK))
		return -1;
	memcpy(lg->rbuf, c->in.p + hlen, rest);
	buf_free(&c->in);
	if (!(lg->o.bare && c->role == ROLE_IDLE)) {
		if (conn_subscribe(lg, i))
			return -1;
	} else if (lg->o.token) {
		/* --bare --token: it logs in, then says nothing (ready when
		 * the login is answered) */
		if (conn_login(lg, i) || conn_flush(lg, i))
			return -1;
	} else {
		/* --bare: an upgraded connection that says nothing */
		conn_ready(lg, c, now);
	}
	return rest ? conn_consume(lg, i, rest, now) : 0;
}

static int conn_start_handshake(struct lg *lg, uint32_t i)
{
	struct conn *c = &lg->conns[i];
	unsigned char raw[16];
	uint64_t r[2] = { rng_next(lg), rng_next(lg) };
	char req[512];
	int n;

	memcpy(raw, r, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)c->key, raw, sizeof(raw));
	n = snprintf(req, sizeof(req),
		     "GET /connect HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "\r\n",
		     lg->dest[c->dest].hostport, c->key);
	c->state = CS_HANDSHAKE;
	if (buf_append(&c->out, req, (size_t)n))
		return fail(lg, "out of memory");
	return conn_flush(lg, i);
}

static int conn_open(struct lg *lg, uint32_t i)
{
	struct conn *c = &lg->conns[i];
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u64 = i };
	const struct dest *d = &lg->dest[c->dest];
	int one = 1, fd;

	fd = socket(d->addr.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(lg, "socket: %s%s", strerror(errno),
			    errno == EMFILE ? " (raise ulimit -n)" : "");
	/* small frames must leave at once: Nagle would skew latency */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&d->addr, d->addrlen) &&
	    errno != EINPROGRESS) {
		int err = errno;

		close(fd);
		return fail(lg, "connect to %s: %s%s", d->hostport,
			    strerror(err),
			    err == ECONNREFUSED    ? " (is the node running?)"
			    : err == EADDRNOTAVAIL ? " (out of local ports)"
						   : "");
	}
	if (epoll_ctl(lg->ep, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		return fail(lg, "epoll_ctl: %s", strerror(errno));
	}
	c->fd = fd;
	c->epollout = true;
	c->state = CS_CONNECTING;
	lg->inflight++;
	return 0;
}

static int conn_event(struct lg *lg, uint32_t i, uint32_t events)
{
	struct conn *c = &lg->conns[i];
	int err = 0;
	socklen_t el = sizeof(err);

	switch (c->state) {
	case CS_CONNECTING:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el))
			err = errno;
		if (err)
			return fail(lg, "connect to %s: %s%s",
				    lg->dest[c->dest].hostport, strerror(err),
				    err == ECONNREFUSED
					    ? " (is the node running?)"
					    : "");
		if (!(events & EPOLLOUT))
			return 0;
		if (lg->o.proto == PROTO_NATS) {
			/* the server speaks first (INFO) */
			c->state = CS_HANDSHAKE;
			return conn_flush(lg, i);
		}
		return conn_start_handshake(lg, i);
	case CS_HANDSHAKE:
		if ((events & EPOLLOUT) && conn_flush(lg, i))
			return -1;
		if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			return 0;
		if (lg->o.proto == PROTO_NATS)
			return conn_read(lg, i);
		return conn_handshake_read(lg, i);
	case CS_OPEN:
	case CS_CLOSING:
		if ((events & EPOLLOUT) && conn_flush(lg, i))
			return -1;
		if (c->state != CS_CLOSED &&
		    (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			return conn_read(lg, i);
		return 0;
	default:
		return 0;
	}
}

/* ---- the loop --------------------------------------------------------- */

/* Sends what the window (or the fixed rate) allows, one flush per group. */
static int lg_pump(struct lg *lg)
{
	uint64_t ticks = lg->ticks, k;
	uint32_t gi, w = lg->o.window;
	struct group *g;

	if (!lg->sending)
		return 0;
	lg->ticks = 0;
	for (gi = 0; gi < lg->ngroups; gi++) {
		g = &lg->groups[gi];
		if (lg->conns[g->first].state != CS_OPEN)
			return fail(lg, "publisher %u is gone", gi);
		if (lg->rate_mode) {
			for (k = 0; k < ticks; k++)
				if (pub_append(lg, g, gi))
					return -1;
		} else {
			/* in flight: unacknowledged, or not yet seen by the
			 * slowest subscriber */
			while (g->sent - g->acked < w &&
			       (!g->live_subs || g->sent - g->min_prog < w))
				if (pub_append(lg, g, gi))
					return -1;
		}
		if (lg->o.proto == PROTO_NATS && pub_ping(lg, g))
			return -1;
		if (conn_flush(lg, g->first))
			return -1;
	}
	return 0;
}

/* --sync: counts the lines on stdin (one read: epoll said it is readable). */
static void stdin_read(struct lg *lg)
{
	char b[256];
	ssize_t n = read(STDIN_FILENO, b, sizeof(b)), k;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		lg->stdin_eof = true;
		epoll_ctl(lg->ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
		return;
	}
	for (k = 0; k < n; k++)
		lg->stdin_lines += b[k] == '\n';
}

/* Opens connections up to the concurrency bound, waits at most @timeout_ms
 * for events, handles them, then lets the publishers send. */
static int lg_poll(struct lg *lg, int timeout_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	uint64_t x;
	int n, k;

	while (lg->next_open < lg->nconns && lg->inflight < lg->o.concurrency)
		if (conn_open(lg, lg->next_open++))
			return -1;
	n = epoll_wait(lg->ep, ev, MAX_EVENTS, timeout_ms);
	if (n < 0)
		return errno == EINTR
			       ? 0
			       : fail(lg, "epoll_wait: %s", strerror(errno));
	for (k = 0; k < n; k++) {
		if (ev[k].data.u64 == TAG_STDIN) {
			stdin_read(lg);
			continue;
		}
		if (ev[k].data.u64 == TAG_TIMER) {
			if (read(lg->tfd, &x, sizeof(x)) == (ssize_t)sizeof(x))
				lg->ticks += x;
			continue;
		}
		if (conn_event(lg, (uint32_t)ev[k].data.u64, ev[k].events))
			return -1;
	}
	return lg_pump(lg);
}

static int ms_until(uint64_t deadline, int cap)
{
	uint64_t now = now_ns();
	uint64_t ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;

	return ms > (uint64_t)cap ? cap : (int)ms;
}

/* Opens every connection (bounded concurrency) and waits until each one is
 * upgraded and subscribed, or the --timeout deadline passes. */
static int lg_setup(struct lg *lg)
{
	uint64_t deadline = now_ns() + (uint64_t)(lg->o.timeout * 1e9);

	while (lg->nsubscribed < lg->nconns) {
		if (now_ns() >= deadline)
			return fail(lg,
				    "setup timed out after %.0f s: %u of %u "
				    "connections upgraded, %u subscribed",
				    lg->o.timeout, lg->nopen, lg->nconns,
				    lg->nsubscribed);
		if (lg_poll(lg, ms_until(deadline, 100)))
			return -1;
	}
	return 0;
}

/* Sends a close frame on every open connection and waits (bounded) for the
 * node to close them; the rest are reset so no TIME_WAIT piles up here. */
static void lg_teardown(struct lg *lg, double secs)
{
	static const char bye[2] = { 0x03, (char)0xe8 }; /* 1000 */
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	uint64_t deadline = now_ns() + (uint64_t)(secs * 1e9);
	uint32_t i;

	lg->sending = false;
	lg->next_open = lg->nconns;
	for (i = 0; i < lg->nconns; i++) {
		struct conn *c = &lg->conns[i];

		if (c->state == CS_OPEN && lg->o.proto == PROTO_NATS) {
			conn_close(lg, i); /* no goodbye in the protocol */
		} else if (c->state == CS_OPEN) {
			c->state = CS_CLOSING;
			if (!frame_append(lg, i, 0x8, bye, sizeof(bye)))
				conn_flush(lg, i);
		} else if (c->state == CS_CONNECTING ||
			   c->state == CS_HANDSHAKE) {
			conn_close(lg, i);
		}
	}
	lg->err[0] = '\0';
	while (lg->nlive && now_ns() < deadline)
		if (lg_poll(lg, ms_until(deadline, 50)))
			break;
	for (i = 0; i < lg->nconns; i++) {
		if (lg->conns[i].state == CS_CLOSED ||
		    lg->conns[i].state == CS_IDLE)
			continue;
		setsockopt(lg->conns[i].fd, SOL_SOCKET, SO_LINGER, &lin,
			   sizeof(lin));
		conn_close(lg, i);
	}
	lg->err[0] = '\0';
}

/* ---- scenarios -------------------------------------------------------- */

static void take_snap(struct lg *lg, struct snap *s)
{
	s->t = now_ns();
	s->recv = lg->total_recv;
	s->acked = lg->total_acked;
	s->cpu_self = self_cpu();
	s->node_ok = lg->o.server_pid &&
		     proc_cpu(lg->o.server_pid, &s->cpu_node);
}

static bool drained(const struct lg *lg)
{
	uint32_t gi;

	for (gi = 0; gi < lg->ngroups; gi++) {
		const struct group *g = &lg->groups[gi];

		if (g->acked != g->sent ||
		    (g->live_subs && g->min_prog != g->sent))
			return false;
	}
	return true;
}

static int timer_set(struct lg *lg, uint32_t rate)
{
	struct itimerspec its = { 0 };
	uint64_t iv = rate ? NS / rate : 0;

	its.it_interval.tv_sec = (time_t)(iv / NS);
	its.it_interval.tv_nsec = (long)(iv % NS);
	its.it_value = its.it_interval;
	if (timerfd_settime(lg->tfd, 0, &its, NULL))
		return fail(lg, "timerfd_settime: %s", strerror(errno));
	return 0;
}

static void print_cpu(const struct lg *lg, const struct snap *a,
		      const struct snap *b)
{
	double el = (double)(b->t - a->t);
	double self = 100.0 * (double)(b->cpu_self - a->cpu_self) / el;

	if (a->node_ok && b->node_ok)
		printf("  cpu: node %.0f%%, loadgen %.0f%% (of one core)\n",
		       100.0 * (double)(b->cpu_node - a->cpu_node) / el, self);
	else
		printf("  cpu: loadgen %.0f%% of one core (--server-pid for "
		       "the node's)\n",
		       self);
	if (self > 90.0 && lg->o.sc != SC_LATENCY && lg->o.sc != SC_IDLE)
		printf("  note: loadgen used a whole core; the figure may be "
		       "bounded by the client, not the node\n");
}

/* Live subscribers of @g that have not received a probe yet. */
static uint32_t group_cold(const struct lg *lg, const struct group *g)
{
	uint32_t k, n = 0;

	for (k = 1; k <= g->nsubs; k++) {
		const struct conn *s = &lg->conns[g->first + k];

		n += s->state != CS_CLOSED && !s->warm;
	}
	return n;
}

/* --probe: every PROBE_NS each publisher whose group still has a cold
 * subscriber sends a probe, until every live subscriber received one (the
 * channel works end to end, across the mesh too), or --timeout. */
static int lg_probe(struct lg *lg)
{
	uint64_t t0 = now_ns(), next = t0, now;
	uint64_t deadline = t0 + (uint64_t)(lg->o.timeout * 1e9);
	uint32_t gi, cold, n;

	for (;;) {
		now = now_ns();
		cold = 0;
		for (gi = 0; gi < lg->ngroups; gi++) {
			struct group *g = &lg->groups[gi];

			n = group_cold(lg, g);
			if (n && now >= next && probe_send(lg, g, gi))
				return -1;
			cold += n;
		}
		if (!cold)
			break;
		if (now >= next)
			next = now + PROBE_NS;
		if (now >= deadline)
			return fail(lg,
				    "--probe: %u of %u subscribers received "
				    "no probe within %.0f s (%" PRIu64
				    " sent): "
				    "is the channel known across the mesh?",
				    cold, lg->ngroups * lg->o.subs,
				    lg->o.timeout, lg->probes_sent);
		if (lg_poll(lg,
			    ms_until(next < deadline ? next : deadline, 100)))
			return -1;
	}
	fprintf(stderr,
		"loadgen: every subscriber received a probe after "
		"%.3f s (%" PRIu64 " probes sent)\n",
		(double)(now_ns() - t0) / 1e9, lg->probes_sent);
	/* the acks of the probes still in flight, briefly */
	deadline = now_ns() + NS;
	while (lg->probes_acked < lg->probes_sent && now_ns() < deadline)
		if (lg_poll(lg, ms_until(deadline, 20)))
			return -1;
	return 0;
}

/* --sync: announces @what on stderr, then keeps the connections served
 * until a line arrives on stdin (or EOF), at most --timeout. */
static int sync_wait(struct lg *lg, const char *what)
{
	uint64_t deadline = now_ns() + (uint64_t)(lg->o.timeout * 1e9);

	fprintf(stderr, "loadgen: %s\n", what);
	fflush(stderr);
	while (lg->stdin_lines <= lg->stdin_used && !lg->stdin_eof) {
		if (now_ns() >= deadline)
			return fail(lg,
				    "--sync: no line on stdin within %.0f s "
				    "after '%s'",
				    lg->o.timeout, what);
		if (lg_poll(lg, ms_until(deadline, 100)))
			return -1;
	}
	if (lg->stdin_lines > lg->stdin_used)
		lg->stdin_used++;
	return 0;
}

static int run_traffic(struct lg *lg)
{
	const struct opts *o = &lg->o;
	uint64_t t_start, t_meas, t_end, deadline, expected = 0, got = 0;
	uint64_t dups = 0, sent = 0;
	struct snap s0, s1;
	bool measuring = false;
	double el;
	char a[32], b[32], c[32], d[32], e[32], f[32];
	uint32_t gi, k, nsubs = o->subs;
	const char *what;
	int rc;

	lg->rate_mode = o->sc == SC_LATENCY;
	for (gi = 0; gi < lg->ngroups; gi++) {
		struct group *g = &lg->groups[gi];

		g->first = gi * (nsubs + 1);
		g->nsubs = g->live_subs = g->n_at_min = nsubs;
		for (k = 0; k <= nsubs; k++) {
			struct conn *cn = &lg->conns[g->first + k];

			cn->group = gi;
			cn->role = k ? ROLE_SUB : ROLE_PUB;
			/* subscribers in equal blocks over the --port list */
			cn->dest = (uint8_t)(k ? 1 + (uint64_t)(k - 1) *
								     o->nports /
								     nsubs
					       : 0);
		}
	}
	t_start = now_ns();
	if (lg_setup(lg))
		return -1;
	fprintf(stderr,
		"loadgen: %u connections upgraded and subscribed in "
		"%.2f s\n",
		lg->nconns, (double)(now_ns() - t_start) / 1e9);
	if (o->probe && lg_probe(lg))
		return -1;
	if (o->sync) {
		char line[96];

		snprintf(line, sizeof(line), "ready channel=%s0 channels=%u",
			 lg->chprefix, lg->ngroups);
		if (sync_wait(lg, line))
			return -1;
	}

	t_start = now_ns();
	t_meas = t_start + (uint64_t)(o->warmup * 1e9);
	t_end = t_meas + (uint64_t)(o->seconds * 1e9);
	lg->rec_from = t_meas;
	lg->rec_to = t_end;
	lg->sending = true;
	if (lg->rate_mode && timer_set(lg, o->rate))
		return -1;
	if (lg_pump(lg))
		return -1;
	for (;;) {
		uint64_t now = now_ns();

		if (!measuring && now >= t_meas) {
			take_snap(lg, &s0);
			measuring = true;
		}
		if (now >= t_end)
			break;
		if (lg_poll(lg, ms_until(measuring ? t_end : t_meas, 100)))
			return -1;
	}
	take_snap(lg, &s1);
	lg->sending = false;
	if (lg->rate_mode && timer_set(lg, 0))
		return -1;
	for (gi = 0; o->proto == PROTO_NATS && gi < lg->ngroups; gi++)
		if (pub_ping(lg, &lg->groups[gi]) ||
		    conn_flush(lg, lg->groups[gi].first))
			return -1;

	/* drain: every sent message acknowledged and seen by every subscriber */
	deadline = now_ns() + (uint64_t)(o->drain * 1e9);
	while (!drained(lg) && now_ns() < deadline)
		if (lg_poll(lg, ms_until(deadline, 50)))
			return -1;
	for (gi = 0; gi < lg->ngroups; gi++) {
		const struct group *g = &lg->groups[gi];

		sent += g->sent;
		for (k = 1; k <= g->nsubs; k++) {
			const struct conn *s = &lg->conns[g->first + k];

			if (s->state == CS_CLOSED)
				continue;
			expected += g->sent;
			got += s->received - s->dups;
			dups += s->dups;
		}
	}

	el = (double)(s1.t - s0.t) / 1e9;
	rc = 0;
	if (o->sc == SC_LATENCY) {
		const struct hist *h = &lg->hist;

		printf("latency %s msg/s -> %u subs: p50 %s, p90 %s, p99 %s, "
		       "max %s over %s deliveries (%u B), loss %" PRIu64
		       ", slow-consumer closes %" PRIu64 "\n",
		       fmt_count(a, o->rate), nsubs,
		       fmt_dur(b, hist_quantile(h, 500)),
		       fmt_dur(c, hist_quantile(h, 900)),
		       fmt_dur(d, hist_quantile(h, 990)), fmt_dur(e, h->max),
		       fmt_count(f, h->n), o->size, expected - got,
		       lg->slow_closes);
		double acks = (double)(s1.acked - s0.acked) / el;

		printf("  node acknowledged %.0f msg/s (target %u), p99.9 %s, "
		       "min %s\n",
		       acks, o->rate, fmt_dur(b, hist_quantile(h, 999)),
		       fmt_dur(c, h->min));
		if (acks < 0.95 * o->rate)
			printf("  note: the node did not keep up with the "
			       "target rate; latencies include queueing\n");
	} else {
		double dps = (double)(s1.recv - s0.recv) / el;
		double mps = (double)(s1.acked - s0.acked) / el;

		if (o->sc == SC_FANOUT) {
			snprintf(e, sizeof(e), "1->%u", nsubs);
			what = "";
		} else {
			snprintf(e, sizeof(e), "%ux%u", lg->ngroups, nsubs);
			what = " aggregate";
		}
		printf("%s %s: %s deliveries/s%s (%s msg/s in, %u B, window "
		       "%u%s), loss %" PRIu64 ", slow-consumer closes %" PRIu64
		       "\n",
		       o->sc == SC_FANOUT ? "fanout" : "channels", e,
		       fmt_count(a, (uint64_t)(dps + 0.5)), what,
		       fmt_count(b, (uint64_t)(mps + 0.5)), o->size, o->window,
		       o->sc == SC_CHANNELS ? " per publisher" : "",
		       expected - got, lg->slow_closes);
		printf("  latency under load: p50 %s, p99 %s, max %s; %.1f MB/s "
		       "of message text delivered\n",
		       fmt_dur(a, hist_quantile(&lg->hist, 500)),
		       fmt_dur(b, hist_quantile(&lg->hist, 990)),
		       fmt_dur(c, lg->hist.max), dps * o->size / 1e6);
	}
	if (s1.acked == s0.acked)
		rc = fail(lg,
			  "the node acknowledged no message during the "
			  "measurement");
	printf("  measured %.2f s after %.1f s warm-up; %s sent in all, "
	       "%s of %s expected deliveries received%s\n",
	       el, o->warmup, fmt_count(a, sent), fmt_count(b, got),
	       fmt_count(c, expected),
	       drained(lg) ? "" : " (drain deadline passed)");
	if (o->nports > 1 || o->pub_port != o->ports[0] || o->probe) {
		printf("  publishers on port %u, subscribers on port",
		       o->pub_port);
		for (k = 0; k < o->nports; k++)
			printf("%s%u", k ? "," : " ", o->ports[k]);
		printf("; %" PRIu64 " probes sent, %" PRIu64
		       " probe "
		       "deliveries\n",
		       lg->probes_sent, lg->probes_recv);
	}
	if (dups || lg->misrouted || lg->unknown)
		printf("  anomalies: %" PRIu64
		       " duplicate or out-of-order, %" PRIu64
		       " misrouted, %" PRIu64 " unrecognised frames\n",
		       dups, lg->misrouted, lg->unknown);
	print_cpu(lg, &s0, &s1);
	fflush(stdout);
	if (!rc && o->sync && sync_wait(lg, "drained"))
		return -1;
	return rc;
}

static int run_idle(struct lg *lg)
{
	const struct opts *o = &lg->o;
	int64_t rss0 = -1, rss1 = -1, rss2 = -1;
	uint64_t t0, deadline;
	double up, sub;
	char a[32], b[32], c[32], d[32], e[32], f[32];
	struct snap s0, s1;
	uint32_t i;

	for (i = 0; i < lg->nconns; i++) {
		lg->conns[i].role = ROLE_IDLE;
		lg->conns[i].group = i;
		lg->conns[i].dest = (uint8_t)(1 + (uint64_t)i * o->nports /
							  lg->nconns);
	}
	if (o->server_pid)
		rss0 = proc_rss(o->server_pid);
	take_snap(lg, &s0);
	t0 = s0.t;
	if (lg_setup(lg))
		return -1;
	take_snap(lg, &s1);
	up = (double)(lg->t_all_open - t0 + 1) / 1e9; /* +1: never zero */
	sub = (double)(lg->t_all_subscribed - t0 + 1) / 1e9;

	/* let the node settle (lazy allocations, deferred frees) */
	deadline = now_ns() + NS;
	while (now_ns() < deadline)
		if (lg_poll(lg, ms_until(deadline, 100)))
			return -1;
	if (lg->nlive != lg->nconns)
		return fail(lg, "%u of %u idle connections were closed",
			    lg->nconns - lg->nlive, lg->nconns);
	if (o->server_pid)
		rss1 = proc_rss(o->server_pid);

	if (rss0 >= 0 && rss1 >= 0)
		printf("idle %s conns%s: %s B/conn node RSS (%s -> %s), setup "
		       "%s conn/s upgraded, %s conn/s upgraded+subscribed "
		       "(%u in flight)\n",
		       fmt_count(a, lg->nconns),
		       !o->bare   ? ", one channel each"
		       : o->token ? " (bare, logged in)"
				  : " (bare)",
		       fmt_count(b, (uint64_t)((rss1 > rss0 ? rss1 - rss0 : 0) /
					       lg->nconns)),
		       fmt_mib(c, rss0), fmt_mib(d, rss1),
		       fmt_count(e, (uint64_t)(lg->nconns / up)),
		       fmt_count(f, (uint64_t)(lg->nconns / sub)),
		       o->concurrency);
	else
		printf("idle %s conns: node RSS not measured (no --server-pid), "
		       "setup %s conn/s upgraded, %s conn/s upgraded+subscribed "
		       "(%u in flight)\n",
		       fmt_count(a, lg->nconns),
		       fmt_count(b, (uint64_t)(lg->nconns / up)),
		       fmt_count(c, (uint64_t)(lg->nconns / sub)),
		       o->concurrency);
	printf("  all upgraded in %.2f s, all subscribed (one channel each) "
	       "in %.2f s\n",
	       up, sub);
	print_cpu(lg, &s0, &s1);
	if (rss0 >= 0 && rss1 >= 0 && rss1 <= rss0)
		printf("  note: the node's RSS did not grow; it reused memory "
		       "from earlier connections (measure on a fresh node)\n");
	fflush(stdout);

	/* --hold: stay connected (answering pings) while something else runs */
	deadline = now_ns() + (uint64_t)(o->hold * 1e9);
	while (now_ns() < deadline)
		if (lg_poll(lg, ms_until(deadline, 100)))
			return -1;
	if (lg->nlive != lg->nconns)
		return fail(lg,
			    "%u of %u idle connections were closed while "
			    "held",
			    lg->nconns - lg->nlive, lg->nconns);

	lg_teardown(lg, 5.0);
	if (o->server_pid) {
		deadline = now_ns() + NS;
		while (now_ns() < deadline)
			usleep(50000);
		rss2 = proc_rss(o->server_pid);
		if (rss2 >= 0)
			printf("  node RSS 1 s after closing them all: %s\n",
			       fmt_mib(a, rss2));
	}
	return 0;
}

/* ---- setup and options ------------------------------------------------ */

/* Resolves --host to a loopback address for @port into @d; anything else
 * is refused. */
static int resolve_loopback(struct lg *lg, struct dest *d, unsigned port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&d->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&d->addr;
	const char *host = lg->o.host;

	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	memset(d, 0, sizeof(*d));
	d->port = port;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127)
			return fail(lg,
				    "refusing to connect to %s: not a "
				    "loopback address",
				    host);
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		d->addrlen = sizeof(*s4);
		snprintf(d->hostport, sizeof(d->hostport), "%s:%u", host, port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return fail(lg,
				    "refusing to connect to %s: not a "
				    "loopback address",
				    host);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		d->addrlen = sizeof(*s6);
		snprintf(d->hostport, sizeof(d->hostport), "[%s]:%u", host,
			 port);
		return 0;
	}
	return fail(lg,
		    "--host %s: give a loopback IP address (127.0.0.1, "
		    "::1) or localhost",
		    lg->o.host);
}

/* Raises RLIMIT_NOFILE to the hard limit and checks @need fits. */
static int raise_nofile(struct lg *lg, uint64_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return fail(lg, "getrlimit: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur)
		return fail(lg,
			    "%" PRIu64
			    " file descriptors needed, the limit "
			    "is %llu (hard limit; raise it as root or use fewer "
			    "connections)",
			    need, (unsigned long long)rl.rlim_cur);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wsrelay-loadgen --port PORT[,PORT...] --scenario NAME [options]\n"
		"\n"
		"Loads a wsrelay node's WS /connect endpoint from one thread (loopback only),\n"
		"or with --proto nats a nats-server's client port, with the same scenarios,\n"
		"payloads and measurements.\n"
		"\n"
		"scenarios:\n"
		"  fanout    1 publisher -> --subs subscribers on one channel, as fast as the\n"
		"            node sustains with --window messages in flight; deliveries/s\n"
		"  channels  --channels channels x --subs subscribers, one publisher each,\n"
		"            a --window per publisher; aggregate deliveries/s\n"
		"  latency   1 publisher at --rate msg/s -> --subs subscribers; p50/p90/p99/\n"
		"            max send->receive latency over every delivery\n"
		"  idle      --conns connections, each subscribed to its own channel; node RSS\n"
		"            per connection (needs --server-pid) and connection setup rate\n"
		"\n"
		"options:\n"
		"  --host ADDR        node address, loopback only (default 127.0.0.1)\n"
		"  --port P[,P...]    node port(s) (required): subscribers (and idle\n"
		"                     connections) connect here, split in equal blocks over\n"
		"                     the list (at most %d ports)\n"
		"  --pub-port PORT    port publishers connect to, e.g. another node of the\n"
		"                     mesh, so every message crosses it (default: the first\n"
		"                     --port)\n"
		"  --proto ws|nats    ws (default): wsrelay's JSON commands over WebSocket;\n"
		"                     nats: the NATS text protocol over TCP (CONNECT, SUB,\n"
		"                     PUB, MSG; a PING after each burst of PUBs, whose PONG\n"
		"                     acknowledges them as wsrelay's responses do). The\n"
		"                     subject is the channel name; the payload is the same\n"
		"                     timestamped text\n"
		"  --probe            before the warm-up, each publisher sends probe messages\n"
		"                     (every 20 ms, not counted) until every subscriber got\n"
		"                     one: the channel is known across the mesh (default: on\n"
		"                     when a --port differs from --pub-port; --no-probe: off)\n"
		"  --sync             print 'loadgen: ready channel=NAME' on stderr before\n"
		"                     the traffic and 'loadgen: drained' after the results,\n"
		"                     each time waiting for a line on stdin (EOF: go on), so\n"
		"                     a script can sample the nodes around exactly the\n"
		"                     traffic (waits at most --timeout)\n"
		"  --scenario NAME    fanout | channels | latency | idle (required)\n"
		"  --subs N           subscribers per channel (fanout 100, channels 10,\n"
		"                     latency 100)\n"
		"  --channels N       channels for 'channels' (default 100)\n"
		"  --seconds S        measured duration (default 5)\n"
		"  --warmup S         unmeasured traffic before it (default 1)\n"
		"  --drain S          at most this long for in-flight messages after it\n"
		"                     (default 5)\n"
		"  --size B           message text bytes (default 64, at least 48)\n"
		"  --window W         messages in flight per publisher: unacknowledged, or\n"
		"                     not yet received by the slowest subscriber (default 64)\n"
		"  --rate R           msg/s for 'latency' (default 1000)\n"
		"  --conns K          connections for 'idle' (default 10000)\n"
		"  --concurrency C    connections being opened at once (default 256)\n"
		"  --timeout S        deadline to open and subscribe everything (default 60)\n"
		"  --hold S           idle: keep the connections open S more seconds after\n"
		"                     measuring, e.g. as background load (default 0)\n"
		"  --server-pid PID   the node's pid: RSS (idle) and CPU figures from /proc\n"
		"  --token JWT        ws: every connection sends `auth` with JWT first\n"
		"  --bare             idle: connections only upgrade (no subscribe;\n"
		"                     with --token they log in and nothing more)\n"
		"                     (a node with [auth] required)\n"
		"  --help             this text\n"
		"\n"
		"Exit status: 0 done (loss is reported, not an error), 1 error, 2 usage.\n",
		MAX_PORTS);
}

static bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max || *s == '-')
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool parse_secs(const char *s, double min, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min) || v > 86400.0)
		return false;
	*out = v;
	return true;
}

/* "P[,P...]" into o->ports. */
static bool parse_ports(const char *s, struct opts *o)
{
	char tmp[256], *tok, *save = NULL;

	if (strlen(s) >= sizeof(tmp))
		return false;
	snprintf(tmp, sizeof(tmp), "%s", s);
	o->nports = 0;
	for (tok = strtok_r(tmp, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (o->nports == MAX_PORTS ||
		    !parse_u32(tok, 1, 65535, &o->ports[o->nports]))
			return false;
		o->nports++;
	}
	return o->nports > 0;
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "pub-port", required_argument, NULL, 'q' },
		{ "proto", required_argument, NULL, 'T' },
		{ "probe", no_argument, NULL, 'R' },
		{ "no-probe", no_argument, NULL, 'N' },
		{ "sync", no_argument, NULL, 'S' },
		{ "scenario", required_argument, NULL, 's' },
		{ "subs", required_argument, NULL, 'n' },
		{ "channels", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "drain", required_argument, NULL, 'D' },
		{ "size", required_argument, NULL, 'b' },
		{ "window", required_argument, NULL, 'W' },
		{ "rate", required_argument, NULL, 'r' },
		{ "conns", required_argument, NULL, 'k' },
		{ "concurrency", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "server-pid", required_argument, NULL, 'P' },
		{ "hold", required_argument, NULL, 'L' },
		{ "token", required_argument, NULL, 'J' },
		{ "bare", no_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t pid = 0;
	bool have_sc = false, ok;
	int ch, li = 0;

	*o = (struct opts){ .host = "127.0.0.1",
			    .channels = 100,
			    .size = 64,
			    .window = 64,
			    .rate = 1000,
			    .conns = 10000,
			    .concurrency = 256,
			    .seconds = 5,
			    .warmup = 1,
			    .drain = 5,
			    .timeout = 60,
			    .probe = -1 };
	while ((ch = getopt_long(argc, argv, "h", lo, &li)) != -1) {
		ok = true;
		switch (ch) {
		case 'H':
			o->host = optarg;
			break;
		case 'p':
			ok = parse_ports(optarg, o);
			break;
		case 'q':
			ok = parse_u32(optarg, 1, 65535, &o->pub_port);
			break;
		case 'T':
			ok = !strcmp(optarg, "ws") || !strcmp(optarg, "nats");
			o->proto = strcmp(optarg, "nats") ? PROTO_WS
							  : PROTO_NATS;
			break;
		case 'R':
			o->probe = 1;
			break;
		case 'N':
			o->probe = 0;
			break;
		case 'S':
			o->sync = true;
			break;
		case 's':
			ok = have_sc = true;
			if (!strcmp(optarg, "fanout"))
				o->sc = SC_FANOUT;
			else if (!strcmp(optarg, "channels"))
				o->sc = SC_CHANNELS;
			else if (!strcmp(optarg, "latency"))
				o->sc = SC_LATENCY;
			else if (!strcmp(optarg, "idle"))
				o->sc = SC_IDLE;
			else
				ok = false;
			break;
		case 'n':
			ok = parse_u32(optarg, 1, 1000000, &o->subs);
			break;
		case 'c':
			ok = parse_u32(optarg, 1, 100000, &o->channels);
			break;
		case 'd':
			ok = parse_secs(optarg, 0.1, &o->seconds);
			break;
		case 'w':
			ok = parse_secs(optarg, 0, &o->warmup);
			break;
		case 'D':
			ok = parse_secs(optarg, 0, &o->drain);
			break;
		case 'b':
			ok = parse_u32(optarg, 48, 16u << 20, &o->size);
			break;
		case 'W':
			ok = parse_u32(optarg, 1, 1u << 20, &o->window);
			break;
		case 'r':
			ok = parse_u32(optarg, 1, 10000000, &o->rate);
			break;
		case 'k':
			ok = parse_u32(optarg, 1, 1000000, &o->conns);
			break;
		case 'C':
			ok = parse_u32(optarg, 1, 100000, &o->concurrency);
			break;
		case 't':
			ok = parse_secs(optarg, 1, &o->timeout);
			break;
		case 'L':
			ok = parse_secs(optarg, 0, &o->hold);
			break;
		case 'B':
			o->bare = true;
			break;
		case 'J':
			o->token = optarg;
			ok = *optarg && !strpbrk(optarg, "\"\\");
			break;
		case 'P':
			ok = parse_u32(optarg, 1, 1u << 30, &pid);
			o->server_pid = (int)pid;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
		if (!ok) {
			fprintf(stderr,
				"wsrelay-loadgen: bad value for --%s: "
				"%s\n",
				lo[li].name, optarg);
			return -1;
		}
	}
	if (optind < argc || !have_sc || !o->nports) {
		fprintf(stderr, "wsrelay-loadgen: %s\n",
			optind < argc ? "unexpected argument"
				      : "--port and --scenario are "
					"required (see --help)");
		return -1;
	}
	if (!o->subs)
		o->subs = o->sc == SC_CHANNELS ? 10 : 100;
	if (!o->pub_port)
		o->pub_port = o->ports[0];
	if (o->probe < 0) {
		o->probe = 0;
		for (unsigned k = 0; k < o->nports; k++)
			o->probe |= o->ports[k] != o->pub_port;
	}
	if (o->sc == SC_IDLE && (o->probe || o->sync)) {
		fprintf(stderr,
			"wsrelay-loadgen: --probe and --sync are for "
			"the traffic scenarios\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct lg lgs; /* the histogram makes it large */
	struct lg *lg = &lgs;
	struct epoll_event tev = { .events = EPOLLIN, .data.u64 = TAG_TIMER };
	struct epoll_event sev = { .events = EPOLLIN, .data.u64 = TAG_STDIN };
	uint32_t i;
	int rc = 1;

	lg->ep = lg->tfd = -1;
	if (parse_opts(&lg->o, argc, argv))
		return 2;
	switch (lg->o.sc) {
	case SC_FANOUT:
	case SC_LATENCY:
		lg->ngroups = 1;
		break;
	case SC_CHANNELS:
		lg->ngroups = lg->o.channels;
		break;
	case SC_IDLE:
		lg->ngroups = 0;
		break;
	}
	lg->nconns = lg->o.sc == SC_IDLE ? lg->o.conns
					 : lg->ngroups * (lg->o.subs + 1);
	if (getrandom(&lg->rng, sizeof(lg->rng), 0) != sizeof(lg->rng))
		lg->rng = now_ns() ^ (uint64_t)getpid() << 32;
	lg->rng |= 1;
	/* a valid nats subject too: tokens of [A-Za-z0-9] split by dots */
	snprintf(lg->chprefix, sizeof(lg->chprefix), "lg%d.%c", (int)getpid(),
		 "fcli"[lg->o.sc]);
	if (lg->o.server_pid && proc_rss(lg->o.server_pid) < 0) {
		fail(lg, "--server-pid %d: no such process (or no /proc)",
		     lg->o.server_pid);
		goto out;
	}
	if (resolve_loopback(lg, &lg->dest[0], lg->o.pub_port))
		goto out;
	for (i = 0; i < lg->o.nports; i++)
		if (resolve_loopback(lg, &lg->dest[1 + i], lg->o.ports[i]))
			goto out;
	if (raise_nofile(lg, (uint64_t)lg->nconns + 16))
		goto out;
	lg->conns = calloc(lg->nconns, sizeof(*lg->conns));
	lg->groups = calloc(lg->ngroups ? lg->ngroups : 1, sizeof(*lg->groups));
	lg->msgcap = lg->o.size + 512 + (lg->o.token ? strlen(lg->o.token) : 0);
	lg->msg = malloc(lg->msgcap);
	if (!lg->conns || !lg->groups || !lg->msg) {
		fail(lg, "out of memory");
		goto out;
	}
	for (i = 0; i < lg->nconns; i++)
		lg->conns[i].fd = -1;
	lg->ep = epoll_create1(EPOLL_CLOEXEC);
	lg->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (lg->ep < 0 || lg->tfd < 0 ||
	    epoll_ctl(lg->ep, EPOLL_CTL_ADD, lg->tfd, &tev)) {
		fail(lg, "epoll/timerfd: %s", strerror(errno));
		goto out;
	}
	if (lg->o.sync &&
	    epoll_ctl(lg->ep, EPOLL_CTL_ADD, STDIN_FILENO, &sev)) {
		fail(lg, "--sync: cannot poll stdin (%s): give a pipe or FIFO",
		     strerror(errno));
		goto out;
	}
	if (lg->o.sc == SC_IDLE ? run_idle(lg) : run_traffic(lg))
		goto out;
	rc = 0;
out:
	if (rc) {
		fflush(stdout);
		fprintf(stderr, "wsrelay-loadgen: error: %s\n", lg->err);
	}
	if (lg->conns && lg->nlive)
		lg_teardown(lg, 2.0);
	for (i = 0; lg->conns && i < lg->nconns; i++) {
		buf_free(&lg->conns[i].in);
		buf_free(&lg->conns[i].out);
		buf_free(&lg->conns[i].frag);
	}
	free(lg->conns);
	free(lg->groups);
	free(lg->msg);
	free(lg->rbuf);
	if (lg->tfd >= 0)
		close(lg->tfd);
	if (lg->ep >= 0)
		close(lg->ep);
	return rc;
}
