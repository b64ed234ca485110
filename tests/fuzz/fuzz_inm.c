/*
 * tests/fuzz/fuzz_inm: the INM packet decoder on arbitrary frames, as the
 * node calls it (valid UTF-8 only). Invariants: no crash, no leak; the
 * fast and the generic decoder agree on the verdict and the fields; a
 * decoded packet encodes to valid UTF-8 JSON that decodes again to the
 * same fields, and encoding that copy gives the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inm_packet a, c;
	struct wr_buf b1, b2;
	enum inm_drop rc;

	if (!wr_utf8_valid(data, size))
		return 0;
	wr_buf_init(&b1);
	wr_buf_init(&b2);
	inm_packet_init(&c);
	rc = inm_packet_decode(&a, (const char *)data, size);
	if (strcmp(inm_drop_name(rc), "?") == 0)
		abort();
	{
		/* the same packet: the same bytes once encoded (cJSON_Compare
		 * cannot tell objects with duplicate keys apart) */
		struct inm_packet g;
		enum inm_drop rg =
			inm_packet_decode_generic(&g, (const char *)data, size);

		if (rg != rc)
			abort();
		if (rc == INM_DROP_NONE &&
		    inm_packet_encode(&a, &b1) == WR_OK &&
		    inm_packet_encode(&g, &b2) == WR_OK &&
		    (b1.len != b2.len || memcmp(b1.p, b2.p, b1.len)))
			abort();
		wr_buf_reset(&b1);
		wr_buf_reset(&b2);
		inm_packet_fini(&g);
	}
	if (rc != INM_DROP_NONE) {
		if (a.data)
			abort();
		goto out;
	}
	if (inm_packet_encode(&a, &b1) != WR_OK)
		goto out; /* out of memory: nothing to check */
	if (!wr_utf8_valid(b1.p, b1.len) || memchr(b1.p, '\0', b1.len))
		abort();
	rc = inm_packet_decode(&c, b1.p, b1.len);
	if (rc != INM_DROP_NONE)
		abort();
	if (strcmp(a.source, c.source) ||
	    strcmp(a.destination, c.destination) || a.type != c.type ||
	    strcmp(a.nonce, c.nonce) || a.ttl != c.ttl)
		abort();
	if (inm_packet_encode(&c, &b2) != WR_OK)
		goto out;
	if (b1.len != b2.len || memcmp(b1.p, b2.p, b1.len))
		abort();
	if (a.type == INM_MESSAGE) {
		const char *ch, *msg, *cn;
		unsigned char *bin;
		size_t n;

		if (inm_message_fields(&a, &ch, &msg, &cn) != WR_OK)
			abort();
		/* decode accepted it, so the payload must decode */
		if (inm_base64_decode(msg, strlen(msg), &bin, &n) == WR_EINVAL)
			abort();
		free(bin);
	}
out:
	inm_packet_fini(&a);
	inm_packet_fini(&c);
	wr_buf_fini(&b1);
	wr_buf_fini(&b2);
	return 0;
}
