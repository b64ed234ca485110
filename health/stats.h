/*
 * health/stats: the numbers behind the node-stats and host-stats commands
 * (PROTOCOL.md 6.1, 6.2). Pure functions over explicit times and texts: no
 * clock reads, and the only I/O is host_read_file and the statvfs callback,
 * so unit tests drive everything with fixed times and fixture files.
 * Loop thread only; nothing here locks.
 */
#ifndef WR_STATS_H
#define WR_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/statvfs.h>

#include "wr.h"

/* ------------------------------------------------------------------ */
/* node-stats (6.1): channel messages in per-second buckets, 60 s only */

#define STATS_WINDOW_SECONDS 60

struct stats_bucket {
	uint64_t packets;
	uint64_t bytes; /* payload bytes */
};

/*
 * b[sec % 60] holds second `sec` for sec in (last_sec - 60, last_sec];
 * every other second is zero. All-zero bytes is a valid empty window, so
 * stats_window_init is only a memset.
 */
struct stats_window {
	int64_t last_sec; /* the newest second anything was counted in */
	struct stats_bucket b[STATS_WINDOW_SECONDS];
};

void stats_window_init(struct stats_window *w);
/* Counts one message of @bytes payload bytes at @now_ms (monotonic). A time
 * before the newest one seen counts in the newest second. */
void stats_add(struct stats_window *w, int64_t now_ms, uint64_t bytes);
/* Sums the last @seconds whole seconds, the current one included (for 15:
 * now_sec - 14 .. now_sec). @seconds in 1..60, else WR_EINVAL and zeros. */
int stats_sum(const struct stats_window *w, int64_t now_ms, unsigned seconds,
	      uint64_t *packets, uint64_t *bytes);
/* True when nothing was counted in the 60 s ending at @now_ms. */
bool stats_window_empty(const struct stats_window *w, int64_t now_ms);
/* Average kilobits per second: bytes * 8 / 1000 / seconds (1 kb = 1000 b). */
double stats_kbps(uint64_t bytes, unsigned seconds);

/* Per-channel windows, keyed by name, at most @max channels tracked. */
#define STATS_CHANNELS_MAX 4096
struct stats_channels;

/* Returns an empty set tracking at most @max channels (0: the default),
 * the caller's (stats_channels_destroy), or NULL on allocation failure. */
struct stats_channels *stats_channels_create(unsigned max);
void stats_channels_destroy(struct stats_channels *s); /* NULL: no-op */
/* Counts one message on channel @name (@len bytes, not NUL-terminated).
 * Returns WR_OK, WR_EFULL (a new channel while @max are tracked: not
 * counted here, stats_channels_untracked goes up), WR_ENOMEM or WR_EINVAL
 * (empty name). */
int stats_channels_add(struct stats_channels *s, const char *name, size_t len,
		       int64_t now_ms, uint64_t bytes);
/* Drops every channel with nothing in its 60 s window at @now_ms (no
 * message for 60 s): after it, stats_channels_count counts live ones. */
void stats_channels_gc(struct stats_channels *s, int64_t now_ms);
unsigned stats_channels_count(const struct stats_channels *s);
/* Messages not counted per channel because the set was full. */
uint64_t stats_channels_untracked(const struct stats_channels *s);
/* The window of @name, or NULL when it is not tracked. */
const struct stats_window *stats_channels_get(const struct stats_channels *s,
					      const char *name, size_t len);

/* {"packets":{"1s":N,"15s":N,"60s":N},"bandwidth":{"1s":X,"15s":X,"60s":X}}
 * with bandwidth in kb/s, at most 3 decimals. */
void stats_window_json(struct wr_buf *b, const struct stats_window *w,
		       int64_t now_ms);
/* {"c1":{window json},...}: every tracked channel whose window is not
 * empty at @now_ms, in no particular order. Names must be valid UTF-8. */
void stats_channels_json(struct wr_buf *b, const struct stats_channels *s,
			 int64_t now_ms);
/* The two 6.1 members the caller puts next to "ok" and "relay", without
 * braces: "network":{window json},"channels":{channels json}. */
void stats_node_json(struct wr_buf *b, const struct stats_window *net,
		     const struct stats_channels *s, int64_t now_ms);

/* ------------------------------------------------------------------ */
/* host-stats (6.2): /proc texts and statvfs                          */

/* Reads @path into @buf with read(2) until EOF and NUL-terminates it.
 * Returns its length (>= 0), WR_EFULL when it needs @cap bytes or more
 * (@cap counts the NUL), WR_ENOENT when it does not exist, WR_EIO on any
 * other failure. */
long host_read_file(const char *path, char *buf, size_t cap);

/*
 * The parsers take text and length (no NUL needed, nothing read past
 * @len), are strict (every line complete, every field where the kernel
 * puts it, numbers in range) and return WR_OK or WR_EINVAL, leaving @out
 * unspecified on error.
 */
struct host_load {
	double m1, m5, m15;
};
int host_parse_loadavg(const char *text, size_t len, struct host_load *out);

/* Bytes. used = total - available: what psutil calls used is not
 * comparable across kernels, total - available is what is really taken. */
struct host_mem {
	uint64_t used;  /* MemTotal - MemAvailable */
	uint64_t free;  /* MemFree */
	uint64_t cache; /* MemAvailable (the notes' "cache") */
	uint64_t total; /* MemTotal */
};
int host_parse_meminfo(const char *text, size_t len, struct host_mem *out);

#define HOST_PATH_MAX 256 /* longer mount points are skipped */
#define HOST_MAX_DISKS 32 /* further real filesystems are skipped */

struct host_disk {
	char mount[HOST_PATH_MAX]; /* decoded (\040 -> ' '), valid UTF-8 */
	char device[HOST_PATH_MAX];
	uint64_t used, free, total; /* bytes, as psutil.disk_usage */
};
/* statvfs(3) or a fake; 0 on success. */
typedef int (*host_statvfs_cb)(const char *path, struct statvfs *out);
/*
 * Parses /proc/mounts (or /proc/self/mounts) and fills @out[0..*n) with
 * the real filesystems, each measured with @fn: a device starting with
 * '/' (or type zfs), a type not on the pseudo/network deny-list, one entry
 * per device (the first mount of it: bind mounts are the same space).
 * Mounts @fn fails on, mount points of HOST_PATH_MAX bytes or more or not
 * UTF-8, and real filesystems past @cap are skipped, yet every line is
 * still checked. @fn NULL is statvfs(3). WR_EINVAL on malformed text.
 */
int host_parse_disks(const char *text, size_t len, host_statvfs_cb fn,
		     struct host_disk *out, unsigned cap, unsigned *n);

/* Totals over every interface but "lo". */
struct host_net_counters {
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
};
int host_parse_net_dev(const char *text, size_t len,
		       struct host_net_counters *out);

/*
 * The network sampler: fed the interface totals every 15 s, keeps the 4
 * latest 15 s deltas (from 5 readings), so "the last 15/30/45/60 s" are
 * the sums of the newest 1/2/3/4 deltas. A window not covered yet is
 * reported as null. A total that went down (counter reset, interface
 * gone) adds 0 for that interval, never a negative or a huge number.
 * All-zero bytes is a valid empty sampler.
 */
#define HOST_NET_INTERVAL_MS 15000
#define HOST_NET_DELTAS 4

struct host_net_samples {
	bool have_last;
	int64_t last_ms;
	struct host_net_counters last;
	struct host_net_counters delta[HOST_NET_DELTAS]; /* ring */
	unsigned head; /* where the next delta goes */
	unsigned n;    /* deltas held, 0..4 */
};

void host_net_init(struct host_net_samples *h);
/*
 * Takes one reading at @now_ms. Returns WR_OK, or WR_EAGAIN when it comes
 * less than 7.5 s after the previous one (ignored: the delta would be
 * labelled 15 s). A reading more than 22.5 s after the previous one (the
 * timer was late, the loop stalled) restarts the history from it rather
 * than report a longer span as 15 s.
 */
int host_net_sample(struct host_net_samples *h, int64_t now_ms,
		    const struct host_net_counters *c);
/* The sum of the newest @k deltas (1..4) into @out; false when fewer are
 * held (the window is not covered). */
bool host_net_window(const struct host_net_samples *h, unsigned k,
		     struct host_net_counters *out);

/* One host-stats reading, but for the network (the sampler's). */
struct host_stats {
	struct host_load load;
	struct host_mem mem;
	struct host_disk disks[HOST_MAX_DISKS];
	unsigned ndisks;
};

struct host_paths {
	const char *loadavg, *meminfo, *mounts, *net_dev;
};
#define HOST_PATHS_PROC                                                \
	{                                                              \
		"/proc/loadavg", "/proc/meminfo", "/proc/self/mounts", \
			"/proc/net/dev"                                \
	}

/* Reads and parses loadavg, meminfo and mounts using @buf (@cap bytes;
 * 64 KiB is plenty for /proc/self/mounts) as scratch; @fn NULL is
 * statvfs(3). Returns WR_OK or the first error (host_read_file's or
 * WR_EINVAL). */
int host_stats_collect(struct host_stats *st, const struct host_paths *p,
		       host_statvfs_cb fn, char *buf, size_t cap);
/* The 15 s timer's work: reads and parses @net_dev, feeds the sampler.
 * Returns host_net_sample's result or the read/parse error. */
int host_net_tick(struct host_net_samples *h, const char *net_dev,
		  int64_t now_ms, char *buf, size_t cap);

/* {"cpu":{"1m":..,"5m":..,"15m":..},"mem":{"used":..,"free":..,
 * "cache":..,"total":..},"disk":[{"mount":..,"used":..,"free":..,
 * "total":..}],"network":{"bytes":{"15s_in":..,"15s_out":..,...,
 * "60s_out":..},"packets":{same}}}: the notes' shape; the caller adds "ok".
 * Uncovered network windows are null. */
void host_stats_json(struct wr_buf *b, const struct host_stats *st,
		     const struct host_net_samples *h);

#endif
