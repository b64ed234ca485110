/*
 * node/client: one /connect session. Frames are reassembled in our own
 * buffer (lws hands us small chunks), checked (binary 1003, size 1009,
 * UTF-8 1007), decoded by channels/cmd and answered through the client's
 * own queue, so responses and deliveries leave in the order they were
 * produced. A subscribe that needs PBKDF2 pauses this client's rx until
 * the worker answers: commands are answered in order, other clients run on.
 * Authentication (7.1): a login is allocated by a successful auth only;
 * its two deadlines (auth timeout, exp + 30 s) use the wsi's lws timer.
 */
#include <string.h>
#include <sys/ioctl.h>

#include "flows.h"
#include <sys/socket.h>

#include "node.h"

static void flush_add(struct node *node, struct node_client *cl)
{
	if (lws_dll2_is_detached(&cl->flush_list))
		lws_dll2_add_head(&cl->flush_list, &node->flush);
}

static void flush_remove(struct node *node, struct node_client *cl)
{
	(void)node;
	if (!lws_dll2_is_detached(&cl->flush_list))
		lws_dll2_remove(&cl->flush_list);
}

static void wake(struct chan_client *cc, void *arg)
{
	/* not lws_callback_on_writable(): that costs a POLLOUT toggle (three
	 * epoll_ctl) and a loop pass per subscriber; the flush hook writes
	 * directly and asks for POLLOUT only when the socket is backed up */
	flush_add(arg, cc->owner);
}

/* One line about @cl: its address and the close code as fields. */
static void log_client(enum wr_log_level lvl, struct node_client *cl, int code,
		       const char *what)
{
	char a[64];
	struct wr_log_field f[] = {
		WR_LF_STR("addr", node_wsi_addr(cl->wsi, a, sizeof(a))),
		WR_LF_NUM("code", code),
		WR_LF_NUM("queued_bytes", cl->cc.q_bytes),
	};

	wr_log_fields(lvl, f, 3, "%s", what);
}

static void overflow(struct chan_client *cc, void *arg)
{
	struct node_client *cl = cc->owner;
	struct node *node = arg;

	node->ctr.slow_consumer_disconnects++;
	node->ctr.dropped_slow_consumer += cc->q_len;
	log_client(WR_LOG_INFO, cl, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		   "client: slow consumer, closing");
	node_client_close_later(cl, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				"slow consumer");
}

static void channel_closed(struct chan_channel *ch, void *arg)
{
	struct node *node = arg;

	flow_chan_closed(node->flows,
			 ch); /* 4.3: unreserve-channel to the mesh */
}

const struct chan_ops node_client_chan_ops = {
	.wake = wake,
	.overflow = overflow,
	.closed = channel_closed,
};

void node_client_close_slots(struct lws *wsi, int *code_slot,
			     const char **reason_slot, int code,
			     const char *reason)
{
	if (*code_slot)
		return; /* the first reason stands */
	*code_slot = code;
	*reason_slot = reason;
	lws_callback_on_writable(wsi);
	/* a peer that never drains its socket never becomes writeable */
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 2);
}

void node_client_close_later(struct node_client *cl, int code,
			     const char *reason)
{
	node_client_close_slots(cl->wsi, &cl->close_code, &cl->close_reason,
				code, reason);
}

unsigned node_client_drain(struct node *node, unsigned n)
{
	unsigned done = 0;

	for (struct node_client *cl = node_clients_first(node); cl && done < n;
	     cl = node_client_next(cl)) {
		if (cl->close_code || cl->peer_closing)
			continue; /* closing already: it does not count */
		/* 1012 has no name in lws 4.1's enum lws_close_status */
		node_client_close_later(cl, 1012, "service restart");
		done++;
	}
	return done;
}

int node_client_open(struct node *node, struct lws *wsi, struct node_pss *pss)
{
	struct node_client *cl = &pss->storage;

	memset(cl, 0, sizeof(*cl));
	chan_client_init(&cl->cc, cl);
	cl->node = node;
	cl->wsi = wsi;
	lws_dll2_add_head(&cl->list, &node->clients);
	node->ctr.connections_total++;
	cl->last_rx_ms = wr_now_ms();
	wr_bucket_init(&cl->sends, node->cfg->messages_burst, cl->last_rx_ms);
	/* max_clients_per_ip (7.2): refused at the upgrade, counted here */
	if (!node_wsi_peer_addr(wsi, &cl->addr) &&
	    !wr_addrtab_inc(node->per_ip, &cl->addr))
		cl->addr_set = true;
	pss->client = cl;
	/* 7.1: authenticate within timeout_ms (the wsi's own timer: nothing
	 * allocated for it) */
	if (node->cfg->auth_required)
		lws_set_timer_usecs(wsi,
				    (lws_usec_t)node->cfg->auth_timeout_ms *
					    1000);
	if (wr_log_get_level() == WR_LOG_DEBUG) {
		char a[64];
		struct wr_log_field f[] = {
			WR_LF_STR("addr", node_wsi_addr(wsi, a, sizeof(a))),
			WR_LF_NUM("clients", node->clients.count),
		};

		wr_log_fields(WR_LOG_DEBUG, f, 2, "client connected");
	}
	if (node->stopping)
		node_client_close_later(cl, LWS_CLOSE_STATUS_GOINGAWAY,
					"going away");
	return 0;
}

static void wait_drop(struct node_client *cl);
static void pw_unwatch(struct node *node, struct node_client *cl);
static void pw_watch(struct node *node, struct node_client *cl);
static void pres_drop(struct node *node, struct node_client *cl);

void node_client_close(struct node *node, struct node_pss *pss)
{
	struct node_client *cl = pss->client;

	if (!cl)
		return;
	pss->client = NULL;
	flush_remove(node, cl);
	node_client_reader_gone(node, cl->wsi);
	if (cl->job) {
		cl->job->owner = NULL; /* the worker's answer finds nobody */
		/* still queued: not derived at all (issue 10: hang-ups must
		 * not keep the worker busy) */
		if (chan_pw_cancel(node->pw, cl->job))
			node->ctr.pw_dropped++;
		pw_unwatch(node, cl);
	}
	wait_drop(cl);
	if (node->pres_asks)
		pres_drop(node, cl);
	free(cl->pw_rec);
	free(cl->rate);
	chan_client_fini(node->reg, &cl->cc);
	lws_dll2_remove(&cl->list);
	if (cl->addr_set) /* the slot is free at once (7.5.6) */
		wr_addrtab_dec(node->per_ip, &cl->addr);
	node_rx_fini(&cl->rx);
	auth_grant_free(cl->grant);
	if (wr_log_get_level() == WR_LOG_DEBUG) {
		char a[64];
		struct wr_log_field f[] = {
			WR_LF_STR("addr", node_wsi_addr(cl->wsi, a, sizeof(a))),
			WR_LF_NUM("code", cl->close_code),
			WR_LF_NUM("clients", node->clients.count),
		};

		wr_log_fields(WR_LOG_DEBUG, f, 3, "client closed");
	}
	/* cl is pss->storage: lws frees it with the wsi */
}

/* Queues a response frame on @cl. */
static void respond(struct node *node, struct node_client *cl, bool ok,
		    const char *reason, const struct chan_str *nonce)
{
	struct wr_msg *m;

	if (!ok)
		node->ctr.client_errors++;
	wr_buf_reset(&node->scratch);
	chan_response_json(&node->scratch, ok, reason, nonce);
	if (node->scratch.oom)
		return;
	m = wr_ws_text_frame(node->scratch.p, node->scratch.len);
	if (!m)
		return;
	chan_client_push(node->reg, &cl->cc, m);
	wr_msg_unref(&m);
}

static void respond_list(struct node *node, struct node_client *cl,
			 const struct chan_str *nonce);

/* A subscribe's recover / since (7.3), kept while it waits. */
struct node_recover {
	bool has_since;
	bool epoch_ok; /* the since epoch has our epochs' length */
	uint64_t since;
	char epoch[CHAN_EPOCH_LEN];
};

static void recover_from_cmd(struct node_recover *rec,
			     const struct chan_cmd *cmd)
{
	memset(rec, 0, sizeof(*rec));
	rec->has_since = cmd->has_since;
	rec->since = cmd->since_offset;
	rec->epoch_ok = cmd->since_epoch.len == CHAN_EPOCH_LEN;
	if (rec->epoch_ok)
		memcpy(rec->epoch, cmd->since_epoch.p, CHAN_EPOCH_LEN);
}

/* chan_ring_replay's callback: one replayed frame on the client. */
static int replay_push(void *arg, uint64_t off, struct wr_msg *of)
{
	struct node_client *cl = arg;

	(void)off;
	return chan_client_push(cl->node->reg, &cl->cc, of) ? 1 : 0;
}

/*
 * Answers a recovering subscribe (7.3) and lets its deliveries flow: the
 * response with the epoch and the last offset, the replay of what was
 * missed when the since can be honoured, then - the subscription no
 * longer held - the live messages. All in this one turn of the loop, so
 * nothing comes between: no gap, no duplicate. @fresh: the client was not
 * a member before this subscribe (an existing subscription received the
 * messages live already: nothing is replayed to it).
 */
static void answer_recover(struct node *node, struct node_client *cl,
			   struct chan_channel *ch,
			   const struct node_recover *rec, bool fresh,
			   const struct chan_str *nonce)
{
	struct chan_ring *r = chan_ring_of(ch);
	struct chan_hist *h = chan_registry_hist(node->reg);
	struct wr_buf *b = &node->scratch;
	bool recovered = false;
	uint64_t last;
	struct wr_msg *m;

	chan_hist_expire(h, wr_now_ms());
	last = r->last;
	if (rec->has_since && rec->epoch_ok &&
	    !memcmp(rec->epoch, r->epoch, CHAN_EPOCH_LEN))
		recovered = fresh ? chan_ring_covers(r, rec->since)
				  : rec->since == last;
	wr_buf_reset(b);
	wr_buf_puts(b,
		    "{\"type\":\"response\",\"data\":{\"ok\":true,"
		    "\"epoch\":");
	wr_buf_json_str(b, r->epoch, CHAN_EPOCH_LEN);
	wr_buf_printf(b, ",\"offset\":%llu", (unsigned long long)last);
	if (rec->has_since)
		wr_buf_puts(b, recovered ? ",\"recovered\":true}"
					 : ",\"recovered\":false}");
	else
		wr_buf_puts(b, "}");
	if (nonce->p) {
		wr_buf_puts(b, ",\"nonce\":");
		wr_buf_json_str(b, nonce->p, nonce->len);
	}
	wr_buf_puts(b, "}");
	m = b->oom ? NULL : wr_ws_text_frame(b->p, b->len);
	if (m) {
		chan_client_push(node->reg, &cl->cc, m);
		wr_msg_unref(&m);
	}
	if (rec->has_since) {
		if (recovered)
			node->ctr.history_recovered++;
		else
			node->ctr.history_not_recovered++;
	}
	if (recovered && rec->since < last)
		chan_ring_replay(h, r, rec->since, last, replay_push, cl);
	chan_sub_set_flags(node->reg, ch, &cl->cc,
			   (chan_sub_flags(ch, &cl->cc) & ~CHAN_SUB_HELD) |
				   CHAN_SUB_RECOVER);
}

/*
 * A subscribe that makes this node a holder is answered once every
 * reachable node acknowledged the reservation (or command_timeout_ms
 * passed): from its ok on, a message sent on any node reaches it. Others
 * who join the channel meanwhile wait for the same acknowledgement. The
 * client's input stays paused while it waits, as during a PBKDF2 job.
 */
struct node_sub_wait {
	struct node_client *cl;
	struct node_resv_wait *on;
	struct node_sub_wait *next;
	bool has_rec; /* a recovering subscribe: held until answered */
	struct node_recover rec;
	bool has_nonce;
	size_t nonce_len;
	char nonce[CHAN_NONCE_MAX];
};

struct node_resv_wait {
	struct node *node;
	struct node_resv_wait *prev, *next; /* node->resv_waits */
	struct node_sub_wait *subs;
	size_t len;
	char name[CHAN_NAME_MAX + 1];
};

/* flows_ops.waiting */
static bool waiting(void *ud, const struct chan_client *cc)
{
	(void)ud;
	return lws_container_of(cc, struct node_client, cc)->wait != NULL;
}

const struct flows_ops node_client_flows_ops = { .waiting = waiting };

static struct node_resv_wait *resv_wait_find(struct node *node,
					     const struct chan_str *name)
{
	for (struct node_resv_wait *rw = node->resv_waits; rw; rw = rw->next)
		if (rw->len == name->len &&
		    !memcmp(rw->name, name->p, name->len))
			return rw;
	return NULL;
}

/* @cl waits on @rw for its answer. False on no memory. */
static bool wait_add(struct node_resv_wait *rw, struct node_client *cl,
		     const struct node_recover *rec,
		     const struct chan_str *nonce)
{
	struct node_sub_wait *w = calloc(1, sizeof(*w));

	if (!w)
		return false;
	if (rec) {
		w->has_rec = true;
		w->rec = *rec;
	}
	w->cl = cl;
	w->on = rw;
	w->has_nonce = nonce->p != NULL;
	w->nonce_len = nonce->len;
	if (nonce->p)
		memcpy(w->nonce, nonce->p, nonce->len);
	w->next = rw->subs;
	rw->subs = w;
	cl->wait = w;
	lws_rx_flow_control(cl->wsi, 0);
	return true;
}

/* A closing client stops waiting; the reservation's answer finds nobody. */
static void wait_drop(struct node_client *cl)
{
	struct node_sub_wait *w = cl->wait;

	if (!w)
		return;
	for (struct node_sub_wait **pp = &w->on->subs; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	cl->wait = NULL;
	free(w);
}

/* flow_opened_cb: the mesh answered (or the time ran out): answer them. */
static void resv_done(void *arg, bool all)
{
	struct node_resv_wait *rw = arg;
	struct node *node = rw->node;

	if (rw->prev)
		rw->prev->next = rw->next;
	else
		node->resv_waits = rw->next;
	if (rw->next)
		rw->next->prev = rw->prev;
	if (!all) {
		node->ctr.reserve_timeouts++;
		wr_warn("subscribe answered after command_timeout_ms: not every "
			"node acknowledged the channel's reservation");
	}
	while (rw->subs) {
		struct node_sub_wait *w = rw->subs;
		struct node_client *cl = w->cl;
		struct chan_str nonce = { w->has_nonce ? w->nonce : NULL,
					  w->nonce_len };
		struct chan_channel *ch = chan_find(node->reg, rw->name,
						    rw->len);
		/* a lost race (4.4) took the channel meanwhile */
		bool member = ch && chan_is_member(ch, &cl->cc);

		rw->subs = w->next;
		cl->wait = NULL;
		if (member && w->has_rec)
			answer_recover(node, cl, ch, &w->rec, true, &nonce);
		else
			respond(node, cl, member,
				member ? NULL : "invalid password", &nonce);
		lws_rx_flow_control(cl->wsi, 1);
		free(w);
	}
	free(rw);
}

/* After @cl joined @ch: answer now, or once the mesh acknowledged the
 * reservation @created started (or one still on its way). */
static void answer_ok(struct node *node, struct node_client *cl,
		      struct chan_channel *ch, const struct node_recover *rec,
		      const struct chan_str *nonce)
{
	if (rec)
		answer_recover(node, cl, ch, rec, true, nonce);
	else
		respond(node, cl, true, NULL, nonce);
}

static void answer_join(struct node *node, struct node_client *cl,
			struct chan_channel *ch, const struct chan_str *name,
			bool created, const struct node_recover *rec,
			const struct chan_str *nonce)
{
	struct node_resv_wait *rw = resv_wait_find(node, name);

	if (!created) {
		if (!rw || !wait_add(rw, cl, rec, nonce))
			answer_ok(node, cl, ch, rec, nonce);
		return;
	}
	rw = calloc(1, sizeof(*rw));
	if (!rw || !wait_add(rw, cl, rec, nonce)) {
		free(rw);
		answer_ok(node, cl, ch, rec, nonce);
		flow_chan_opened(node->flows, ch, NULL, NULL);
		return;
	}
	memcpy(rw->name, name->p, name->len);
	rw->len = name->len;
	rw->node = node;
	rw->next = node->resv_waits;
	if (rw->next)
		rw->next->prev = rw;
	node->resv_waits = rw;
	/* no link: nobody to wait for */
	if (!flow_chan_opened(node->flows, ch, resv_done, rw))
		resv_done(rw, true);
}

/* Joins @ch (creating it first when @create) and answers. */
static void join(struct node *node, struct node_client *cl,
		 const struct chan_str *name, const uint8_t *hash,
		 const struct node_recover *rec, unsigned flags,
		 const struct chan_str *nonce)
{
	const char *user = NULL;
	size_t ulen = 0;

	struct chan_channel *ch = chan_find(node->reg, name->p, name->len);
	bool created = false;
	int rc;

	if (!ch) {
		rc = chan_create(node->reg, name->p, name->len, hash,
				 wr_wall_ms(), &ch);
		if (rc) {
			respond(node, cl, false, "internal error", nonce);
			return;
		}
		created = true;
		if (wr_log_get_level() == WR_LOG_DEBUG) {
			char chn[INM_CHANNEL_MAX + 1];
			struct wr_log_field f[] = {
				WR_LF_STR("channel", chn),
			};

			snprintf(chn, sizeof(chn), "%.*s", (int)name->len,
				 name->p);
			wr_log_fields(WR_LOG_DEBUG, f, 1,
				      "channel created (%s)",
				      hash ? "password" : "open");
		}
	}
	/* a recovering subscription gets nothing until it is answered: its
	 * replay covers the wait (answer_recover) */
	if (rec)
		flags |= CHAN_SUB_RECOVER | CHAN_SUB_HELD;
	/* 7.4: an authenticated subscriber counts as its user */
	if (cl->grant)
		user = auth_grant_user(cl->grant, &ulen);
	rc = chan_join_as(node->reg, ch, &cl->cc, flags, user, ulen);
	if (rc && rc != WR_EEXIST) {
		if (created) /* an empty channel must not stay behind */
			chan_drop_empty(node->reg, ch);
		respond(node, cl, false,
			rc == WR_EFULL ? "too many subscriptions"
				       : "internal error",
			nonce);
		return;
	}
	if ((flags & CHAN_SUB_PRESENCE) && node->flows)
		flow_presence_listen(node->flows, ch);
	/* 4.2: reserve-channel to the mesh when created */
	answer_join(node, cl, ch, name, created, rec, nonce);
}

/* Compares a password hash with the channel's (@want; an open channel
 * matches no hash, @hash may then be NULL), counting the outcome. */
static bool check_hash(struct node *node, struct node_client *cl,
		       const uint8_t *want, const uint8_t *hash)
{
	if (want && wr_ct_equal(want, hash, CHAN_HASH_LEN)) {
		node->ctr.pw_ok++;
		return true;
	}
	node->ctr.pw_failed++;
	if (!cl->rate)
		cl->rate = calloc(1, sizeof(*cl->rate));
	if (cl->rate) /* no memory: the per-address count still holds */
		chan_pw_rate_fail(cl->rate, wr_now_ms());
	/* per address too: reconnecting does not reset it (7.2) */
	if (cl->addr_set)
		wr_addrfail_note(node->pw_fails, &cl->addr, wr_now_ms());
	return false;
}

static void subscribe(struct node *node, struct node_client *cl,
		      struct chan_cmd *cmd)
{
	struct chan_channel *ch = chan_find(node->reg, cmd->channel.p,
					    cmd->channel.len);
	uint8_t hash[CHAN_HASH_LEN];
	const uint8_t *want;
	struct node_recover rbuf, *rec = cmd->recover ? &rbuf : NULL;
	unsigned sflags = cmd->presence_events ? CHAN_SUB_PRESENCE : 0;
	/* open here, or anywhere on the mesh (4.2): its password rules */
	bool exists = flow_chan_lookup(node->flows, cmd->channel.p,
				       cmd->channel.len, &want);

	/* 7.5.4: after the input checks, before every state check */
	if (cl->grant && !auth_grant_may_subscribe(cl->grant, cmd->channel.p,
						   cmd->channel.len)) {
		node->ctr.permission_denied++;
		respond(node, cl, false, "permission denied", &cmd->nonce);
		return;
	}
	if (rec)
		recover_from_cmd(rec, cmd);
	if (ch && chan_is_member(ch, &cl->cc)) {
		/* events from now on; asking again changes nothing */
		if (sflags) {
			chan_sub_set_flags(node->reg, ch, &cl->cc,
					   chan_sub_flags(ch, &cl->cc) |
						   sflags);
			flow_presence_listen(node->flows, ch);
		}
		if (rec) /* from now on with offsets; nothing replayed */
			answer_recover(node, cl, ch, rec, false, &cmd->nonce);
		else
			respond(node, cl, true, NULL,
				&cmd->nonce); /* idempotent */
		return;
	}
	if (cl->cc.nsubs >= (unsigned)node->cfg->max_subscriptions) {
		respond(node, cl, false, "too many subscriptions", &cmd->nonce);
		return;
	}
	if (!cmd->password.p) {
		if (exists && want) {
			respond(node, cl, false, "invalid password",
				&cmd->nonce);
			return;
		}
		join(node, cl, &cmd->channel, NULL, rec, sflags, &cmd->nonce);
		return;
	}
	if ((cl->rate && chan_pw_rate_limited(cl->rate, wr_now_ms())) ||
	    (cl->addr_set &&
	     wr_addrfail_blocked(node->pw_fails, &cl->addr, wr_now_ms()))) {
		node->ctr.pw_rate_limited++;
		respond(node, cl, false, "rate limited", &cmd->nonce);
		return;
	}
	if (exists && !want) {
		/* a password for an open channel: a failed attempt like any */
		check_hash(node, cl, NULL, NULL);
		respond(node, cl, false, "invalid password", &cmd->nonce);
		return;
	}
	if (chan_pw_cache_get(node->pwcache, cmd->channel.p, cmd->channel.len,
			      cmd->password.p, cmd->password.len, hash)) {
		/* a match counts as "cached" alone; a mismatch (the channel
		 * was recreated) as a failed attempt */
		if (exists &&
		    !(want && wr_ct_equal(want, hash, CHAN_HASH_LEN))) {
			check_hash(node, cl, want, hash);
			respond(node, cl, false, "invalid password",
				&cmd->nonce);
			return;
		}
		node->ctr.pw_cached++;
		join(node, cl, &cmd->channel, hash, rec, sflags, &cmd->nonce);
		return;
	}

	/* the worker's queue is bounded, in total and per address: a flood
	 * of subscribes with passwords must not delay everyone's (issue 10) */
	if (node->pw_pending >= NODE_PW_QUEUE_MAX ||
	    (cl->addr_set && wr_addrtab_count(node->pw_jobs, &cl->addr) >=
				     NODE_PW_QUEUE_PER_ADDR)) {
		node->ctr.pw_rate_limited++;
		respond(node, cl, false, "rate limited", &cmd->nonce);
		return;
	}
	/* PBKDF2 off the loop; pause this client's input until it is back */
	cl->job = chan_pw_job_create(cmd->channel.p, cmd->channel.len,
				     cmd->password.p, cmd->password.len);
	if (!cl->job) {
		respond(node, cl, false, "internal error", &cmd->nonce);
		return;
	}
	if (rec) {
		cl->pw_rec = malloc(sizeof(*cl->pw_rec));
		if (!cl->pw_rec) {
			chan_pw_job_free(cl->job);
			cl->job = NULL;
			respond(node, cl, false, "internal error", &cmd->nonce);
			return;
		}
		*cl->pw_rec = *rec;
	}
	cl->job->owner = cl;
	cl->job->sub_flags = sflags;
	chan_pw_cache_key(node->pwcache, cmd->channel.p, cmd->channel.len,
			  cmd->password.p, cmd->password.len,
			  cl->job->cache_key);
	/* the nonce rides with the job: idle clients carry no 128-byte slot */
	cl->job->has_tag = cmd->nonce.p != NULL;
	cl->job->tag_len = cmd->nonce.len;
	if (cmd->nonce.p)
		memcpy(cl->job->tag, cmd->nonce.p, cmd->nonce.len);
	if (cl->addr_set && !wr_addrtab_inc(node->pw_jobs, &cl->addr)) {
		cl->job->from = cl->addr;
		cl->job->from_set = true;
	}
	node->pw_pending++;
	pw_watch(node, cl);
	chan_pw_submit(node->pw, cl->job);
	lws_rx_flow_control(cl->wsi, 0);
}

/* ---- clients paused for PBKDF2 ---- */

static void pw_watch(struct node *node, struct node_client *cl)
{
	if (node->npw_waiting < NODE_PW_QUEUE_MAX)
		node->pw_waiting[node->npw_waiting++] = cl;
}

static void pw_unwatch(struct node *node, struct node_client *cl)
{
	for (unsigned i = 0; i < node->npw_waiting; i++)
		if (node->pw_waiting[i] == cl) {
			node->pw_waiting[i] =
				node->pw_waiting[--node->npw_waiting];
			return;
		}
}

/*
 * A paused client's socket is not read, so lws does not see it hang up
 * (a FIN is only readable). Peeking tells: 0 bytes is the end. Such a
 * client is closed now, and its queued job dropped (node_client_close).
 * From the tick, over at most NODE_PW_QUEUE_MAX clients.
 */
void node_client_pw_watch(struct node *node)
{
	for (unsigned i = 0; i < node->npw_waiting; i++) {
		struct node_client *cl = node->pw_waiting[i];
		int fd = (int)lws_get_socket_fd(cl->wsi);
		char c;

		if (fd >= 0 && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
			lws_set_timeout(cl->wsi, PENDING_TIMEOUT_USER_OK,
					LWS_TO_KILL_ASYNC);
	}
}

/* The worker hashed a password: finish that client's subscribe. */
static void pw_finish(struct node *node, struct node_client *cl,
		      struct chan_pw_job *job)
{
	struct chan_str nonce = { job->has_tag ? job->tag : NULL,
				  job->tag_len };
	struct chan_str name = { job->channel, job->clen };
	const uint8_t *want;
	struct node_recover rbuf, *rec = NULL;

	cl->job = NULL;
	pw_unwatch(node, cl);
	lws_rx_flow_control(cl->wsi, 1);
	if (cl->pw_rec) {
		rbuf = *cl->pw_rec;
		rec = &rbuf;
		free(cl->pw_rec);
		cl->pw_rec = NULL;
	}
	if (job->rc) {
		respond(node, cl, false, "internal error", &nonce);
		return;
	}
	/* the channel may have appeared, vanished or changed meanwhile */
	if (flow_chan_lookup(node->flows, job->channel, job->clen, &want)) {
		if (!check_hash(node, cl, want, job->hash)) {
			respond(node, cl, false, "invalid password", &nonce);
			return;
		}
	} else {
		node->ctr.pw_ok++;
	}
	/* the worker wiped the password: the key was taken before */
	chan_pw_cache_put_key(node->pwcache, job->cache_key, job->hash);
	join(node, cl, &name, job->hash, rec, job->sub_flags, &nonce);
}

void node_client_pw_done(struct node *node)
{
	struct chan_pw_job *job = chan_pw_take_done(node->pw), *next;

	for (; job; job = next) {
		next = job->next;
		node->pw_pending--;
		if (job->from_set)
			wr_addrtab_dec(node->pw_jobs, &job->from);
		if (job->owner)
			pw_finish(node, job->owner, job);
		chan_pw_job_free(job);
	}
}

static void unsubscribe(struct node *node, struct node_client *cl,
			struct chan_cmd *cmd)
{
	struct chan_channel *ch = chan_find(node->reg, cmd->channel.p,
					    cmd->channel.len);

	if (!ch || chan_leave(node->reg, ch, &cl->cc)) {
		respond(node, cl, false, "not subscribed", &cmd->nonce);
		return;
	}
	respond(node, cl, true, NULL, &cmd->nonce);
}

static void send_msg(struct node *node, struct node_client *cl,
		     struct chan_cmd *cmd)
{
	struct chan_channel *ch = chan_find(node->reg, cmd->channel.p,
					    cmd->channel.len);
	struct chan_delivery_pos pos;
	struct wr_msg *frame;
	unsigned n;

	/* 7.5.4: after the input checks, before every state check */
	if (cl->grant && !auth_grant_may_publish(cl->grant, cmd->channel.p,
						 cmd->channel.len)) {
		node->ctr.permission_denied++;
		respond(node, cl, false, "permission denied", &cmd->nonce);
		return;
	}
	if (!ch || !chan_is_member(ch, &cl->cc)) {
		respond(node, cl, false, "not subscribed", &cmd->nonce);
		return;
	}
	/* 7.2 / 7.5.4: last, so a send refused for another reason takes no
	 * token */
	if (!wr_bucket_take(&cl->sends, node->cfg->messages_per_second,
			    node->cfg->messages_burst, wr_now_ms())) {
		node->ctr.sends_rate_limited++;
		respond(node, cl, false, "rate limited", &cmd->nonce);
		return;
	}
	/* one frame, header included, shared by every local subscriber and
	 * kept by the history (7.3) */
	frame = chan_delivery_frame(&node->scratch, cmd->channel.p,
				    cmd->channel.len, cmd->message.p,
				    cmd->message.len, &cmd->nonce, &pos);
	if (!frame) {
		respond(node, cl, false, "internal error", &cmd->nonce);
		return;
	}
	n = chan_publish_msg(node->reg, ch, frame, &pos, &cl->cc, wr_now_ms());
	wr_msg_unref(&frame);
	node->ctr.client_msgs_in++;
	node->ctr.client_msgs_out += n;
	mesh_observe_message(node->mesh, cmd->channel.p, cmd->channel.len,
			     cmd->message.len);
	respond(node, cl, true, NULL, &cmd->nonce);
	/* 3.5: to the nodes that hold the channel */
	mesh_publish(node->mesh, cmd->channel.p, cmd->channel.len,
		     cmd->message.p, cmd->message.len, &cmd->nonce);
}

/* chan_ring_newest's callback: one {"message","offset"} of the answer. */
static void history_item(void *arg, uint64_t off, const char *json, size_t jlen)
{
	struct wr_buf *b = arg;

	if (b->p[b->len - 1] != '[')
		wr_buf_puts(b, ",");
	wr_buf_puts(b, "{\"message\":");
	wr_buf_append(b, json, jlen); /* a JSON string already */
	wr_buf_printf(b, ",\"offset\":%llu}", (unsigned long long)off);
}

/* 7.3, 7.5.8: the newest limit entries of a subscribed channel. */
static void history(struct node *node, struct node_client *cl,
		    const struct chan_cmd *cmd)
{
	struct chan_channel *ch = chan_find(node->reg, cmd->channel.p,
					    cmd->channel.len);
	unsigned size = (unsigned)node->cfg->history_size, limit = size;
	struct wr_buf *b = &node->scratch;
	struct chan_ring *r;
	struct wr_msg *m;

	if (!ch || !chan_is_member(ch, &cl->cc)) {
		respond(node, cl, false, "not subscribed", &cmd->nonce);
		return;
	}
	node->ctr.history_commands++;
	if (cmd->has_limit && cmd->limit < limit)
		limit = (unsigned)cmd->limit;
	r = chan_ring_of(ch);
	chan_hist_expire(chan_registry_hist(node->reg), wr_now_ms());
	wr_buf_reset(b);
	wr_buf_puts(b,
		    "{\"type\":\"response\",\"data\":{\"ok\":true,"
		    "\"epoch\":");
	wr_buf_json_str(b, r->epoch, CHAN_EPOCH_LEN);
	wr_buf_printf(b, ",\"offset\":%llu,\"messages\":[",
		      (unsigned long long)r->last);
	chan_ring_newest(r, limit, history_item, b);
	wr_buf_puts(b, "]}");
	if (cmd->nonce.p) {
		wr_buf_puts(b, ",\"nonce\":");
		wr_buf_json_str(b, cmd->nonce.p, cmd->nonce.len);
	}
	wr_buf_puts(b, "}");
	m = b->oom ? NULL : wr_ws_text_frame(b->p, b->len);
	if (!m) {
		respond(node, cl, false, "internal error", &cmd->nonce);
		return;
	}
	chan_client_push(node->reg, &cl->cc, m);
	wr_msg_unref(&m);
}

/* ---- presence (7.4) ---- */

/* A presence command waiting for the other holders' answers. */
struct node_pres_ask {
	struct node *node;
	struct node_client *cl; /* NULL once it closed */
	struct flow_pres_ask *q;
	struct node_pres_ask *prev, *next; /* node->pres_asks */
	bool has_nonce;
	size_t nonce_len;
	char nonce[CHAN_NONCE_MAX];
};

static void pres_unlink(struct node_pres_ask *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else if (a->node->pres_asks == a)
		a->node->pres_asks = a->next;
	if (a->next)
		a->next->prev = a->prev;
	a->prev = a->next = NULL;
}

static void pres_answered(void *ud, const struct flow_pres_answer *ans)
{
	struct node_pres_ask *a = ud;
	struct node *node = a->node;
	struct wr_buf *b = &node->scratch;
	struct wr_msg *m;

	pres_unlink(a);
	if (!a->cl)
		goto out;
	wr_buf_reset(b);
	wr_buf_printf(b,
		      "{\"type\":\"response\",\"data\":{\"ok\":true,"
		      "\"clients\":%llu,\"users\":[",
		      (unsigned long long)ans->clients);
	for (unsigned i = 0; i < ans->nusers; i++) {
		if (i)
			wr_buf_puts(b, ",");
		wr_buf_json_str(b, ans->users[i], strlen(ans->users[i]));
	}
	wr_buf_printf(b, "],\"partial\":%s}", ans->partial ? "true" : "false");
	if (a->has_nonce) {
		wr_buf_puts(b, ",\"nonce\":");
		wr_buf_json_str(b, a->nonce, a->nonce_len);
	}
	wr_buf_puts(b, "}");
	m = b->oom ? NULL : wr_ws_text_frame(b->p, b->len);
	if (m) {
		chan_client_push(node->reg, &a->cl->cc, m);
		wr_msg_unref(&m);
	} else {
		struct chan_str nonce = { a->has_nonce ? a->nonce : NULL,
					  a->nonce_len };

		respond(node, a->cl, false, "internal error", &nonce);
	}
out:
	free(a);
}

/* 7.4: every subscriber of every node; asked of the other holders. */
static void presence(struct node *node, struct node_client *cl,
		     const struct chan_cmd *cmd)
{
	struct chan_channel *ch = chan_find(node->reg, cmd->channel.p,
					    cmd->channel.len);
	struct node_pres_ask *a;
	struct flow_pres_ask *q;

	if (!ch || !chan_is_member(ch, &cl->cc)) {
		respond(node, cl, false, "not subscribed", &cmd->nonce);
		return;
	}
	a = calloc(1, sizeof(*a));
	if (!a || !node->flows) {
		free(a);
		respond(node, cl, false, "internal error", &cmd->nonce);
		return;
	}
	a->node = node;
	a->cl = cl;
	a->has_nonce = cmd->nonce.p != NULL;
	a->nonce_len = cmd->nonce.len;
	if (cmd->nonce.p)
		memcpy(a->nonce, cmd->nonce.p, cmd->nonce.len);
	/* linked first: an answer at once unlinks and frees it */
	a->next = node->pres_asks;
	if (a->next)
		a->next->prev = a;
	node->pres_asks = a;
	if (flow_presence_ask(node->flows, ch, pres_answered, a, &q)) {
		pres_unlink(a);
		free(a);
		respond(node, cl, false, "internal error", &cmd->nonce);
		return;
	}
	if (q)
		a->q = q;
}

/* @cl closes: its presence commands answer nobody. */
static void pres_drop(struct node *node, struct node_client *cl)
{
	struct node_pres_ask *a = node->pres_asks, *next;

	for (; a; a = next) {
		next = a->next;
		if (a->cl != cl)
			continue;
		a->cl = NULL;
		flow_presence_forget(a->q);
		pres_unlink(a);
		free(a);
	}
}

struct list_ctx {
	struct chan_str *names;
	unsigned n;
};

static void collect(struct chan_channel *ch, void *arg)
{
	struct list_ctx *lc = arg;

	lc->names[lc->n].p = chan_name(ch, &lc->names[lc->n].len);
	lc->n++;
}

static void collect_reserved(const struct chan_resv_entry *e, void *arg)
{
	struct list_ctx *lc = arg;

	lc->names[lc->n].p = chan_resv_name(e, &lc->names[lc->n].len);
	lc->n++;
}

static int cmp_names(const void *a, const void *b)
{
	const struct chan_str *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->p, y->p, n);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static void respond_list(struct node *node, struct node_client *cl,
			 const struct chan_str *nonce)
{
	struct chan_registry_stats st;
	struct list_ctx lc = { 0 };
	struct wr_buf *b = &node->scratch;
	struct wr_msg *m;
	unsigned total, listed = 0;
	bool truncated = false;

	/* 4.1: the union of active and reserved channels */
	chan_registry_stats(node->reg, &st);
	total = st.channels + chan_resv_count(flows_resv(node->flows));
	lc.names = malloc((total ? total : 1) * sizeof(*lc.names));
	if (!lc.names) {
		respond(node, cl, false, "internal error", nonce);
		return;
	}
	chan_foreach(node->reg, collect, &lc);
	chan_resv_foreach(flows_resv(node->flows), collect_reserved, &lc);
	/* byte order, which is code point order for UTF-8 */
	qsort(lc.names, lc.n, sizeof(*lc.names), cmp_names);
	wr_buf_reset(b);
	wr_buf_puts(b,
		    "{\"type\":\"response\",\"data\":{\"ok\":true,\"channels\":[");
	for (unsigned i = 0; i < lc.n; i++) {
		if (i && !cmp_names(&lc.names[i - 1], &lc.names[i]))
			continue; /* in both lists */
		/* [limits] max_list: the first names, and says so */
		if (listed == (unsigned)node->cfg->max_list) {
			truncated = true;
			break;
		}
		if (listed++)
			wr_buf_puts(b, ",");
		wr_buf_json_str(b, lc.names[i].p, lc.names[i].len);
	}
	wr_buf_puts(b, truncated ? "],\"truncated\":true}" : "]}");
	if (nonce->p) {
		wr_buf_puts(b, ",\"nonce\":");
		wr_buf_json_str(b, nonce->p, nonce->len);
	}
	wr_buf_puts(b, "}");
	free(lc.names);
	m = b->oom ? NULL : wr_ws_text_frame(b->p, b->len);
	if (!m)
		return;
	chan_client_push(node->reg, &cl->cc, m);
	wr_msg_unref(&m);
}

/* exp + 30 s (7.5.1), in wall milliseconds */
static int64_t expiry_ms(const struct auth_grant *g)
{
	return (auth_grant_exp(g) + AUTH_SKEW_S) * 1000;
}

/* Arms the wsi's timer for the login's end (replacing the auth deadline
 * or the previous token's end). */
static void arm_expiry(struct node_client *cl)
{
	int64_t left = expiry_ms(cl->grant) - wr_wall_ms();

	if (left < 1)
		left = 1;
	if (left > 86400000)
		left = 86400000; /* far away: look again in a day */
	lws_set_timer_usecs(cl->wsi, (lws_usec_t)left * 1000 + 1000);
}

void node_client_timer(struct node *node, struct node_client *cl)
{
	if (cl->close_code || cl->peer_closing)
		return;
	if (cl->grant) {
		if (wr_wall_ms() < expiry_ms(cl->grant)) {
			arm_expiry(cl); /* early, or the clock moved */
			return;
		}
		wr_debug("client %p: token expired, closing", (void *)cl);
		node->ctr.auth_closes_expired++;
		node_client_close_later(cl, 4401, "token expired");
		return;
	}
	if (node->cfg->auth_required) {
		wr_debug("client %p: not authenticated in time, closing",
			 (void *)cl);
		node->ctr.auth_closes_unauthorized++;
		node_client_close_later(cl, 4401, "unauthorized");
	}
}

/* 7.1: verifies the token; a refresh must keep the user, and a failed
 * one leaves the login as it was. Never logs the token. */
static void authenticate(struct node *node, struct node_client *cl,
			 const struct chan_cmd *cmd)
{
	struct auth_grant *g = NULL;
	/* seconds rounded up: "exp passed more than 30 s ago" to the ms */
	int64_t now_s = (wr_wall_ms() + 999) / 1000;
	const char *reason = auth_verify(node->auth, cmd->token.p,
					 cmd->token.len, now_s, &g);
	struct wr_buf *b = &node->scratch;
	const char *user;
	size_t ulen, olen;
	struct wr_msg *m;

	if (!reason && cl->grant) {
		const char *old = auth_grant_user(cl->grant, &olen);

		user = auth_grant_user(g, &ulen);
		if (ulen != olen || memcmp(user, old, ulen)) {
			reason = AUTH_INVALID; /* another user: a new login */
			auth_grant_free(g);
		}
	}
	if (reason) {
		if (!strcmp(reason, AUTH_EXPIRED))
			node->ctr.auth_expired++;
		else
			node->ctr.auth_invalid++;
		respond(node, cl, false, reason, &cmd->nonce);
		return;
	}
	node->ctr.auth_ok++;
	auth_grant_free(cl->grant);
	cl->grant = g;
	arm_expiry(cl);
	user = auth_grant_user(g, &ulen);
	wr_buf_reset(b);
	wr_buf_puts(b,
		    "{\"type\":\"response\",\"data\":{\"ok\":true,\"user\":");
	wr_buf_json_str(b, user, ulen);
	wr_buf_printf(b, ",\"expires\":%lld}", (long long)auth_grant_exp(g));
	if (cmd->nonce.p) {
		wr_buf_puts(b, ",\"nonce\":");
		wr_buf_json_str(b, cmd->nonce.p, cmd->nonce.len);
	}
	wr_buf_puts(b, "}");
	m = b->oom ? NULL : wr_ws_text_frame(b->p, b->len);
	if (!m)
		return;
	chan_client_push(node->reg, &cl->cc, m);
	wr_msg_unref(&m);
}

static void dispatch(struct node *node, struct node_client *cl, const char *buf,
		     size_t len)
{
	struct chan_cmd cmd;
	const char *reason;

	reason = chan_cmd_decode(&cmd, buf, len,
				 (size_t)node->cfg->max_message_bytes);
	if (reason) {
		respond(node, cl, false, reason, &cmd.nonce);
		goto out;
	}
	/* 7.5.5: the input checks above answer first; then, with
	 * [auth] required, nothing but auth before a login */
	if (cmd.type != CHAN_CMD_AUTH && !cl->grant &&
	    node->cfg->auth_required) {
		respond(node, cl, false, "not authenticated", &cmd.nonce);
		goto out;
	}
	switch (cmd.type) {
	case CHAN_CMD_AUTH:
		authenticate(node, cl, &cmd);
		break;
	case CHAN_CMD_SUBSCRIBE:
		subscribe(node, cl, &cmd);
		break;
	case CHAN_CMD_UNSUBSCRIBE:
		unsubscribe(node, cl, &cmd);
		break;
	case CHAN_CMD_LIST:
		respond_list(node, cl, &cmd.nonce);
		break;
	case CHAN_CMD_SEND:
		send_msg(node, cl, &cmd);
		break;
	case CHAN_CMD_HISTORY:
		history(node, cl, &cmd);
		break;
	case CHAN_CMD_PRESENCE:
		presence(node, cl, &cmd);
		break;
	}
out:
	chan_cmd_fini(&cmd);
}

/* Closes from inside a callback with @code: lws sends the close frame. */
static int close_now(struct node *node, struct node_client *cl, int code,
		     const char *reason)
{
	node->ctr.protocol_closes++;
	lws_close_reason(cl->wsi, (enum lws_close_status)code,
			 (unsigned char *)reason, strlen(reason));
	return -1;
}

int node_client_receive(struct node *node, struct node_client *cl,
			const void *in, size_t len)
{
	const char *msg;
	size_t mlen;

	if (cl->close_code || cl->cc.overflowed)
		return 0; /* closing: ignore input */
	node->ctr.client_bytes_in += len;
	cl->last_rx_ms = wr_now_ms();
	node_client_reader(node, cl->wsi, &cl->read_pass);
	switch (node_rx_add(&cl->rx, cl->wsi, in, len,
			    2 * (size_t)node->cfg->max_message_bytes, &msg,
			    &mlen)) {
	case NODE_RX_MORE:
		return 0;
	case NODE_RX_BINARY:
		return close_now(node, cl, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
				 "binary frames not accepted");
	case NODE_RX_TOO_LARGE:
		return close_now(node, cl, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 "frame too large");
	case NODE_RX_NOMEM:
		return -1;
	case NODE_RX_DONE:
		break;
	}
	if (!wr_utf8_valid(msg, mlen))
		return close_now(node, cl, LWS_CLOSE_STATUS_INVALID_PAYLOAD,
				 "invalid utf-8");
	dispatch(node, cl, msg, mlen);
	node_rx_handled(&cl->rx);
	return 0;
}

/* Writes what @cl has queued, coalesced into one write of at most
 * NODE_WRITE_COALESCE bytes; lws keeps whatever the kernel does not take. */
static int write_queued(struct node *node, struct node_client *cl)
{
	struct chan_client *cc = &cl->cc;
	struct wr_msg *m = chan_client_peek(cc, 0);
	size_t n = 0;
	int w;

	if (!m)
		return 0; /* spurious */
	if (cc->q_len == 1 || m->len - cc->q_off >= NODE_WRITE_COALESCE) {
		/* one frame: write it straight from the shared buffer */
		n = m->len - cc->q_off;
		w = lws_write(cl->wsi, m->data + cc->q_off, n, LWS_WRITE_RAW);
	} else {
		/* several: one write; the scratch is free again after, as lws
		 * copies what it could not send */
		unsigned char *p = node->wbuf + LWS_PRE;

		for (unsigned i = 0; (m = chan_client_peek(cc, i)); i++) {
			size_t off = i ? 0 : cc->q_off, k = m->len - off;

			if (n + k > NODE_WRITE_COALESCE)
				break;
			memcpy(p + n, m->data + off, k);
			n += k;
		}
		w = lws_write(cl->wsi, p, n, LWS_WRITE_RAW);
	}
	if (w < 0)
		return -1;
	node->ctr.client_bytes_out += n;
	chan_client_consume(cc, n);
	if (cc->q_len)
		lws_callback_on_writable(cl->wsi);
	return 0;
}

/*
 * Writes a close frame ourselves, for the caller to hang up after. lws
 * 4.1.6 on a uv loop drops the socket without sending the close it was
 * asked for with lws_close_reason() from WRITEABLE (clients saw 1006); the
 * frame written RAW reaches the peer before the FIN. Server side only
 * (unmasked). Always returns -1, what the WRITEABLE callback returns.
 */
int node_client_close_raw(struct node *node, struct lws *wsi, int code,
			  const char *reason)
{
	unsigned char *f = node->wbuf + LWS_PRE;
	size_t rlen = strlen(reason);

	if (rlen > 123)
		rlen = 123;
	f[0] = 0x88; /* FIN | close */
	f[1] = (unsigned char)(2 + rlen);
	f[2] = (unsigned char)(code >> 8);
	f[3] = (unsigned char)code;
	memcpy(f + 4, reason, rlen);
	lws_write(wsi, f, 4 + rlen, LWS_WRITE_RAW);
	return -1;
}

int node_client_writeable(struct node *node, struct node_client *cl)
{
	if (cl->close_code)
		return node_client_close_raw(node, cl->wsi, cl->close_code,
					     cl->close_reason);
	if (cl->peer_closing)
		return 0;
	return write_queued(node, cl);
}

void node_client_keepalive(struct node *node)
{
	/* FIN | ping, with a payload: lws 4.1 does not pass an empty pong to
	 * LWS_CALLBACK_RECEIVE_PONG */
	static const unsigned char ping[6] = { 0x89, 0x04, 'w', 'r', 'k', 'a' };
	int64_t now = wr_now_ms(), every = node->cfg->client_ping_interval_ms;
	unsigned char *f = node->wbuf + LWS_PRE;

	/* one O(clients) sweep per interval, nothing per message */
	for (struct node_client *cl = node_clients_first(node); cl;
	     cl = node_client_next(cl)) {
		if (cl->close_code || cl->peer_closing)
			continue;
		if (cl->ping_sent_ms) {
			if (cl->last_rx_ms >= cl->ping_sent_ms) {
				cl->ping_sent_ms = 0;
			} else {
				log_client(WR_LOG_INFO, cl,
					   LWS_CLOSE_STATUS_GOINGAWAY,
					   "client: no answer to ping, dropping");
				node_client_close_later(cl,
							LWS_CLOSE_STATUS_GOINGAWAY,
							"ping timeout");
				continue;
			}
		}
		/* idle for an interval (the timer may fire a little early) */
		if (now - cl->last_rx_ms < every - every / 8)
			continue;
		/* a backed-up socket is not idle: the queue bound handles it */
		if (lws_partial_buffered(cl->wsi) || cl->cc.q_len)
			continue;
		memcpy(f, ping, sizeof(ping));
		if (lws_write(cl->wsi, f, sizeof(ping), LWS_WRITE_RAW) < 0)
			continue;
		cl->ping_sent_ms = now;
	}
}

void node_client_reader(struct node *node, struct lws *wsi, uint64_t *read_pass)
{
	if (*read_pass != node->pass + 1 && node->nreaders < NODE_MAX_READERS) {
		*read_pass = node->pass + 1;
		node->readers[node->nreaders++] = wsi;
	}
}

void node_client_reader_gone(struct node *node, struct lws *wsi)
{
	for (unsigned i = 0; i < node->nreaders; i++)
		if (node->readers[i] == wsi)
			node->readers[i] = NULL;
}

/* True when a client or node link that sent us data this pass has more
 * waiting: its next messages will want the same subscribers. */
static bool input_pending(struct node *node)
{
	for (unsigned i = 0; i < node->nreaders; i++) {
		struct lws *wsi = node->readers[i];
		int n = 0;

		if (wsi && !ioctl(lws_get_socket_fd(wsi), FIONREAD, &n) &&
		    n > 0)
			return true;
	}
	return false;
}

void node_client_flush(struct node *node)
{
	struct node_client *cl;
	bool more = (node->flush.count || node_peers_flush_due(node)) &&
		    input_pending(node);

	node->pass++;
	node->nreaders = 0;
	if (more && node->deferred < NODE_MAX_DEFER_PASSES) {
		node->deferred++;
		return;
	}
	node->deferred = 0;
	/* links first: the next nodes start on their share at once */
	node_peers_flush(node);

	while ((cl = node->flush.head
			     ? lws_container_of(node->flush.head,
						struct node_client, flush_list)
			     : NULL)) {
		flush_remove(node, cl);
		if (cl->peer_closing)
			continue;
		/* lws still holds part of an earlier write, or we are closing:
		 * only a WRITEABLE may write now */
		if (cl->close_code || lws_partial_buffered(cl->wsi)) {
			lws_callback_on_writable(cl->wsi);
			continue;
		}
		if (write_queued(node, cl) < 0)
			node_client_close_later(
				cl, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
				"write failed");
	}
}
