/*
 * tests/fuzz/fuzz_config: libFuzzer entry for the config loader. Runs the
 * whole path a file takes (TOML subset parser, then the schema) on bytes
 * that are not NUL-terminated; ASan/UBSan turn any slip into a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[256] = "";

	if (config_defaults(&c))
		return 0;
	/* the contract callers rely on: a failure leaves one non-empty line */
	if (config_parse(&c, "fuzz.toml", (const char *)data, size, err,
			 sizeof(err)) &&
	    (!err[0] || strchr(err, '\n')))
		__builtin_trap();
	config_fini(&c);
	return 0;
}
