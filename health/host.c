/*
 * health/host: host-stats (PROTOCOL.md 6.2) from Linux /proc texts and
 * statvfs. Every parser walks a cursor bounded by the length it was given
 * (no NUL needed, no strtod/sscanf that could run past it) and rejects
 * any line the kernel would not have written. The network sampler keeps
 * 15 s deltas so a counter reset never shows as a negative number.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"

long host_read_file(const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	long rc;
	int fd;

	if (!cap)
		return WR_EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? WR_ENOENT : WR_EIO;
	for (;;) {
		char probe;
		ssize_t r;

		/* once full, one more byte tells "exactly fits" from "too big" */
		if (len == cap - 1)
			r = read(fd, &probe, 1);
		else
			r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = WR_EIO;
			goto out;
		}
		if (r == 0)
			break;
		if (len == cap - 1) {
			rc = WR_EFULL;
			goto out;
		}
		len += (size_t)r;
	}
	buf[len] = '\0';
	rc = (long)len;
out:
	close(fd);
	return rc;
}

/* ---- a bounded cursor ---- */

struct cur {
	const char *p, *e;
};

static bool eat(struct cur *c, char ch)
{
	if (c->p >= c->e || *c->p != ch)
		return false;
	c->p++;
	return true;
}

static bool eat_str(struct cur *c, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(c->e - c->p) < n || memcmp(c->p, s, n))
		return false;
	c->p += n;
	return true;
}

/* One or more spaces. */
static bool spaces(struct cur *c)
{
	if (!eat(c, ' '))
		return false;
	while (eat(c, ' '))
		;
	return true;
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* One or more decimal digits, no overflow. */
static bool get_u64(struct cur *c, uint64_t *v)
{
	const char *start = c->p;

	*v = 0;
	for (; c->p < c->e && is_digit(*c->p); c->p++) {
		unsigned d = (unsigned)(*c->p - '0');

		if (*v > (UINT64_MAX - d) / 10)
			return false;
		*v = *v * 10 + d;
	}
	return c->p > start;
}

/* digits[.digits], as /proc/loadavg writes them; at most 9 decimals. */
static bool get_decimal(struct cur *c, double *v)
{
	uint64_t ip, frac = 0, scale = 1;

	if (!get_u64(c, &ip) || ip > 1000000000ull)
		return false;
	if (eat(c, '.')) {
		const char *start = c->p;

		for (; c->p < c->e && is_digit(*c->p); c->p++) {
			if (c->p - start >= 9)
				return false;
			frac = frac * 10 + (uint64_t)(*c->p - '0');
			scale *= 10;
		}
		if (c->p == start)
			return false;
	}
	*v = (double)ip + (double)frac / (double)scale;
	return true;
}

/* A non-empty run of bytes up to a space or a newline. */
static bool get_field(struct cur *c, const char **s, size_t *n)
{
	*s = c->p;
	while (c->p < c->e && *c->p != ' ' && *c->p != '\n')
		c->p++;
	*n = (size_t)(c->p - *s);
	return *n > 0;
}

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

/* ---- /proc/loadavg: "0.20 0.18 0.12 1/80 11206\n" ---- */

int host_parse_loadavg(const char *text, size_t len, struct host_load *out)
{
	struct cur c = { text, text + len };
	uint64_t running, total, pid;

	if (get_decimal(&c, &out->m1) && eat(&c, ' ') &&
	    get_decimal(&c, &out->m5) && eat(&c, ' ') &&
	    get_decimal(&c, &out->m15) && eat(&c, ' ') &&
	    get_u64(&c, &running) && eat(&c, '/') && get_u64(&c, &total) &&
	    eat(&c, ' ') && get_u64(&c, &pid) && eat(&c, '\n') && c.p == c.e)
		return WR_OK;
	return WR_EINVAL;
}

/* ---- /proc/meminfo: "Key:   value[ kB]\n" per line ---- */

int host_parse_meminfo(const char *text, size_t len, struct host_mem *out)
{
	static const char *const want[] = { "MemTotal", "MemFree",
					    "MemAvailable" };
	uint64_t got[3];
	bool seen[3] = { false, false, false };
	struct cur c = { text, text + len };

	while (c.p < c.e) {
		const char *key = c.p;
		size_t klen;
		uint64_t v;
		bool kb;

		while (c.p<c.e && * c.p> ' ' && *c.p < 0x7f && *c.p != ':')
			c.p++;
		klen = (size_t)(c.p - key);
		if (!klen || !eat(&c, ':') || !spaces(&c) || !get_u64(&c, &v))
			return WR_EINVAL;
		kb = eat_str(&c, " kB");
		if (!eat(&c, '\n'))
			return WR_EINVAL;
		for (unsigned i = 0; i < 3; i++) {
			if (strlen(want[i]) != klen ||
			    memcmp(want[i], key, klen))
				continue;
			if (seen[i] || !kb || !mul_ok(v, 1024, &got[i]))
				return WR_EINVAL;
			seen[i] = true;
		}
	}
	if (!seen[0] || !seen[1] || !seen[2] || got[1] > got[0] ||
	    got[2] > got[0])
		return WR_EINVAL;
	out->total = got[0];
	out->free = got[1];
	out->cache = got[2];
	out->used = got[0] - got[2];
	return WR_OK;
}

/* ---- /proc/mounts: "dev mountpoint type options freq passno\n" ---- */

/*
 * Pseudo filesystems, and network ones: statvfs on a network mount whose
 * server is gone can block the loop for minutes. Most pseudo types are
 * already out by the device rule; they are listed so a bind-mounted one
 * with a path-like source stays out too. fuseblk (ntfs-3g on a disk) is
 * kept, fuse.* (sshfs, lxcfs, gvfs) is not.
 */
static const char *const deny_types[] = {
	"proc",      "sysfs",      "tmpfs",     "devtmpfs",    "devpts",
	"ramfs",     "overlay",    "squashfs",  "autofs",      "mqueue",
	"hugetlbfs", "debugfs",    "tracefs",   "securityfs",  "pstore",
	"bpf",       "configfs",   "fusectl",   "binfmt_misc", "nsfs",
	"efivarfs",  "rpc_pipefs", "selinuxfs", "nfs",         "nfs4",
	"cifs",      "smb3",       "smbfs",     "ceph",        "glusterfs",
	"9p",        "fuse",
};

static bool has_prefix(const char *s, size_t n, const char *pre)
{
	size_t m = strlen(pre);

	return n >= m && !memcmp(s, pre, m);
}

static bool real_fs(const char *dev, const char *type, size_t tlen)
{
	for (size_t i = 0; i < sizeof(deny_types) / sizeof(deny_types[0]); i++)
		if (strlen(deny_types[i]) == tlen &&
		    !memcmp(deny_types[i], type, tlen))
			return false;
	if (has_prefix(type, tlen, "cgroup") || has_prefix(type, tlen, "fuse."))
		return false;
	/* zfs datasets are named pool/fs: no leading '/' yet real */
	return dev[0] == '/' || (tlen == 3 && !memcmp(type, "zfs", 3));
}

/*
 * Decodes the kernel's octal escapes (\040 space, \011 tab, \012 newline,
 * \134 backslash) into @out (@cap bytes with the NUL). Returns 1, 0 when
 * it does not fit (the mount is skipped), -1 on a malformed escape.
 */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	bool fits = true;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\\') {
			unsigned v = 0;

			if (n - i < 4)
				return -1;
			for (size_t k = 1; k <= 3; k++) {
				if (s[i + k] < '0' || s[i + k] > '7')
					return -1;
				v = v * 8 + (unsigned)(s[i + k] - '0');
			}
			if (v == 0 || v > 255)
				return -1;
			ch = (unsigned char)v;
			i += 3;
		}
		if (o + 1 >= cap)
			fits = false; /* read on: the rest must be valid too */
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
	return fits;
}

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
	uint64_t r;

	return mul_ok(a, b, &r) ? r : UINT64_MAX;
}

static bool measure(host_statvfs_cb fn, struct host_disk *d)
{
	struct statvfs sv;
	uint64_t fr;

	memset(&sv, 0, sizeof(sv));
	if (fn(d->mount, &sv))
		return false;
	fr = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
	/* as psutil.disk_usage: free is what non-root may still use, so
	 * used + free < total by the reserved blocks */
	d->total = mul_sat(sv.f_blocks, fr);
	d->free = mul_sat(sv.f_bavail, fr);
	d->used = sv.f_bfree <= sv.f_blocks
			  ? mul_sat(sv.f_blocks - sv.f_bfree, fr)
			  : 0;
	return true;
}

int host_parse_disks(const char *text, size_t len, host_statvfs_cb fn,
		     struct host_disk *out, unsigned cap, unsigned *n)
{
	struct cur c = { text, text + len };

	*n = 0;
	if (!len)
		return WR_EINVAL;
	while (c.p < c.e) {
		const char *f[4];
		size_t fl[4];
		uint64_t freq, passno;
		struct host_disk *d = *n < cap ? &out[*n] : NULL;
		struct host_disk scratch;
		int dv, mv;
		bool dup = false;

		for (unsigned i = 0; i < 4; i++)
			if (!get_field(&c, &f[i], &fl[i]) || !eat(&c, ' '))
				return WR_EINVAL;
		if (!get_u64(&c, &freq) || !eat(&c, ' ') ||
		    !get_u64(&c, &passno) || !eat(&c, '\n'))
			return WR_EINVAL;
		if (!d)
			d = &scratch; /* full: still decode, to validate */
		dv = unescape(f[0], fl[0], d->device, sizeof(d->device));
		mv = unescape(f[1], fl[1], d->mount, sizeof(d->mount));
		if (dv < 0 || mv < 0)
			return WR_EINVAL;
		if (!dv || !mv || d == &scratch || d->mount[0] != '/' ||
		    !wr_utf8_valid(d->mount, strlen(d->mount)) ||
		    !real_fs(d->device, f[2], fl[2]))
			continue;
		for (unsigned i = 0; i < *n && !dup; i++)
			dup = !strcmp(out[i].device, d->device);
		if (!dup && measure(fn ? fn : statvfs, d))
			(*n)++;
	}
	return WR_OK;
}

/* ---- /proc/net/dev: two header lines, then "name: 16 counters\n" ---- */

#define NET_FIELDS 16

int host_parse_net_dev(const char *text, size_t len,
		       struct host_net_counters *out)
{
	struct cur c = { text, text + len };

	memset(out, 0, sizeof(*out));
	if (!eat_str(&c, "Inter-|"))
		return WR_EINVAL;
	for (unsigned line = 0; line < 2; line++) {
		while (c.p < c.e && *c.p != '\n')
			c.p++;
		if (!eat(&c, '\n') || (line == 0 && !eat_str(&c, " face |")))
			return WR_EINVAL;
	}
	while (c.p < c.e) {
		const char *name;
		size_t nlen;
		uint64_t v[NET_FIELDS];

		while (eat(&c, ' '))
			;
		name = c.p;
		while (c.p < c.e && *c.p != ':' && (unsigned char)*c.p > ' ' &&
		       *c.p != 0x7f)
			c.p++;
		nlen = (size_t)(c.p - name);
		/* IFNAMSIZ is 16 with the NUL; old kernels wrote "eth0:123" */
		if (!nlen || nlen > 15 || !eat(&c, ':'))
			return WR_EINVAL;
		for (unsigned i = 0; i < NET_FIELDS; i++) {
			while (eat(&c, ' '))
				;
			if (!get_u64(&c, &v[i]))
				return WR_EINVAL;
		}
		if (!eat(&c, '\n'))
			return WR_EINVAL;
		if (nlen == 2 && !memcmp(name, "lo", 2))
			continue;
		out->rx_bytes += v[0];
		out->rx_packets += v[1];
		out->tx_bytes += v[8];
		out->tx_packets += v[9];
	}
	return WR_OK;
}

/* ---- the network sampler ---- */

void host_net_init(struct host_net_samples *h)
{
	memset(h, 0, sizeof(*h));
}

static uint64_t up_by(uint64_t now, uint64_t before)
{
	return now >= before ? now - before : 0;
}

int host_net_sample(struct host_net_samples *h, int64_t now_ms,
		    const struct host_net_counters *c)
{
	struct host_net_counters *d;

	if (h->have_last) {
		int64_t dt = now_ms - h->last_ms;

		if (dt < HOST_NET_INTERVAL_MS / 2)
			return WR_EAGAIN;
		if (dt > HOST_NET_INTERVAL_MS * 3 / 2) {
			h->n = 0;
			h->head = 0;
		} else {
			d = &h->delta[h->head];
			d->rx_bytes = up_by(c->rx_bytes, h->last.rx_bytes);
			d->rx_packets = up_by(c->rx_packets,
					      h->last.rx_packets);
			d->tx_bytes = up_by(c->tx_bytes, h->last.tx_bytes);
			d->tx_packets = up_by(c->tx_packets,
					      h->last.tx_packets);
			h->head = (h->head + 1) % HOST_NET_DELTAS;
			if (h->n < HOST_NET_DELTAS)
				h->n++;
		}
	}
	h->have_last = true;
	h->last_ms = now_ms;
	h->last = *c;
	return WR_OK;
}

bool host_net_window(const struct host_net_samples *h, unsigned k,
		     struct host_net_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (k < 1 || k > h->n)
		return false;
	for (unsigned i = 0; i < k; i++) {
		const struct host_net_counters *d =
			&h->delta[(h->head + HOST_NET_DELTAS - 1 - i) %
				  HOST_NET_DELTAS];

		out->rx_bytes += d->rx_bytes;
		out->rx_packets += d->rx_packets;
		out->tx_bytes += d->tx_bytes;
		out->tx_packets += d->tx_packets;
	}
	return true;
}

/* ---- gathering and JSON ---- */

int host_stats_collect(struct host_stats *st, const struct host_paths *p,
		       host_statvfs_cb fn, char *buf, size_t cap)
{
	long n;
	int rc;

	memset(st, 0, sizeof(*st));
	n = host_read_file(p->loadavg, buf, cap);
	if (n < 0)
		return (int)n;
	rc = host_parse_loadavg(buf, (size_t)n, &st->load);
	if (rc)
		return rc;
	n = host_read_file(p->meminfo, buf, cap);
	if (n < 0)
		return (int)n;
	rc = host_parse_meminfo(buf, (size_t)n, &st->mem);
	if (rc)
		return rc;
	n = host_read_file(p->mounts, buf, cap);
	if (n < 0)
		return (int)n;
	return host_parse_disks(buf, (size_t)n, fn, st->disks, HOST_MAX_DISKS,
				&st->ndisks);
}

int host_net_tick(struct host_net_samples *h, const char *net_dev,
		  int64_t now_ms, char *buf, size_t cap)
{
	struct host_net_counters c;
	long n = host_read_file(net_dev, buf, cap);
	int rc;

	if (n < 0)
		return (int)n;
	rc = host_parse_net_dev(buf, (size_t)n, &c);
	if (rc)
		return rc;
	return host_net_sample(h, now_ms, &c);
}

static void net_json(struct wr_buf *b, const struct host_net_samples *h,
		     bool bytes)
{
	for (unsigned k = 1; k <= HOST_NET_DELTAS; k++) {
		struct host_net_counters w;
		unsigned secs = k * HOST_NET_INTERVAL_MS / 1000;

		wr_buf_printf(b, "%s\"%us_in\":", k > 1 ? "," : "", secs);
		if (!host_net_window(h, k, &w)) {
			wr_buf_printf(b, "null,\"%us_out\":null", secs);
			continue;
		}
		wr_buf_printf(b, "%" PRIu64 ",\"%us_out\":%" PRIu64,
			      bytes ? w.rx_bytes : w.rx_packets, secs,
			      bytes ? w.tx_bytes : w.tx_packets);
	}
}

void host_stats_json(struct wr_buf *b, const struct host_stats *st,
		     const struct host_net_samples *h)
{
	wr_buf_printf(b, "{\"cpu\":{\"1m\":%.2f,\"5m\":%.2f,\"15m\":%.2f},",
		      st->load.m1, st->load.m5, st->load.m15);
	wr_buf_printf(b,
		      "\"mem\":{\"used\":%" PRIu64 ",\"free\":%" PRIu64
		      ",\"cache\":%" PRIu64 ",\"total\":%" PRIu64 "},",
		      st->mem.used, st->mem.free, st->mem.cache, st->mem.total);
	wr_buf_puts(b, "\"disk\":[");
	for (unsigned i = 0; i < st->ndisks; i++) {
		const struct host_disk *d = &st->disks[i];

		wr_buf_puts(b, i ? ",{\"mount\":" : "{\"mount\":");
		wr_buf_json_str(b, d->mount, strlen(d->mount));
		wr_buf_printf(b,
			      ",\"used\":%" PRIu64 ",\"free\":%" PRIu64
			      ",\"total\":%" PRIu64 "}",
			      d->used, d->free, d->total);
	}
	wr_buf_puts(b, "],\"network\":{\"bytes\":{");
	net_json(b, h, true);
	wr_buf_puts(b, "},\"packets\":{");
	net_json(b, h, false);
	wr_buf_puts(b, "}}}");
}
