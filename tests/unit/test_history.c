/*
 * tests/unit/test_history: the history rings of PROTOCOL.md 7.3 without
 * sockets - offsets, the per-channel size, the ttl, the node-wide byte
 * cap (oldest first across channels), replay ranges at every boundary,
 * the offset variant of a frame, and the registry's fan-out of variants.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"

static struct wr_buf scratch;

/* A delivery frame of "m<i>" on @ch. */
static struct wr_msg *mk(const char *ch, unsigned i,
			 struct chan_delivery_pos *pos)
{
	char msg[32];
	struct wr_msg *m;

	snprintf(msg, sizeof(msg), "m%u", i);
	m = chan_delivery_frame(&scratch, ch, strlen(ch), msg, strlen(msg),
				NULL, pos);
	cr_assert_not_null(m);
	return m;
}

static uint64_t add(struct chan_hist *h, struct chan_ring *r, const char *ch,
		    unsigned i, int64_t now)
{
	struct chan_delivery_pos pos;
	struct wr_msg *m = mk(ch, i, &pos);
	uint64_t off = chan_ring_append(h, r, m, &pos, now);

	wr_msg_unref(&m);
	return off;
}

/* The JSON payload of a frame, NUL-terminated, in a static buffer. */
static const char *payload(const struct wr_msg *m)
{
	static char out[4096];
	unsigned l = m->data[1] & 0x7f;
	size_t hl = l == 126 ? 4 : l == 127 ? 10 : 2;

	cr_assert_lt(m->len - hl, sizeof(out));
	memcpy(out, m->data + hl, m->len - hl);
	out[m->len - hl] = '\0';
	return out;
}

struct seen {
	uint64_t offs[256];
	char texts[256][128];
	unsigned n;
	int stop_after; /* >0: return 1 after that many */
};

static int on_replay(void *arg, uint64_t off, struct wr_msg *of)
{
	struct seen *s = arg;

	cr_assert_lt(s->n, 256);
	s->offs[s->n] = off;
	snprintf(s->texts[s->n], sizeof(s->texts[0]), "%s", payload(of));
	s->n++;
	return s->stop_after && (int)s->n == s->stop_after;
}

static void on_msg(void *arg, uint64_t off, const char *json, size_t jlen)
{
	struct seen *s = arg;

	s->offs[s->n] = off;
	snprintf(s->texts[s->n], sizeof(s->texts[0]), "%.*s", (int)jlen, json);
	s->n++;
}

static const char EPOCH[] = "0123456789abcdef";

Test(history, offsets_count_from_one_even_with_history_off)
{
	struct chan_hist h;
	struct chan_ring r;
	struct chan_hist_limits lim = { 0, 1000, 1 << 20, 0 };

	chan_hist_init(&h, &lim);
	chan_ring_init(&r, EPOCH);
	cr_expect_str_eq(r.epoch, EPOCH);
	cr_expect_eq(r.last, 0);
	cr_expect(chan_ring_covers(&r, 0), "nothing missed at offset 0");
	for (unsigned i = 1; i <= 5; i++)
		cr_expect_eq(add(&h, &r, "c", i, 0), i);
	cr_expect_eq(h.entries, 0, "size 0 keeps nothing");
	cr_expect_eq(chan_ring_first(&r), 6);
	cr_expect(chan_ring_covers(&r, 5));
	cr_expect_not(chan_ring_covers(&r, 4));
	cr_expect_not(chan_ring_covers(&r, 6), "a future offset");
	chan_ring_fini(&h, &r);
}

Test(history, size_bound_keeps_the_newest)
{
	struct chan_hist h;
	struct chan_ring r;
	struct chan_hist_limits lim = { 3, 100000, 1 << 20, 0 };

	chan_hist_init(&h, &lim);
	chan_ring_init(&r, EPOCH);
	for (unsigned i = 1; i <= 10; i++)
		add(&h, &r, "c", i, i);
	cr_expect_eq(r.count, 3);
	cr_expect_eq(h.entries, 3);
	cr_expect_eq(chan_ring_first(&r), 8);
	cr_expect_eq(r.last, 10);
	/* since 7: 8, 9, 10 kept; since 6: 7 is gone */
	cr_expect(chan_ring_covers(&r, 7));
	cr_expect(chan_ring_covers(&r, 9));
	cr_expect(chan_ring_covers(&r, 10));
	cr_expect_not(chan_ring_covers(&r, 6));
	cr_expect_not(chan_ring_covers(&r, 0));
	cr_expect_not(chan_ring_covers(&r, 11));
	chan_ring_fini(&h, &r);
	cr_expect_eq(h.entries, 0);
	cr_expect_eq(h.bytes, 0);
	cr_expect_null(h.oldest);
}

Test(history, replay_ranges_at_every_boundary)
{
	struct chan_hist h;
	struct chan_ring r;
	struct chan_hist_limits lim = { 5, 100000, 1 << 20, 0 };

	chan_hist_init(&h, &lim);
	chan_ring_init(&r, EPOCH);
	for (unsigned i = 1; i <= 8; i++)
		add(&h, &r, "c", i, i);
	/* kept: 4..8; every (after, upto] with after in 2..8 */
	for (uint64_t after = 2; after <= 9; after++) {
		for (uint64_t upto = after; upto <= 9; upto++) {
			struct seen s = { 0 };
			uint64_t lo = after + 1 < 4 ? 4 : after + 1;
			uint64_t hi = upto > 8 ? 8 : upto;
			unsigned want = hi >= lo ? (unsigned)(hi - lo + 1) : 0;

			cr_expect_eq(chan_ring_replay(&h, &r, after, upto,
						      on_replay, &s),
				     0);
			cr_expect_eq(s.n, want, "(%lu, %lu]: %u, want %u",
				     (unsigned long)after, (unsigned long)upto,
				     s.n, want);
			for (unsigned k = 0; k < s.n; k++)
				cr_expect_eq(s.offs[k], lo + k);
		}
	}
	/* the frames carry their offset inside data */
	{
		struct seen s = { 0 };
		char want[128];

		chan_ring_replay(&h, &r, 6, 8, on_replay, &s);
		cr_assert_eq(s.n, 2);
		snprintf(want, sizeof(want),
			 "{\"type\":\"message\",\"data\":{\"message\":\"m7\","
			 "\"channel\":\"c\",\"offset\":7}}");
		cr_expect_str_eq(s.texts[0], want);
	}
	/* a callback stops the walk */
	{
		struct seen s = { .stop_after = 2 };

		cr_expect_eq(chan_ring_replay(&h, &r, 0, 8, on_replay, &s), 1);
		cr_expect_eq(s.n, 2);
	}
	chan_ring_fini(&h, &r);
}

Test(history, ttl_drops_old_entries)
{
	struct chan_hist h;
	struct chan_ring r;
	struct chan_hist_limits lim = { 100, 1000, 1 << 20, 0 };

	chan_hist_init(&h, &lim);
	chan_ring_init(&r, EPOCH);
	add(&h, &r, "c", 1, 0);
	add(&h, &r, "c", 2, 500);
	add(&h, &r, "c", 3, 900);
	chan_hist_expire(&h, 999);
	cr_expect_eq(r.count, 3, "nothing is 1000 ms old yet");
	chan_hist_expire(&h, 1000);
	cr_expect_eq(r.count, 2, "the first is");
	cr_expect_eq(chan_ring_first(&r), 2);
	cr_expect_not(chan_ring_covers(&r, 0));
	cr_expect(chan_ring_covers(&r, 1));
	/* an append expires too */
	add(&h, &r, "c", 4, 1900);
	cr_expect_eq(chan_ring_first(&r), 4);
	cr_expect(chan_ring_covers(&r, 3));
	cr_expect_not(chan_ring_covers(&r, 2));
	chan_hist_expire(&h, 5000);
	cr_expect_eq(r.count, 0);
	cr_expect_eq(h.bytes, 0);
	cr_expect(chan_ring_covers(&r, 4), "nothing missed");
	cr_expect_not(chan_ring_covers(&r, 3));
	chan_ring_fini(&h, &r);
}

Test(history, byte_cap_is_global_and_oldest_first)
{
	struct chan_hist h;
	struct chan_ring a, b;
	struct chan_delivery_pos pos;
	struct wr_msg *m = mk("a", 1, &pos);
	size_t each = m->len + CHAN_HIST_ENTRY_OVERHEAD;
	struct chan_hist_limits lim = { 100, 100000, 4 * each, 0 };

	wr_msg_unref(&m);
	chan_hist_init(&h, &lim);
	chan_ring_init(&a, EPOCH);
	chan_ring_init(&b, EPOCH);
	add(&h, &a, "a", 1, 1); /* a1 */
	add(&h, &b, "b", 1, 2); /* b1 */
	add(&h, &a, "a", 2, 3); /* a2 */
	add(&h, &b, "b", 2, 4); /* b2 */
	cr_expect_eq(h.entries, 4);
	cr_expect_eq(h.bytes, 4 * each);
	add(&h, &b, "b", 3, 5); /* b3: a1, the node's oldest, goes */
	cr_expect_eq(h.entries, 4);
	cr_expect_leq(h.bytes, lim.max_bytes);
	cr_expect_eq(chan_ring_first(&a), 2);
	cr_expect_eq(chan_ring_first(&b), 1);
	add(&h, &b, "b", 4, 6); /* then b1 */
	cr_expect_eq(chan_ring_first(&a), 2);
	cr_expect_eq(chan_ring_first(&b), 2);
	add(&h, &b, "b", 5, 7); /* then a2: a is empty */
	cr_expect_eq(a.count, 0);
	cr_expect_eq(b.count, 4);
	cr_expect(chan_ring_covers(&a, 2), "a missed nothing after 2");
	cr_expect_not(chan_ring_covers(&a, 1));
	/* the offset variant counts as well: the cap holds after a replay */
	{
		struct seen s = { 0 };

		chan_ring_replay(&h, &b, 1, 5, on_replay, &s);
		cr_expect_eq(s.n, 4);
		cr_expect_leq(h.bytes, lim.max_bytes);
		cr_expect_lt(b.count, 4, "the variants' bytes pushed some out");
	}
	/* one entry larger than the whole cap is not kept */
	lim.max_bytes = 10;
	chan_hist_set_limits(&h, &lim, 8);
	cr_expect_eq(h.entries, 0);
	cr_expect_eq(add(&h, &a, "a", 3, 9), 3);
	cr_expect_eq(h.entries, 0);
	cr_expect_eq(h.bytes, 0);
	chan_ring_fini(&h, &a);
	chan_ring_fini(&h, &b);
}

Test(history, smaller_size_on_reload_keeps_each_rings_newest)
{
	struct chan_hist h;
	struct chan_ring a, b;
	struct chan_hist_limits lim = { 10, 100000, 1 << 20, 0 };

	chan_hist_init(&h, &lim);
	chan_ring_init(&a, EPOCH);
	chan_ring_init(&b, EPOCH);
	for (unsigned i = 1; i <= 6; i++) {
		add(&h, &a, "a", i, i);
		add(&h, &b, "b", i, i);
	}
	lim.size = 2;
	chan_hist_set_limits(&h, &lim, 7);
	cr_expect_eq(a.count, 2);
	cr_expect_eq(b.count, 2);
	cr_expect_eq(chan_ring_first(&a), 5);
	cr_expect_eq(chan_ring_first(&b), 5);
	cr_expect_eq(h.entries, 4);
	chan_ring_fini(&h, &a);
	chan_ring_fini(&h, &b);
}

Test(history, newest_entries_oldest_first_with_their_json)
{
	struct chan_hist h;
	struct chan_ring r;
	struct chan_hist_limits lim = { 5, 100000, 1 << 20, 0 };
	struct seen s = { 0 };
	struct chan_delivery_pos pos;
	static const char tricky[] = "q\"\\ \x01 \xc3\xa9";
	struct wr_msg *m;

	chan_hist_init(&h, &lim);
	chan_ring_init(&r, EPOCH);
	for (unsigned i = 1; i <= 7; i++)
		add(&h, &r, "c", i, i);
	chan_ring_newest(&r, 3, on_msg, &s);
	cr_assert_eq(s.n, 3);
	cr_expect_eq(s.offs[0], 5);
	cr_expect_eq(s.offs[2], 7);
	cr_expect_str_eq(s.texts[0], "\"m5\"");
	s.n = 0;
	chan_ring_newest(&r, 100, on_msg, &s);
	cr_expect_eq(s.n, 5, "at most what is kept");
	s.n = 0;
	chan_ring_newest(&r, 0, on_msg, &s);
	cr_expect_eq(s.n, 0);
	/* escapes: the JSON string as the frame has it */
	m = chan_delivery_frame(&scratch, "c", 1, tricky, strlen(tricky), NULL,
				&pos);
	chan_ring_append(&h, &r, m, &pos, 8);
	wr_msg_unref(&m);
	s.n = 0;
	chan_ring_newest(&r, 1, on_msg, &s);
	cr_expect_str_eq(s.texts[0], "\"q\\\"\\\\ \\u0001 \xc3\xa9\"");
	chan_ring_fini(&h, &r);
}

Test(history, offset_variant_is_the_frame_plus_the_field)
{
	struct chan_delivery_pos pos;
	struct chan_str nonce = { "n1", 2 };
	char big[300];
	struct wr_msg *m, *o;

	m = chan_delivery_frame(&scratch, "ch", 2, "hi", 2, &nonce, &pos);
	cr_assert_not_null(m);
	cr_expect_str_eq(payload(m),
			 "{\"type\":\"message\",\"data\":{\"message\":"
			 "\"hi\",\"channel\":\"ch\"},\"nonce\":\"n1\"}");
	o = chan_offset_frame(m, pos.split, 42);
	cr_expect_str_eq(payload(o),
			 "{\"type\":\"message\",\"data\":{\"message\":"
			 "\"hi\",\"channel\":\"ch\",\"offset\":42},"
			 "\"nonce\":\"n1\"}");
	wr_msg_unref(&o);
	wr_msg_unref(&m);
	/* a payload that crosses 125 bytes with the field: a 4-byte header */
	memset(big, 'x', sizeof(big));
	m = chan_delivery_frame(&scratch, "c", 1, big, 60, NULL, &pos);
	cr_assert_eq(m->data[1], m->len - 2, "a 2-byte header");
	o = chan_offset_frame(m, pos.split, 18446744073709551615ull);
	cr_expect_eq(o->data[1], 126);
	cr_expect_eq(((size_t)o->data[2] << 8 | o->data[3]), o->len - 4);
	cr_expect(strstr(payload(o), ",\"offset\":18446744073709551615}}") !=
		  NULL);
	wr_msg_unref(&o);
	wr_msg_unref(&m);
}

/* ---- the registry's fan-out of the two variants ---- */

static void no_wake(struct chan_client *cl, void *arg)
{
	(void)cl;
	(void)arg;
}

static const struct chan_ops ops = { .wake = no_wake };

Test(history, registry_fans_out_each_variant_once)
{
	struct chan_limits lim = { 1 << 20, 16, { 10, 100000, 1 << 20, 0 } };
	struct chan_registry *reg = chan_registry_create(&lim, &ops, NULL);
	struct chan_client plain, rec, held, sender;
	struct chan_channel *ch;
	struct chan_delivery_pos pos;
	struct wr_msg *m;

	cr_assert_not_null(reg);
	chan_client_init(&plain, NULL);
	chan_client_init(&rec, NULL);
	chan_client_init(&held, NULL);
	chan_client_init(&sender, NULL);
	cr_assert_eq(chan_create(reg, "c", 1, NULL, 0, &ch), WR_OK);
	cr_expect_eq(strlen(chan_ring_of(ch)->epoch), CHAN_EPOCH_LEN);
	chan_join(reg, ch, &sender);
	chan_join(reg, ch, &plain);

	/* nobody recovering: one frame, shared, plus the ring's reference */
	m = mk("c", 1, &pos);
	cr_expect_eq(chan_publish_msg(reg, ch, m, &pos, &sender, 1), 1);
	cr_expect_eq(m->refs, 3, "caller, plain's queue, the ring");
	cr_expect_eq(chan_ring_of(ch)->last, 1);
	wr_msg_unref(&m);

	chan_join_flags(reg, ch, &rec, CHAN_SUB_RECOVER);
	chan_join_flags(reg, ch, &held, CHAN_SUB_RECOVER | CHAN_SUB_HELD);
	cr_expect_eq(chan_sub_flags(ch, &held),
		     CHAN_SUB_RECOVER | CHAN_SUB_HELD);
	m = mk("c", 2, &pos);
	cr_expect_eq(chan_publish_msg(reg, ch, m, &pos, &sender, 2), 2);
	cr_expect_eq(plain.q_len, 2);
	cr_expect_eq(held.q_len, 0, "held: nothing yet");
	cr_assert_eq(rec.q_len, 1);
	cr_expect(chan_client_peek(&plain, 1) == m, "today's frame, shared");
	cr_expect(strstr(payload(chan_client_peek(&rec, 0)), "\"offset\":2}}"));
	/* the variant is built once and kept in the ring */
	cr_expect_eq(chan_client_peek(&rec, 0)->refs, 2, "rec's queue, ring");
	wr_msg_unref(&m);
	chan_sub_set_flags(reg, ch, &held, CHAN_SUB_RECOVER);
	m = mk("c", 3, &pos);
	chan_publish_msg(reg, ch, m, &pos, &sender, 3);
	cr_expect_eq(held.q_len, 1);
	cr_expect(chan_client_peek(&held, 0) == chan_client_peek(&rec, 1),
		  "one variant for both recovering members");
	wr_msg_unref(&m);
	cr_expect_eq(chan_registry_hist(reg)->entries, 3);

	chan_client_fini(reg, &plain);
	chan_client_fini(reg, &rec);
	chan_client_fini(reg, &held);
	chan_client_fini(reg, &sender);
	cr_expect_eq(chan_registry_hist(reg)->entries, 0,
		     "the ring went with the channel");
	cr_expect_eq(chan_registry_hist(reg)->bytes, 0);
	chan_registry_destroy(reg);
}

Test(history, epochs_differ_between_channels_and_reopenings)
{
	struct chan_limits lim = { 1 << 20, 16, { 0, 1000, 1 << 20, 0 } };
	struct chan_registry *reg = chan_registry_create(&lim, &ops, NULL);
	struct chan_client c;
	struct chan_channel *ch;
	char first[CHAN_EPOCH_LEN + 1];

	chan_client_init(&c, NULL);
	chan_create(reg, "c", 1, NULL, 0, &ch);
	chan_join(reg, ch, &c);
	memcpy(first, chan_ring_of(ch)->epoch, sizeof(first));
	chan_leave(reg, ch, &c);
	chan_create(reg, "c", 1, NULL, 0, &ch);
	chan_join(reg, ch, &c);
	cr_expect_str_neq(chan_ring_of(ch)->epoch, first);
	cr_expect_eq(chan_ring_of(ch)->last, 0, "offsets start again");
	chan_client_fini(reg, &c);
	chan_registry_destroy(reg);
}

/* ---- lingering: a recovery after a dropped connection ---- */

static unsigned closed_count;

static void count_closed(struct chan_channel *ch, void *arg)
{
	(void)ch;
	(void)arg;
	closed_count++;
}

static const struct chan_ops linger_ops = { .wake = no_wake,
					    .closed = count_closed };

Test(history, a_dropped_connection_leaves_the_channel_lingering)
{
	struct chan_limits lim = { 1 << 20, 16, { 10, 100000, 1 << 20, 1000 } };
	struct chan_registry *reg = chan_registry_create(&lim, &linger_ops,
							 NULL);
	struct chan_client a, b;
	struct chan_channel *ch;
	struct chan_delivery_pos pos;
	struct wr_msg *m;
	char epoch[CHAN_EPOCH_LEN + 1];

	closed_count = 0;
	chan_client_init(&a, NULL);
	chan_client_init(&b, NULL);
	cr_assert_eq(chan_create(reg, "l", 1, NULL, 0, &ch), WR_OK);
	cr_assert_eq(chan_join(reg, ch, &a), WR_OK);
	memcpy(epoch, chan_ring_of(ch)->epoch, sizeof(epoch));
	/* the connection goes: the channel stays, with its history */
	chan_client_fini(reg, &a);
	cr_assert_eq(chan_find(reg, "l", 1), ch);
	cr_expect_eq(chan_lingering(reg), 1);
	cr_expect_eq(closed_count, 0);
	m = mk("l", 1, &pos);
	cr_expect_eq(chan_publish_msg(reg, ch, m, &pos, NULL, 5), 0);
	wr_msg_unref(&m);
	cr_expect_eq(chan_ring_of(ch)->last, 1, "kept while nobody is here");
	/* it comes back: same epoch, nothing lingers */
	chan_client_init(&a, NULL);
	cr_assert_eq(chan_join(reg, ch, &a), WR_OK);
	cr_expect_eq(chan_lingering(reg), 0);
	cr_expect_str_eq(chan_ring_of(ch)->epoch, epoch);
	/* not yet due, then due */
	chan_client_fini(reg, &a);
	chan_linger_expire(reg, wr_now_ms());
	cr_expect_eq(chan_lingering(reg), 1);
	chan_linger_expire(reg, wr_now_ms() + 1001);
	cr_expect_eq(chan_lingering(reg), 0);
	cr_expect_eq(closed_count, 1);
	cr_expect_null(chan_find(reg, "l", 1));
	/* an unsubscribe closes at once */
	cr_assert_eq(chan_create(reg, "u", 1, NULL, 0, &ch), WR_OK);
	chan_join(reg, ch, &b);
	chan_leave(reg, ch, &b);
	cr_expect_null(chan_find(reg, "u", 1));
	cr_expect_eq(closed_count, 2);
	/* history off: no lingering */
	lim.hist.size = 0;
	chan_registry_set_limits(reg, &lim);
	cr_assert_eq(chan_create(reg, "o", 1, NULL, 0, &ch), WR_OK);
	chan_join(reg, ch, &b);
	chan_client_fini(reg, &b);
	cr_expect_null(chan_find(reg, "o", 1));
	chan_client_fini(reg, &a);
	chan_registry_destroy(reg);
}
