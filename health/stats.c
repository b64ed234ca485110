/*
 * health/stats: node-stats windows (PROTOCOL.md 6.1). A window is a ring of
 * 60 one-second buckets that is cleared lazily: a bucket is zeroed when
 * time first moves into its second, and sums only read buckets younger
 * than 60 s, so any gap (or none) is exact without a timer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

/* ---- one window ---- */

static int64_t sec_of(int64_t ms)
{
	int64_t s = ms / 1000;

	return (ms < 0 && ms % 1000) ? s - 1 : s; /* floor, not toward 0 */
}

static unsigned slot(int64_t sec)
{
	int64_t r = sec % STATS_WINDOW_SECONDS;

	return (unsigned)(r < 0 ? r + STATS_WINDOW_SECONDS : r);
}

void stats_window_init(struct stats_window *w)
{
	memset(w, 0, sizeof(*w));
}

void stats_add(struct stats_window *w, int64_t now_ms, uint64_t bytes)
{
	int64_t sec = sec_of(now_ms);
	struct stats_bucket *k;

	if (sec > w->last_sec) {
		/* the seconds between were silent: their old buckets go */
		if (sec - w->last_sec >= STATS_WINDOW_SECONDS)
			memset(w->b, 0, sizeof(w->b));
		else
			for (int64_t s = w->last_sec + 1; s <= sec; s++)
				memset(&w->b[slot(s)], 0, sizeof(w->b[0]));
		w->last_sec = sec;
	}
	k = &w->b[slot(w->last_sec)];
	k->packets++;
	k->bytes += bytes;
}

int stats_sum(const struct stats_window *w, int64_t now_ms, unsigned seconds,
	      uint64_t *packets, uint64_t *bytes)
{
	int64_t now = sec_of(now_ms), lo;

	*packets = *bytes = 0;
	if (seconds < 1 || seconds > STATS_WINDOW_SECONDS)
		return WR_EINVAL;
	if (now < w->last_sec)
		now = w->last_sec;
	/* seconds after last_sec are zero; as now >= last_sec and seconds
	 * <= 60, lo > last_sec - 60: no bucket is read for a stale second */
	lo = now - (int64_t)seconds + 1;
	for (int64_t s = lo; s <= w->last_sec; s++) {
		*packets += w->b[slot(s)].packets;
		*bytes += w->b[slot(s)].bytes;
	}
	return WR_OK;
}

bool stats_window_empty(const struct stats_window *w, int64_t now_ms)
{
	uint64_t p, b;

	stats_sum(w, now_ms, STATS_WINDOW_SECONDS, &p, &b);
	return p == 0;
}

double stats_kbps(uint64_t bytes, unsigned seconds)
{
	if (!seconds)
		return 0.0;
	return (double)bytes * 8.0 / 1000.0 / (double)seconds;
}

/* ---- per-channel set: a fixed chained hash table, bounded ---- */

struct stats_channel {
	struct stats_channel *next;
	struct stats_window w;
	size_t len;
	char name[];
};

struct stats_channels {
	struct stats_channel **tab;
	size_t mask; /* buckets - 1, a power of two minus one */
	unsigned count, max;
	uint64_t untracked;
};

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

struct stats_channels *stats_channels_create(unsigned max)
{
	struct stats_channels *s = calloc(1, sizeof(*s));
	size_t nb = 16;

	if (!s)
		return NULL;
	s->max = max ? max : STATS_CHANNELS_MAX;
	while (nb < s->max && nb < ((size_t)1 << 20))
		nb <<= 1;
	s->tab = calloc(nb, sizeof(*s->tab));
	if (!s->tab) {
		free(s);
		return NULL;
	}
	s->mask = nb - 1;
	return s;
}

void stats_channels_destroy(struct stats_channels *s)
{
	if (!s)
		return;
	for (size_t i = 0; i <= s->mask; i++) {
		struct stats_channel *c = s->tab[i], *next;

		for (; c; c = next) {
			next = c->next;
			free(c);
		}
	}
	free(s->tab);
	free(s);
}

static struct stats_channel **find(const struct stats_channels *s,
				   const char *name, size_t len)
{
	struct stats_channel **pc = &s->tab[fnv1a(name, len) & s->mask];

	for (; *pc; pc = &(*pc)->next)
		if ((*pc)->len == len && !memcmp((*pc)->name, name, len))
			break;
	return pc;
}

int stats_channels_add(struct stats_channels *s, const char *name, size_t len,
		       int64_t now_ms, uint64_t bytes)
{
	struct stats_channel **pc, *c;

	if (!len)
		return WR_EINVAL;
	pc = find(s, name, len);
	c = *pc;
	if (!c) {
		if (s->count >= s->max) {
			s->untracked++;
			return WR_EFULL;
		}
		c = malloc(sizeof(*c) + len + 1);
		if (!c)
			return WR_ENOMEM;
		c->next = NULL;
		stats_window_init(&c->w);
		c->len = len;
		memcpy(c->name, name, len);
		c->name[len] = '\0';
		*pc = c;
		s->count++;
	}
	stats_add(&c->w, now_ms, bytes);
	return WR_OK;
}

void stats_channels_gc(struct stats_channels *s, int64_t now_ms)
{
	for (size_t i = 0; i <= s->mask; i++) {
		struct stats_channel **pc = &s->tab[i];

		while (*pc) {
			struct stats_channel *c = *pc;

			if (!stats_window_empty(&c->w, now_ms)) {
				pc = &c->next;
				continue;
			}
			*pc = c->next;
			free(c);
			s->count--;
		}
	}
}

unsigned stats_channels_count(const struct stats_channels *s)
{
	return s->count;
}

uint64_t stats_channels_untracked(const struct stats_channels *s)
{
	return s->untracked;
}

const struct stats_window *stats_channels_get(const struct stats_channels *s,
					      const char *name, size_t len)
{
	struct stats_channel *c = *find(s, name, len);

	return c ? &c->w : NULL;
}

/* ---- JSON ---- */

static const unsigned windows[] = { 1, 15, 60 };
#define NWINDOWS (sizeof(windows) / sizeof(windows[0]))

/* At most 3 decimals (1 bit/s), trailing zeros cut but one: 10.0, 0.667. */
static void put_kbps(struct wr_buf *b, double v)
{
	char tmp[64];
	int n = snprintf(tmp, sizeof(tmp), "%.3f", v);

	if (n <= 0 || (size_t)n >= sizeof(tmp)) {
		wr_buf_puts(b, "0.0");
		return;
	}
	while (n > 2 && tmp[n - 1] == '0' && tmp[n - 2] != '.')
		n--;
	wr_buf_append(b, tmp, (size_t)n);
}

void stats_window_json(struct wr_buf *b, const struct stats_window *w,
		       int64_t now_ms)
{
	uint64_t p[NWINDOWS], by[NWINDOWS];

	for (size_t i = 0; i < NWINDOWS; i++)
		stats_sum(w, now_ms, windows[i], &p[i], &by[i]);
	wr_buf_puts(b, "{\"packets\":{");
	for (size_t i = 0; i < NWINDOWS; i++)
		wr_buf_printf(b, "%s\"%us\":%" PRIu64, i ? "," : "", windows[i],
			      p[i]);
	wr_buf_puts(b, "},\"bandwidth\":{");
	for (size_t i = 0; i < NWINDOWS; i++) {
		wr_buf_printf(b, "%s\"%us\":", i ? "," : "", windows[i]);
		put_kbps(b, stats_kbps(by[i], windows[i]));
	}
	wr_buf_puts(b, "}}");
}

void stats_channels_json(struct wr_buf *b, const struct stats_channels *s,
			 int64_t now_ms)
{
	bool first = true;

	wr_buf_puts(b, "{");
	for (size_t i = 0; i <= s->mask; i++) {
		for (struct stats_channel *c = s->tab[i]; c; c = c->next) {
			if (stats_window_empty(&c->w, now_ms))
				continue;
			if (!first)
				wr_buf_puts(b, ",");
			first = false;
			wr_buf_json_str(b, c->name, c->len);
			wr_buf_puts(b, ":");
			stats_window_json(b, &c->w, now_ms);
		}
	}
	wr_buf_puts(b, "}");
}

void stats_node_json(struct wr_buf *b, const struct stats_window *net,
		     const struct stats_channels *s, int64_t now_ms)
{
	wr_buf_puts(b, "\"network\":");
	stats_window_json(b, net, now_ms);
	wr_buf_puts(b, ",\"channels\":");
	stats_channels_json(b, s, now_ms);
}
