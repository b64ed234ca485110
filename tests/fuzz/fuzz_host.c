/*
 * tests/fuzz/fuzz_host: the /proc parsers of host-stats (health/host.c) on
 * arbitrary text, the first byte choosing the parser. Invariants: no
 * crash, no read past the text (ASan), and what a parser accepts is sane:
 * memory used <= total, disks used <= total, at most @cap disks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fake_statvfs(const char *path, struct statvfs *out)
{
	(void)path;
	memset(out, 0, sizeof(*out));
	out->f_frsize = 4096;
	out->f_blocks = 1000;
	out->f_bfree = 400;
	out->f_bavail = 300;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct host_disk disks[4];
	struct host_load load;
	struct host_mem mem;
	struct host_net_counters net;
	char *text;
	unsigned n = 0;

	if (size < 1)
		return 0;
	/* an exact-size copy: ASan sees any read past the text */
	text = malloc(size - 1 ? size - 1 : 1);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	switch (data[0] % 4) {
	case 0:
		host_parse_loadavg(text, size - 1, &load);
		break;
	case 1:
		if (host_parse_meminfo(text, size - 1, &mem) == WR_OK &&
		    mem.used > mem.total)
			abort();
		break;
	case 2:
		if (host_parse_disks(text, size - 1, fake_statvfs, disks, 4,
				     &n) == WR_OK) {
			if (n > 4)
				abort();
			for (unsigned i = 0; i < n; i++)
				if (disks[i].used > disks[i].total)
					abort();
		}
		break;
	case 3:
		host_parse_net_dev(text, size - 1, &net);
		break;
	}
	free(text);
	return 0;
}
