/*
 * tests/unit/test_host: host-stats (PROTOCOL.md 6.2). The /proc parsers on
 * fixture files (tests/unit/fixtures/) and on every truncation of them,
 * each copied into a buffer of exactly its size so ASan sees any read past
 * it; the mount filter with a fake statvfs; the 15 s network sampler; the
 * JSON byte for byte; and one pass over this machine's real /proc.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define FIX WR_SOURCE_DIR "/tests/unit/fixtures/"

/* The fixture's bytes in a malloc'd block of exactly its length. */
static char *fixture(const char *name, size_t *len)
{
	char path[512], buf[8192];
	long n;
	char *p;

	snprintf(path, sizeof(path), FIX "%s", name);
	n = host_read_file(path, buf, sizeof(buf));
	cr_assert_geq(n, 0, "%s: %s", path, wr_strerror((int)n));
	p = malloc(n ? (size_t)n : 1);
	cr_assert_not_null(p);
	memcpy(p, buf, (size_t)n);
	*len = (size_t)n;
	return p;
}

/* ---- fake statvfs ---- */

static const struct fake_fs {
	const char *path;
	unsigned long frsize, bsize;
	fsblkcnt_t blocks, bfree, bavail;
} fake_fs[] = {
	{ "/", 4096, 4096, 1000, 300, 250 },
	{ "/boot/efi", 0, 512, 2000, 1500, 1500 }, /* no frsize: bsize */
	{ "/home", 4096, 4096, 5000000, 1000000, 900000 },
	{ "/tank/data", 131072, 131072, 10, 10, 10 },
	{ "/media/backup disk", 4096, 4096, 100, 0, 0 },
	{ "/mnt/bin\\ary", 4096, 4096, 7, 8, 0 }, /* bfree > blocks */
	/* /mnt/gone: not here, so the fake fails like a stale mount */
	{ "/var/lib/docker", 4096, 4096, 1000, 300, 250 },
	{ "/snap/core22/1380", 4096, 4096, 1, 0, 0 },
	{ "/mnt/smb", 4096, 4096, 1, 0, 0 },
};

static unsigned fake_calls;

static int fake_statvfs(const char *path, struct statvfs *out)
{
	fake_calls++;
	for (size_t i = 0; i < N(fake_fs); i++) {
		if (strcmp(fake_fs[i].path, path))
			continue;
		memset(out, 0, sizeof(*out));
		out->f_frsize = fake_fs[i].frsize;
		out->f_bsize = fake_fs[i].bsize;
		out->f_blocks = fake_fs[i].blocks;
		out->f_bfree = fake_fs[i].bfree;
		out->f_bavail = fake_fs[i].bavail;
		return 0;
	}
	errno = EACCES;
	return -1;
}

/* ---- loadavg ---- */

Test(host, loadavg_fixture)
{
	size_t len;
	char *t = fixture("loadavg", &len);
	struct host_load l;

	cr_assert_eq(host_parse_loadavg(t, len, &l), WR_OK);
	cr_expect_eq(l.m1, 0.52);
	cr_expect_eq(l.m5, 0.58);
	cr_expect_eq(l.m15, 0.59);
	free(t);
}

static const struct text_case {
	const char *what, *text;
	int rc;
} loadavg_cases[] = {
	{ "plain", "0.00 0.01 0.05 1/80 11206\n", WR_OK },
	{ "busy", "123.45 67.89 10.00 300/4000 4194303\n", WR_OK },
	{ "no newline", "0.00 0.01 0.05 1/80 11206", WR_EINVAL },
	{ "trailing junk", "0.00 0.01 0.05 1/80 11206\nx", WR_EINVAL },
	{ "two spaces", "0.00  0.01 0.05 1/80 11206\n", WR_EINVAL },
	{ "negative", "-0.00 0.01 0.05 1/80 11206\n", WR_EINVAL },
	{ "bare dot", "0. 0.01 0.05 1/80 11206\n", WR_EINVAL },
	{ "no tasks", "0.00 0.01 0.05\n", WR_EINVAL },
	{ "bad tasks", "0.00 0.01 0.05 1-80 11206\n", WR_EINVAL },
	{ "letters", "a.00 0.01 0.05 1/80 11206\n", WR_EINVAL },
	{ "huge", "99999999999999999999999.0 0 0 1/1 1\n", WR_EINVAL },
	{ "empty", "", WR_EINVAL },
};

Test(host, loadavg_table)
{
	for (size_t i = 0; i < N(loadavg_cases); i++) {
		const struct text_case *c = &loadavg_cases[i];
		size_t len = strlen(c->text);
		char *t = malloc(len + 1);
		struct host_load l;

		memcpy(t, c->text, len);
		cr_expect_eq(host_parse_loadavg(t, len, &l), c->rc, "%s",
			     c->what);
		free(t);
	}
}

/* ---- meminfo ---- */

Test(host, meminfo_fixture)
{
	size_t len;
	char *t = fixture("meminfo", &len);
	struct host_mem m;

	cr_assert_eq(host_parse_meminfo(t, len, &m), WR_OK);
	cr_expect_eq(m.total, 16303428ull * 1024);
	cr_expect_eq(m.free, 1872344ull * 1024);
	cr_expect_eq(m.cache, 9620192ull * 1024);
	cr_expect_eq(m.used, (16303428ull - 9620192ull) * 1024);
	free(t);
}

static const struct text_case meminfo_cases[] = {
	{ "minimal", "MemTotal: 10 kB\nMemFree: 2 kB\nMemAvailable: 5 kB\n",
	  WR_OK },
	{ "any order",
	  "MemAvailable: 5 kB\nX: 1\nMemFree: 2 kB\nMemTotal: 10 kB\n", WR_OK },
	{ "no unit", "MemTotal: 10\nMemFree: 2 kB\nMemAvailable: 5 kB\n",
	  WR_EINVAL },
	{ "twice",
	  "MemTotal: 10 kB\nMemTotal: 10 kB\nMemFree: 2 kB\nMemAvailable: 5 kB\n",
	  WR_EINVAL },
	{ "missing free", "MemTotal: 10 kB\nMemAvailable: 5 kB\n", WR_EINVAL },
	{ "available > total",
	  "MemTotal: 10 kB\nMemFree: 2 kB\nMemAvailable: 11 kB\n", WR_EINVAL },
	{ "free > total",
	  "MemTotal: 10 kB\nMemFree: 12 kB\nMemAvailable: 5 kB\n", WR_EINVAL },
	{ "overflow x1024",
	  "MemTotal: 18014398509481984 kB\nMemFree: 2 kB\nMemAvailable: 5 kB\n",
	  WR_EINVAL },
	{ "overflow digits",
	  "MemTotal: 99999999999999999999 kB\nMemFree: 2 kB\nMemAvailable: 5 kB\n",
	  WR_EINVAL },
	{ "no space", "MemTotal:10 kB\nMemFree: 2 kB\nMemAvailable: 5 kB\n",
	  WR_EINVAL },
	{ "no colon", "MemTotal 10 kB\nMemFree: 2 kB\nMemAvailable: 5 kB\n",
	  WR_EINVAL },
	{ "unit junk", "MemTotal: 10 kBx\nMemFree: 2 kB\nMemAvailable: 5 kB\n",
	  WR_EINVAL },
	{ "empty key",
	  ": 1\nMemTotal: 10 kB\nMemFree: 2 kB\nMemAvailable: 5 kB\n",
	  WR_EINVAL },
	{ "blank line",
	  "MemTotal: 10 kB\n\nMemFree: 2 kB\nMemAvailable: 5 kB\n", WR_EINVAL },
	{ "last line cut", "MemTotal: 10 kB\nMemFree: 2 kB\nMemAvailable: 5 kB",
	  WR_EINVAL },
	{ "empty", "", WR_EINVAL },
};

Test(host, meminfo_table)
{
	for (size_t i = 0; i < N(meminfo_cases); i++) {
		const struct text_case *c = &meminfo_cases[i];
		size_t len = strlen(c->text);
		char *t = malloc(len + 1);
		struct host_mem m;

		memcpy(t, c->text, len);
		cr_expect_eq(host_parse_meminfo(t, len, &m), c->rc, "%s",
			     c->what);
		free(t);
	}
}

/* ---- mounts ---- */

static const struct want_disk {
	const char *mount;
	uint64_t used, free, total;
} want_disks[] = {
	{ "/", 700 * 4096, 250 * 4096, 1000 * 4096 },
	{ "/boot/efi", 500 * 512, 1500 * 512, 2000 * 512 },
	{ "/home", 4000000ull * 4096, 900000ull * 4096, 5000000ull * 4096 },
	{ "/tank/data", 0, 10 * 131072, 10 * 131072 },
	{ "/media/backup disk", 100 * 4096, 0, 100 * 4096 },
	{ "/mnt/bin\\ary", 0, 0, 7 * 4096 },
};

Test(host, mounts_fixture)
{
	size_t len;
	char *t = fixture("mounts", &len);
	struct host_disk d[HOST_MAX_DISKS];
	unsigned n = 99;

	fake_calls = 0;
	cr_assert_eq(host_parse_disks(t, len, fake_statvfs, d, N(d), &n),
		     WR_OK);
	cr_assert_eq(n, N(want_disks));
	for (unsigned i = 0; i < n; i++) {
		cr_expect_str_eq(d[i].mount, want_disks[i].mount);
		cr_expect_eq(d[i].used, want_disks[i].used, "%s", d[i].mount);
		cr_expect_eq(d[i].free, want_disks[i].free, "%s", d[i].mount);
		cr_expect_eq(d[i].total, want_disks[i].total, "%s", d[i].mount);
	}
	cr_expect_str_eq(d[0].device, "/dev/nvme0n1p2");
	cr_expect_str_eq(d[3].device, "tank/data");
	/* six kept and /mnt/gone tried: pseudo, network, fuse.* and the
	 * docker bind of / never reach statvfs */
	cr_expect_eq(fake_calls, 7);

	/* a small @cap keeps the first ones and still validates the rest */
	cr_expect_eq(host_parse_disks(t, len, fake_statvfs, d, 2, &n), WR_OK);
	cr_expect_eq(n, 2);
	cr_expect_str_eq(d[1].mount, "/boot/efi");
	free(t);
}

static const struct text_case mounts_cases[] = {
	{ "one", "/dev/sda1 / ext4 rw 0 0\n", WR_OK },
	{ "five fields", "/dev/sda1 / ext4 rw 0\n", WR_EINVAL },
	{ "seven fields", "/dev/sda1 / ext4 rw 0 0 0\n", WR_EINVAL },
	{ "double space", "/dev/sda1  / ext4 rw 0 0\n", WR_EINVAL },
	{ "tab", "/dev/sda1\t/ ext4 rw 0 0\n", WR_EINVAL },
	{ "letters in freq", "/dev/sda1 / ext4 rw x 0\n", WR_EINVAL },
	{ "cut escape", "/dev/sda1 /a\\04 ext4 rw 0 0\n", WR_EINVAL },
	{ "escape at end", "/dev/sda1 /a\\0", WR_EINVAL },
	{ "escape 8", "/dev/sda1 /a\\080 ext4 rw 0 0\n", WR_EINVAL },
	{ "escape NUL", "/dev/sda1 /a\\000 ext4 rw 0 0\n", WR_EINVAL },
	{ "escape > 255", "/dev/sda1 /a\\400 ext4 rw 0 0\n", WR_EINVAL },
	{ "no newline", "/dev/sda1 / ext4 rw 0 0", WR_EINVAL },
	{ "blank line", "/dev/sda1 / ext4 rw 0 0\n\n", WR_EINVAL },
	{ "empty", "", WR_EINVAL },
};

Test(host, mounts_table)
{
	for (size_t i = 0; i < N(mounts_cases); i++) {
		const struct text_case *c = &mounts_cases[i];
		size_t len = strlen(c->text);
		char *t = malloc(len + 1);
		struct host_disk d[2];
		unsigned n;

		memcpy(t, c->text, len);
		cr_expect_eq(host_parse_disks(t, len, fake_statvfs, d, N(d),
					      &n),
			     c->rc, "%s", c->what);
		free(t);
	}
}

/* Kept or skipped, one line at a time. */
static const struct keep_case {
	const char *line;
	bool kept;
} keep_cases[] = {
	{ "/dev/sda1 / ext4 rw 0 0\n", true },
	{ "/dev/sda1 / xfs rw 0 0\n", true },
	{ "/dev/sda1 / f2fs rw 0 0\n", true },
	{ "rpool/ROOT / zfs rw 0 0\n", true },
	{ "/dev/sda1 / fuseblk rw 0 0\n", true },
	{ "rootfs / rootfs rw 0 0\n", false },
	{ "none / tmpfs rw 0 0\n", false },
	{ "/dev/sda1 / tmpfs rw 0 0\n", false },
	{ "/dev/loop3 / squashfs ro 0 0\n", false },
	{ "/dev/sda1 / cgroup rw 0 0\n", false },
	{ "/dev/sda1 / cgroup2 rw 0 0\n", false },
	{ "//srv/x / cifs rw 0 0\n", false },
	{ "/srv/x / nfs rw 0 0\n", false },
	{ "/x / fuse.sshfs rw 0 0\n", false },
	{ "/x / fuse rw 0 0\n", false },
	{ "/dev/sda1 relative ext4 rw 0 0\n", false },
	{ "/dev/sda1 /\\377bad-utf8 ext4 rw 0 0\n", false },
};

Test(host, mounts_filter)
{
	for (size_t i = 0; i < N(keep_cases); i++) {
		const char *line = keep_cases[i].line;
		size_t len = strlen(line);
		char *t = malloc(len);
		struct host_disk d[1];
		unsigned n = 9;
		/* "/" succeeds in the fake; "relative" and the bad one fail
		 * there too, so a skip is the filter's doing only if it
		 * never asked */
		unsigned before = fake_calls;

		memcpy(t, line, len);
		cr_expect_eq(host_parse_disks(t, len, fake_statvfs, d, 1, &n),
			     WR_OK, "%s", line);
		cr_expect_eq(n, keep_cases[i].kept ? 1u : 0u, "%s", line);
		if (!keep_cases[i].kept)
			cr_expect_eq(fake_calls, before, "statvfs for %s",
				     line);
		free(t);
	}
}

Test(host, mount_point_too_long_is_skipped)
{
	char line[HOST_PATH_MAX + 64];
	struct host_disk d[1];
	unsigned n = 9, before = fake_calls;
	int len;

	/* "/" + 255 'a' needs 257 bytes with the NUL: one too many */
	memset(line, 'a', sizeof(line));
	memcpy(line, "/dev/sda1 /", 11);
	len = 11 + HOST_PATH_MAX - 1;
	len += snprintf(line + len, sizeof(line) - (size_t)len,
			" ext4 rw 0 0\n");
	cr_expect_eq(host_parse_disks(line, (size_t)len, fake_statvfs, d, 1,
				      &n),
		     WR_OK);
	cr_expect_eq(n, 0);
	cr_expect_eq(fake_calls, before);

	/* past the limit the escapes are still checked */
	len = 11 + HOST_PATH_MAX - 1;
	len += snprintf(line + len, sizeof(line) - (size_t)len,
			"\\08 ext4 rw 0 0\n");
	cr_expect_eq(host_parse_disks(line, (size_t)len, fake_statvfs, d, 1,
				      &n),
		     WR_EINVAL);
	/* one byte shorter fits: statvfs is asked (the fake fails it) */
	before = fake_calls;
	len = 11 + HOST_PATH_MAX - 2;
	len += snprintf(line + len, sizeof(line) - (size_t)len,
			" ext4 rw 0 0\n");
	cr_expect_eq(host_parse_disks(line, (size_t)len, fake_statvfs, d, 1,
				      &n),
		     WR_OK);
	cr_expect_eq(fake_calls, before + 1);
}

/* ---- net/dev ---- */

Test(host, net_dev_fixture)
{
	size_t len;
	char *t = fixture("net_dev", &len);
	struct host_net_counters c;

	cr_assert_eq(host_parse_net_dev(t, len, &c), WR_OK);
	/* eth0 + wlan0 + docker0, lo left out */
	cr_expect_eq(c.rx_bytes, 48213306712ull + 1024000ull);
	cr_expect_eq(c.rx_packets, 39127744ull + 2048ull);
	cr_expect_eq(c.tx_bytes, 5120331888ull + 512000ull + 1442ull);
	cr_expect_eq(c.tx_packets, 21004821ull + 1024ull + 13ull);
	free(t);
}

#define NETHDR \
	"Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n"
#define Z14 " 0 0 0 0 0 0 0 0 0 0 0 0 0 0"

static const struct text_case net_cases[] = {
	{ "headers only", NETHDR, WR_OK },
	{ "old kernel, no space", NETHDR "eth0:1 2" Z14 "\n", WR_OK },
	{ "15 counters", NETHDR "eth0: 1 2 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
	  WR_EINVAL },
	{ "17 counters", NETHDR "eth0: 1 2" Z14 " 0\n", WR_EINVAL },
	{ "no colon", NETHDR "eth0 1 2" Z14 "\n", WR_EINVAL },
	{ "long name", NETHDR "abcdefghijklmnop: 1 2" Z14 "\n", WR_EINVAL },
	{ "no newline", NETHDR "eth0: 1 2" Z14, WR_EINVAL },
	{ "negative", NETHDR "eth0: -1 2" Z14 "\n", WR_EINVAL },
	{ "overflow", NETHDR "eth0: 18446744073709551616 2" Z14 "\n",
	  WR_EINVAL },
	{ "one header", "Inter-|   Receive |  Transmit\n", WR_EINVAL },
	{ "wrong header", "Inter-|\nface |\n", WR_EINVAL },
	{ "empty", "", WR_EINVAL },
};

Test(host, net_dev_table)
{
	for (size_t i = 0; i < N(net_cases); i++) {
		const struct text_case *c = &net_cases[i];
		size_t len = strlen(c->text);
		char *t = malloc(len + 1);
		struct host_net_counters nc;

		memcpy(t, c->text, len);
		cr_expect_eq(host_parse_net_dev(t, len, &nc), c->rc, "%s",
			     c->what);
		free(t);
	}
}

/* ---- bad fixtures, and every truncation of the good ones ---- */

enum kind { LOADAVG, MEMINFO, MOUNTS, NETDEV };

static int parse(enum kind k, const char *t, size_t len)
{
	struct host_load l;
	struct host_mem m;
	struct host_disk d[HOST_MAX_DISKS];
	struct host_net_counters c;
	unsigned n;

	switch (k) {
	case LOADAVG:
		return host_parse_loadavg(t, len, &l);
	case MEMINFO:
		return host_parse_meminfo(t, len, &m);
	case MOUNTS:
		return host_parse_disks(t, len, fake_statvfs, d, N(d), &n);
	case NETDEV:
		return host_parse_net_dev(t, len, &c);
	}
	return WR_EINVAL;
}

static const struct bad_fixture {
	const char *name;
	enum kind kind;
} bad_fixtures[] = {
	{ "loadavg.truncated", LOADAVG },
	{ "loadavg.garbage", LOADAVG },
	{ "meminfo.truncated", MEMINFO },
	{ "meminfo.garbage", MEMINFO },
	{ "meminfo.no-available", MEMINFO },
	{ "mounts.truncated", MOUNTS },
	{ "mounts.bad-escape", MOUNTS },
	{ "mounts.short-line", MOUNTS },
	{ "net_dev.truncated", NETDEV },
	{ "net_dev.garbage", NETDEV },
	{ "net_dev.short-line", NETDEV },
	{ "net_dev.no-header", NETDEV },
	/* the wrong file for the parser */
	{ "meminfo", LOADAVG },
	{ "loadavg", MEMINFO },
	{ "net_dev", MOUNTS },
	{ "mounts", NETDEV },
};

Test(host, bad_fixtures)
{
	for (size_t i = 0; i < N(bad_fixtures); i++) {
		size_t len;
		char *t = fixture(bad_fixtures[i].name, &len);

		cr_expect_eq(parse(bad_fixtures[i].kind, t, len), WR_EINVAL,
			     "%s", bad_fixtures[i].name);
		free(t);
	}
}

Test(host, every_truncation)
{
	static const struct {
		const char *name;
		enum kind kind;
		bool whole_lines_ok; /* a cut at a line end may still parse */
	} good[] = {
		{ "loadavg", LOADAVG, false },
		{ "meminfo", MEMINFO, true },
		{ "mounts", MOUNTS, true },
		{ "net_dev", NETDEV, true },
	};

	for (size_t g = 0; g < N(good); g++) {
		size_t len;
		char *full = fixture(good[g].name, &len);

		cr_expect_eq(parse(good[g].kind, full, len), WR_OK, "%s",
			     good[g].name);
		for (size_t cut = 0; cut < len; cut++) {
			char *t = malloc(cut ? cut : 1);
			int rc;

			memcpy(t, full, cut);
			rc = parse(good[g].kind, t, cut);
			if (!cut || full[cut - 1] != '\n' ||
			    !good[g].whole_lines_ok)
				cr_expect_eq(rc, WR_EINVAL, "%s cut at %zu",
					     good[g].name, cut);
			free(t);
		}
		free(full);
	}
}

/* ---- host_read_file ---- */

Test(host, read_file)
{
	char buf[64];
	long n;

	n = host_read_file(FIX "loadavg", buf, sizeof(buf));
	cr_assert_eq(n, 28);
	cr_expect_str_eq(buf, "0.52 0.58 0.59 2/1234 56789\n");
	cr_expect_eq(host_read_file(FIX "loadavg", buf, 29), 28); /* fits */
	cr_expect_eq(buf[28], '\0');
	cr_expect_eq(host_read_file(FIX "loadavg", buf, 28), WR_EFULL);
	cr_expect_eq(host_read_file(FIX "loadavg", buf, 1), WR_EFULL);
	cr_expect_eq(host_read_file(FIX "loadavg", buf, 0), WR_EINVAL);
	cr_expect_eq(host_read_file(FIX "no-such-file", buf, sizeof(buf)),
		     WR_ENOENT);
	cr_expect_eq(host_read_file(FIX, buf, sizeof(buf)), WR_EIO); /* a dir */
}

/* ---- the network sampler ---- */

static struct host_net_counters ctr(uint64_t rxb, uint64_t txb, uint64_t rxp,
				    uint64_t txp)
{
	struct host_net_counters c = { rxb, rxp, txb, txp };

	return c;
}

/* The same as a pointer to a compound literal. */
#define CTR(rxb, txb, rxp, txp) \
	(&(struct host_net_counters){ (rxb), (rxp), (txb), (txp) })

static void window_is(const struct host_net_samples *h, unsigned k,
		      bool covered, uint64_t rxb, uint64_t txb)
{
	struct host_net_counters w;

	cr_expect_eq(host_net_window(h, k, &w), covered, "window %u", k);
	cr_expect_eq(w.rx_bytes, rxb, "window %u in", k);
	cr_expect_eq(w.tx_bytes, txb, "window %u out", k);
}

Test(host, sampler_fills_and_slides)
{
	struct host_net_samples h;
	int64_t t = 1000000;

	host_net_init(&h);
	for (unsigned k = 1; k <= 4; k++)
		window_is(&h, k, false, 0, 0);
	uint64_t in = 1000, out = 2000;

	cr_expect_eq(host_net_sample(&h, t, CTR(in, out, 0, 0)), WR_OK);
	window_is(&h, 1, false, 0, 0);
	/* the i-th reading adds 100 i in and twice that out */
	for (unsigned i = 1; i <= 6; i++) {
		struct host_net_counters c;

		in += 100 * i;
		out += 200 * i;
		c = ctr(in, out, i, 2 * i);
		t += 15000 + (i % 2 ? 400 : -400); /* timer jitter */
		cr_assert_eq(host_net_sample(&h, t, &c), WR_OK);
		for (unsigned k = 1; k <= 4; k++) {
			uint64_t si = 0;

			/* the newest k deltas are i, i-1, ... (x100) */
			for (unsigned j = 0; j < k && j < i; j++)
				si += 100 * (i - j);
			window_is(&h, k, k <= i, k <= i ? si : 0,
				  k <= i ? 2 * si : 0);
		}
	}
	cr_expect_eq(host_net_window(&h, 0, &(struct host_net_counters){ 0 }),
		     false);
	cr_expect_eq(host_net_window(&h, 5, &(struct host_net_counters){ 0 }),
		     false);
}

Test(host, sampler_counter_reset_is_zero_not_negative)
{
	struct host_net_samples h;

	host_net_init(&h);
	host_net_sample(&h, 0,
			&(struct host_net_counters){ 5000, 50, 9000, 90 });
	host_net_sample(&h, 15000,
			&(struct host_net_counters){ 100, 60, 9500, 10 });
	host_net_sample(&h, 30000,
			&(struct host_net_counters){ 400, 70, 9600, 20 });

	struct host_net_counters w;
	cr_assert(host_net_window(&h, 2, &w));
	cr_expect_eq(w.rx_bytes, 0 + 300); /* dropped: 0, then +300 */
	cr_expect_eq(w.rx_packets, 10 + 10);
	cr_expect_eq(w.tx_bytes, 500 + 100);
	cr_expect_eq(w.tx_packets, 0 + 10);
	cr_assert(host_net_window(&h, 1, &w));
	cr_expect_eq(w.rx_bytes, 300);
}

Test(host, sampler_early_and_late_readings)
{
	struct host_net_samples h;

	host_net_init(&h);
	host_net_sample(&h, 0, &(struct host_net_counters){ 0 });
	host_net_sample(&h, 15000, CTR(100, 100, 1, 1));
	/* 7.4 s later: ignored; 7.5 s: counted */
	cr_expect_eq(host_net_sample(&h, 22400, CTR(5000, 5000, 1, 1)),
		     WR_EAGAIN);
	cr_expect_eq(host_net_sample(&h, 22500, CTR(150, 150, 1, 1)), WR_OK);
	window_is(&h, 2, true, 150, 150);
	/* time going back: ignored */
	cr_expect_eq(host_net_sample(&h, 1000, CTR(1, 1, 1, 1)), WR_EAGAIN);
	/* 22.5 s: still one interval; 22.501 s: history restarts */
	cr_expect_eq(host_net_sample(&h, 45000, CTR(200, 200, 1, 1)), WR_OK);
	window_is(&h, 3, true, 200, 200);
	cr_expect_eq(host_net_sample(&h, 67501, CTR(900, 900, 1, 1)), WR_OK);
	window_is(&h, 1, false, 0, 0);
	cr_expect_eq(host_net_sample(&h, 82501, CTR(950, 960, 1, 1)), WR_OK);
	window_is(&h, 1, true, 50, 60);
	window_is(&h, 2, false, 0, 0);
}

/* ---- JSON ---- */

Test(host, json_exact)
{
	struct host_stats *st = calloc(1, sizeof(*st));
	struct host_net_samples h;
	struct wr_buf b;

	cr_assert_not_null(st);
	st->load = (struct host_load){ 0.5, 1.25, 12.0 };
	st->mem = (struct host_mem){ 1000, 500, 1000, 2000 };
	snprintf(st->disks[0].mount, HOST_PATH_MAX, "/");
	st->disks[0].used = 0;
	st->disks[0].free = 1000;
	st->disks[0].total = 1000;
	snprintf(st->disks[1].mount, HOST_PATH_MAX, "/media/a \"b\"");
	st->disks[1].used = 1;
	st->disks[1].free = 2;
	st->disks[1].total = 3;
	st->ndisks = 2;
	host_net_init(&h);
	host_net_sample(&h, 0, CTR(0, 0, 0, 0));
	host_net_sample(&h, 15000, CTR(100, 200, 1, 2));
	host_net_sample(&h, 30000, CTR(300, 600, 3, 6));

	wr_buf_init(&b);
	host_stats_json(&b, st, &h);
	cr_assert(!b.oom);
	cr_expect_str_eq(
		b.p,
		"{\"cpu\":{\"1m\":0.50,\"5m\":1.25,\"15m\":12.00},"
		"\"mem\":{\"used\":1000,\"free\":500,\"cache\":1000,\"total\":2000},"
		"\"disk\":[{\"mount\":\"/\",\"used\":0,\"free\":1000,\"total\":1000},"
		"{\"mount\":\"/media/a \\\"b\\\"\",\"used\":1,\"free\":2,\"total\":3}],"
		"\"network\":{\"bytes\":{\"15s_in\":200,\"15s_out\":400,"
		"\"30s_in\":300,\"30s_out\":600,\"45s_in\":null,\"45s_out\":null,"
		"\"60s_in\":null,\"60s_out\":null},"
		"\"packets\":{\"15s_in\":2,\"15s_out\":4,\"30s_in\":3,\"30s_out\":6,"
		"\"45s_in\":null,\"45s_out\":null,\"60s_in\":null,\"60s_out\":null}}}");

	/* empty: no disks, no samples */
	memset(st, 0, sizeof(*st));
	host_net_init(&h);
	wr_buf_reset(&b);
	host_stats_json(&b, st, &h);
	cJSON *root = cJSON_Parse(b.p);
	cr_assert_not_null(root, "%s", b.p);
	cr_expect(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root,
								 "disk")));
	cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(root, "network"),
			"bytes"),
		"15s_in")));
	cJSON_Delete(root);
	wr_buf_fini(&b);
	free(st);
}

Test(host, collect_from_fixtures)
{
	struct host_paths p = { FIX "loadavg", FIX "meminfo", FIX "mounts",
				FIX "net_dev" };
	struct host_stats *st = malloc(sizeof(*st));
	struct host_net_samples h;
	char buf[4096];

	cr_assert_not_null(st);
	cr_assert_eq(host_stats_collect(st, &p, fake_statvfs, buf, sizeof(buf)),
		     WR_OK);
	cr_expect_eq(st->load.m5, 0.58);
	cr_expect_eq(st->mem.total, 16303428ull * 1024);
	cr_expect_eq(st->ndisks, N(want_disks));

	/* each failure comes back as it is */
	p.meminfo = FIX "meminfo.truncated";
	cr_expect_eq(host_stats_collect(st, &p, fake_statvfs, buf, sizeof(buf)),
		     WR_EINVAL);
	p.meminfo = FIX "missing";
	cr_expect_eq(host_stats_collect(st, &p, fake_statvfs, buf, sizeof(buf)),
		     WR_ENOENT);
	p.meminfo = FIX "meminfo";
	cr_expect_eq(host_stats_collect(st, &p, fake_statvfs, buf, 1024),
		     WR_EFULL);

	host_net_init(&h);
	cr_expect_eq(host_net_tick(&h, p.net_dev, 0, buf, sizeof(buf)), WR_OK);
	cr_expect_eq(host_net_tick(&h, p.net_dev, 15000, buf, sizeof(buf)),
		     WR_OK);
	window_is(&h, 1, true, 0, 0); /* same file: nothing moved */
	cr_expect_eq(host_net_tick(&h, FIX "net_dev.garbage", 30000, buf,
				   sizeof(buf)),
		     WR_EINVAL);
	free(st);
}

/* ---- this machine's /proc, as the node will read it ---- */

Test(host, real_proc)
{
	struct host_paths p = HOST_PATHS_PROC;
	struct host_stats *st = malloc(sizeof(*st));
	struct host_net_samples h;
	static char buf[1 << 16];
	int rc;

	cr_assert_not_null(st);
	if (host_read_file(p.loadavg, buf, sizeof(buf)) == WR_ENOENT) {
		free(st);
		cr_skip_test("no /proc here");
	}
	rc = host_stats_collect(st, &p, NULL, buf, sizeof(buf));
	cr_expect_eq(rc, WR_OK, "%s", wr_strerror(rc));
	cr_expect_gt(st->mem.total, 0);
	cr_expect_leq(st->mem.used, st->mem.total);
	host_net_init(&h);
	rc = host_net_tick(&h, p.net_dev, 0, buf, sizeof(buf));
	cr_expect_eq(rc, WR_OK, "%s", wr_strerror(rc));
	free(st);
}
