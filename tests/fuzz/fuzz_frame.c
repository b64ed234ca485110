/*
 * tests/fuzz/fuzz_frame: the /connect frame decoder on arbitrary input, as
 * the node calls it (valid UTF-8 only, 1007 closes the rest), then the two
 * frames built from what it decoded. Invariants: no crash, no leak, and
 * every frame written back is a JSON object of valid UTF-8.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"

#define MAX_MESSAGE 65536

static void check_object(const struct wr_buf *b)
{
	if (b->oom)
		return;
	if (b->len < 2 || b->p[0] != '{' || b->p[b->len - 1] != '}' ||
	    b->p[b->len] != '\0' || memchr(b->p, '\0', b->len) ||
	    !wr_utf8_valid(b->p, b->len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chan_cmd cmd;
	struct wr_buf b;
	const char *reason;

	if (!wr_utf8_valid(data, size))
		return 0;
	reason = chan_cmd_decode(&cmd, (const char *)data, size, MAX_MESSAGE);
	wr_buf_init(&b);
	/* the response goes out whatever the outcome */
	chan_response_json(&b, reason == NULL, reason, &cmd.nonce);
	check_object(&b);
	if (!reason) {
		/* decoded strings are valid UTF-8 and within their limits */
		if (cmd.nonce.p && (cmd.nonce.len > CHAN_NONCE_MAX ||
				    !wr_utf8_valid(cmd.nonce.p, cmd.nonce.len)))
			abort();
		if (cmd.type != CHAN_CMD_LIST &&
		    !chan_name_valid(cmd.channel.p, cmd.channel.len))
			abort();
		if (cmd.type == CHAN_CMD_SEND) {
			if (!cmd.message.p || cmd.message.len > MAX_MESSAGE ||
			    !wr_utf8_valid(cmd.message.p, cmd.message.len))
				abort();
			wr_buf_reset(&b);
			chan_delivery_json(&b, cmd.channel.p, cmd.channel.len,
					   cmd.message.p, cmd.message.len,
					   &cmd.nonce);
			check_object(&b);
		}
		if (cmd.password.p &&
		    (cmd.password.len == 0 ||
		     !wr_utf8_valid(cmd.password.p, cmd.password.len)))
			abort();
	} else if (!strcmp(reason, "invalid json") && cmd.nonce.p) {
		abort(); /* never a nonce with invalid json */
	}
	wr_buf_fini(&b);
	chan_cmd_fini(&cmd);
	return 0;
}
