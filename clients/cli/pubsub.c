/*
 * clients/cli/pubsub: `sub`, `pub` and `list` over WS /connect
 * (PROTOCOL.md 2). Frames are built with wr_buf_json_str from checked
 * UTF-8 and lengths, so a message may hold any text; answers are decoded
 * with cJSON into struct frame and the tree deleted at once. A connection
 * answers its commands in order, so pub keeps up to PUB_WINDOW sends in
 * flight and matches each answer with the oldest nonce it is owed.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "wr.h"

#define PUB_WINDOW 32
#define SUB_NONCE "sub"
#define LIST_NONCE "list"
#define AUTH_NONCE "auth"
#define HISTORY_NONCE "history"
#define PRESENCE_NONCE "presence"

/* frame_decode's printing: data.channels (list), data.messages (history),
 * data.users (presence) */
#define PRINT_CHANNELS 1u
#define PRINT_HISTORY 2u
#define PRINT_USERS 4u

enum frame_kind {
	FRAME_OTHER,
	FRAME_RESPONSE,
	FRAME_MESSAGE,
	FRAME_UNSUBSCRIBED
};

/* One decoded server frame; strings are ours (frame_fini frees them). */
struct frame {
	enum frame_kind kind;
	bool ok; /* response: data.ok */
	bool has_nonce;
	char nonce[136]; /* the protocol allows 128 bytes */
	char *reason;    /* response, unsubscribed: or NULL */
	char *channel;   /* message, unsubscribed: or NULL */
	char *message;   /* message: or NULL */
	/* PROTOCOL.md 7.3: a response's epoch, offset and recovered, a
	 * message's offset */
	char *epoch;
	bool has_offset;
	uint64_t offset;
	int recovered; /* -1 absent, 0 false, 1 true */
	/* PROTOCOL.md 7.4: a presence answer's clients and partial */
	double clients;
	bool partial;
};

static void frame_fini(struct frame *f)
{
	free(f->reason);
	free(f->channel);
	free(f->message);
	free(f->epoch);
	memset(f, 0, sizeof(*f));
}

static char *dup_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

/* data.offset: a whole number (cJSON keeps it as a double: exact below
 * 2^53, which offsets stay under). */
static void take_offset(struct frame *f, const cJSON *data)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(data, "offset");

	if (cJSON_IsNumber(o) && o->valuedouble >= 0) {
		f->has_offset = true;
		f->offset = (uint64_t)o->valuedouble;
	}
}

/* Prints data.messages[].message of a history answer, one per line. */
static void print_history(const cJSON *data)
{
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(data, "messages");
	const cJSON *m;

	if (!cJSON_IsArray(msgs))
		return;
	cJSON_ArrayForEach(m, msgs) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "message");

		if (cJSON_IsString(t))
			printf("%s\n", t->valuestring);
	}
}

/* Decodes @text; an unreadable frame is FRAME_OTHER. @print: a successful
 * response's data.channels (PRINT_CHANNELS) or data.messages
 * (PRINT_HISTORY) are printed to stdout, one per line (no copy of the
 * array outlives the tree). */
static void frame_decode(struct frame *f, const char *text, size_t len,
			 unsigned print)
{
	cJSON *root = cJSON_ParseWithLength(text, len);
	const cJSON *type, *data, *nonce;

	memset(f, 0, sizeof(*f));
	if (!cJSON_IsObject(root))
		goto out;
	type = cJSON_GetObjectItemCaseSensitive(root, "type");
	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	nonce = cJSON_GetObjectItemCaseSensitive(root, "nonce");
	if (!cJSON_IsString(type) || !cJSON_IsObject(data))
		goto out;
	if (cJSON_IsString(nonce)) {
		f->has_nonce = true;
		snprintf(f->nonce, sizeof(f->nonce), "%s", nonce->valuestring);
	}
	if (!strcmp(type->valuestring, "response")) {
		const cJSON *ok = cJSON_GetObjectItemCaseSensitive(data, "ok");
		const cJSON *chans =
			cJSON_GetObjectItemCaseSensitive(data, "channels");
		const cJSON *ch;

		const cJSON *rec =
			cJSON_GetObjectItemCaseSensitive(data, "recovered");

		f->kind = FRAME_RESPONSE;
		f->ok = cJSON_IsTrue(ok);
		f->reason = dup_str(data, "reason");
		f->epoch = dup_str(data, "epoch");
		take_offset(f, data);
		f->recovered = cJSON_IsBool(rec) ? cJSON_IsTrue(rec) : -1;
		if ((print & PRINT_HISTORY) && f->ok)
			print_history(data);
		{
			const cJSON *n =
				cJSON_GetObjectItemCaseSensitive(data,
								 "clients");
			const cJSON *u =
				cJSON_GetObjectItemCaseSensitive(data, "users");
			const cJSON *e;

			f->clients = cJSON_IsNumber(n) ? n->valuedouble : 0;
			f->partial = cJSON_IsTrue(
				cJSON_GetObjectItemCaseSensitive(data,
								 "partial"));
			if ((print & PRINT_USERS) && f->ok && cJSON_IsArray(u))
				cJSON_ArrayForEach(e, u)
					if (cJSON_IsString(e))
						printf("%s\n", e->valuestring);
		}
		if ((print & PRINT_CHANNELS) && f->ok && cJSON_IsArray(chans))
			cJSON_ArrayForEach(ch, chans)
				if (cJSON_IsString(ch))
					printf("%s\n", ch->valuestring);
	} else if (!strcmp(type->valuestring, "message")) {
		f->kind = FRAME_MESSAGE;
		f->channel = dup_str(data, "channel");
		f->message = dup_str(data, "message");
		take_offset(f, data);
		if (!f->channel || !f->message)
			f->kind = FRAME_OTHER;
	} else if (!strcmp(type->valuestring, "unsubscribed")) {
		f->kind = FRAME_UNSUBSCRIBED;
		f->channel = dup_str(data, "channel");
		f->reason = dup_str(data, "reason");
	}
out:
	cJSON_Delete(root);
}

/* ---- frames we send ---- */

static int send_subscribe(struct cli_conn *c, const struct cli_args *a,
			  const char *topic, const char *password)
{
	struct wr_buf b;
	int rc;

	wr_buf_init(&b);
	wr_buf_puts(&b, "{\"command\":\"subscribe\",\"data\":{\"topic\":");
	wr_buf_json_str(&b, topic, strlen(topic));
	if (password) {
		wr_buf_puts(&b, ",\"password\":");
		wr_buf_json_str(&b, password, strlen(password));
	}
	if (a->since_epoch) {
		wr_buf_puts(&b, ",\"since\":{\"epoch\":");
		wr_buf_json_str(&b, a->since_epoch, strlen(a->since_epoch));
		wr_buf_printf(&b, ",\"offset\":%" PRIu64 "}", a->since_offset);
	} else if (a->recover) {
		wr_buf_puts(&b, ",\"recover\":true");
	}
	wr_buf_puts(&b, "},\"nonce\":\"" SUB_NONCE "\"}");
	rc = b.oom ? WR_ENOMEM : cli_ws_send(c, b.p, b.len);
	wr_buf_fini(&b);
	return rc;
}

static int send_message(struct cli_conn *c, const char *channel,
			const char *msg, size_t len, uint64_t nonce)
{
	struct wr_buf b;
	int rc;

	wr_buf_init(&b);
	wr_buf_puts(&b, "{\"command\":\"send\",\"data\":{\"channel\":");
	wr_buf_json_str(&b, channel, strlen(channel));
	wr_buf_puts(&b, ",\"message\":");
	wr_buf_json_str(&b, msg, len);
	wr_buf_printf(&b, "},\"nonce\":\"%" PRIu64 "\"}", nonce);
	rc = b.oom ? WR_ENOMEM : cli_ws_send(c, b.p, b.len);
	wr_buf_fini(&b);
	return rc;
}

/* ---- shared steps; each returns 0 or the exit status, reported ---- */

static int wait_failed(const struct cli_args *a, struct cli_conn *c,
		       enum cli_wait w)
{
	if (w == CLI_WAIT_STOPPED)
		cli_err(a, "interrupted");
	else
		cli_err(a, "%s", cli_conn_error(c));
	return CLI_EXIT_CONN;
}

static int await_response(const struct cli_args *a, struct cli_conn *c,
			  const char *nonce, struct frame *f, unsigned print);

/* --token: auth before anything else (PROTOCOL.md 7.1). */
static int authenticate(const struct cli_args *a, struct cli_conn *c)
{
	struct wr_buf b;
	struct frame f;
	int rc;

	wr_buf_init(&b);
	wr_buf_puts(&b, "{\"command\":\"auth\",\"data\":{\"token\":");
	wr_buf_json_str(&b, a->token, strlen(a->token));
	wr_buf_puts(&b, "},\"nonce\":\"" AUTH_NONCE "\"}");
	rc = b.oom ? WR_ENOMEM : cli_ws_send(c, b.p, b.len);
	wr_buf_fini(&b);
	if (rc) {
		cli_err(a, "out of memory");
		return CLI_EXIT_CONN;
	}
	rc = await_response(a, c, AUTH_NONCE, &f, 0);
	if (rc)
		return rc;
	if (!f.ok) {
		cli_err(a, "authentication refused: %s",
			f.reason ? f.reason : "no reason given");
		rc = CLI_EXIT_REFUSED;
	}
	frame_fini(&f);
	return rc;
}

static int open_conn(const struct cli_args *a, struct cli_conn **out)
{
	struct cli_conn_opts o = { .url = &a->url,
				   .insecure = a->insecure,
				   .cafile = a->cafile };
	struct cli_conn *c = cli_conn_create(&o);
	enum cli_wait w;

	*out = c;
	if (!c) {
		cli_err(a, "out of memory");
		return CLI_EXIT_CONN;
	}
	w = cli_ws_connect(c, wr_now_ms() + a->timeout_ms);
	if (w != CLI_WAIT_DONE)
		return wait_failed(a, c, w);
	return a->token ? authenticate(a, c) : 0;
}

/* Waits for the response carrying @nonce, skipping deliveries. */
static int await_response(const struct cli_args *a, struct cli_conn *c,
			  const char *nonce, struct frame *f, unsigned print)
{
	int64_t deadline = wr_now_ms() + a->timeout_ms;
	const char *msg;
	size_t len;

	for (;;) {
		enum cli_wait w = cli_ws_recv(c, deadline, &msg, &len);

		if (w != CLI_WAIT_DONE)
			return wait_failed(a, c, w);
		frame_decode(f, msg, len, print);
		if (f->kind == FRAME_RESPONSE) {
			if (f->has_nonce && !strcmp(f->nonce, nonce))
				return 0;
			/* the server could not read our command at all */
			cli_err(a, "unexpected answer from the server: %s",
				msg);
			frame_fini(f);
			return CLI_EXIT_CONN;
		}
		frame_fini(f);
	}
}

/* The position a recovering sub reached (PROTOCOL.md 7.3). */
struct position {
	char *epoch; /* NULL: none known */
	uint64_t offset;
};

/* Subscribes (sub and pub use @a's recovery options only when @pos). */
static int subscribe(const struct cli_args *a, struct cli_conn *c,
		     struct position *pos)
{
	static const struct cli_args plain;
	struct frame f;
	int rc;

	if (send_subscribe(c, pos ? a : &plain, a->channel, a->password)) {
		cli_err(a, "out of memory");
		return CLI_EXIT_CONN;
	}
	rc = await_response(a, c, SUB_NONCE, &f, 0);
	if (rc)
		return rc;
	if (!f.ok) {
		cli_err(a, "subscribing to '%s' refused: %s", a->channel,
			f.reason ? f.reason : "no reason given");
		rc = CLI_EXIT_REFUSED;
	} else if (pos && a->recover && f.epoch) {
		/* recovered: the missed messages follow and move the
		 * position one by one; else it is the node's */
		pos->epoch = f.epoch;
		f.epoch = NULL;
		pos->offset = f.recovered == 1 ? a->since_offset : f.offset;
		if (a->since_epoch && f.recovered != 1)
			fprintf(stderr,
				"wsrelay sub: not recovered: the messages after "
				"%s:%" PRIu64
				" are not all kept (another node, "
				"a restart, or past the history); going on from "
				"%s:%" PRIu64 "\n",
				a->since_epoch, a->since_offset, pos->epoch,
				pos->offset);
	}
	frame_fini(&f);
	return rc;
}

/* ---- sub ---- */

/* Prints one frame; returns -1 to go on, else the exit status. */
static int sub_frame(const struct cli_args *a, const char *msg, size_t len,
		     struct position *pos)
{
	struct frame f;
	int rc = -1;

	frame_decode(&f, msg, len, 0);
	if (f.kind == FRAME_MESSAGE && f.has_offset && pos->epoch &&
	    !strcmp(f.channel, a->channel))
		pos->offset = f.offset;
	if (a->json && f.kind != FRAME_RESPONSE) {
		fwrite(msg, 1, len, stdout);
		fputc('\n', stdout);
	} else if (f.kind == FRAME_MESSAGE && !strcmp(f.channel, a->channel)) {
		fputs(f.message, stdout);
		fputc('\n', stdout);
	}
	switch (cli_flush_stdout(a)) {
	case 1:
		rc = CLI_EXIT_OK; /* the reader went away: done, quietly */
		break;
	case -1:
		rc = CLI_EXIT_CONN;
		break;
	}
	if (rc < 0 && f.kind == FRAME_UNSUBSCRIBED && f.channel &&
	    !strcmp(f.channel, a->channel)) {
		cli_err(a, "the server removed the subscription to '%s': %s",
			a->channel, f.reason ? f.reason : "no reason given");
		rc = CLI_EXIT_REFUSED;
	}
	frame_fini(&f);
	return rc;
}

int cli_cmd_sub(const struct cli_args *a)
{
	struct cli_conn *c;
	struct position pos = { 0 };
	const char *msg;
	size_t len;
	int rc;

	rc = open_conn(a, &c);
	if (!rc)
		rc = subscribe(a, c, &pos);
	if (rc)
		goto out;
	fprintf(stderr, "wsrelay sub: subscribed to '%s' at %s\n", a->channel,
		a->url_text);
	for (rc = -1; rc < 0;) {
		enum cli_wait w = cli_ws_recv(c, -1, &msg, &len);

		if (w == CLI_WAIT_DONE)
			rc = sub_frame(a, msg, len, &pos);
		else if (w == CLI_WAIT_STOPPED)
			rc = CLI_EXIT_OK;
		else
			rc = wait_failed(a, c, w);
	}
out:
	/* SIGINT/SIGTERM is how a subscriber is meant to end */
	if (rc == CLI_EXIT_CONN && cli_stop_requested())
		rc = CLI_EXIT_OK;
	/* where a next run resumes: sub --since EPOCH:OFFSET */
	if (pos.epoch)
		fprintf(stderr, "wsrelay sub: position %s:%" PRIu64 "\n",
			pos.epoch, pos.offset);
	free(pos.epoch);
	cli_conn_destroy(c);
	return rc;
}

/* ---- pub ---- */

static int pub_one(const struct cli_args *a, struct cli_conn *c)
{
	struct frame f;
	int rc;

	if (send_message(c, a->channel, a->message, strlen(a->message), 1)) {
		cli_err(a, "out of memory");
		return CLI_EXIT_CONN;
	}
	rc = await_response(a, c, "1", &f, 0);
	if (rc)
		return rc;
	if (!f.ok) {
		cli_err(a, "message refused: %s",
			f.reason ? f.reason : "no reason given");
		rc = CLI_EXIT_REFUSED;
	}
	frame_fini(&f);
	return rc;
}

struct pub_state {
	uint64_t next_nonce; /* the next line's number, from 1 */
	uint64_t owed;       /* the oldest nonce not yet answered */
	int64_t progress_ms; /* last send into an empty window, or answer */
	int rc;              /* first failure's exit status, or 0 */
	bool reading;        /* still taking lines from stdin */
};

/* Sends lines while the window has room. */
static void pub_fill(const struct cli_args *a, struct cli_conn *c,
		     struct pub_state *s)
{
	const char *line;
	size_t len;

	while (s->reading && s->next_nonce - s->owed < PUB_WINDOW) {
		int r = cli_conn_stdin_line(c, &line, &len);

		if (r == 0)
			return;
		if (r == -1) {
			s->reading = false;
			return;
		}
		if (r == -2 || !wr_utf8_valid(line, len)) {
			cli_err(a, "line %" PRIu64 ": %s", s->next_nonce,
				r == -2 ? "longer than 16 MiB"
					: "not valid UTF-8");
			s->rc = CLI_EXIT_USAGE;
			s->reading = false;
			return;
		}
		if (s->next_nonce == s->owed)
			s->progress_ms = wr_now_ms();
		if (send_message(c, a->channel, line, len, s->next_nonce)) {
			cli_err(a, "out of memory");
			s->rc = CLI_EXIT_CONN;
			s->reading = false;
			return;
		}
		s->next_nonce++;
	}
}

/* Takes one received frame: an answer to the oldest send, or a
 * delivery from another publisher (dropped). */
static void pub_answer(const struct cli_args *a, const char *msg, size_t len,
		       struct pub_state *s)
{
	char want[24];
	struct frame f;

	frame_decode(&f, msg, len, 0);
	if (f.kind != FRAME_RESPONSE)
		goto out;
	snprintf(want, sizeof(want), "%" PRIu64, s->owed);
	if (s->owed == s->next_nonce || !f.has_nonce || strcmp(f.nonce, want)) {
		cli_err(a, "unexpected answer from the server: %s", msg);
		if (!s->rc)
			s->rc = CLI_EXIT_CONN;
		s->reading = false;
		s->owed = s->next_nonce; /* nothing more can be matched */
		goto out;
	}
	s->owed++;
	s->progress_ms = wr_now_ms();
	if (!f.ok) {
		cli_err(a, "message %s refused: %s", want,
			f.reason ? f.reason : "no reason given");
		if (!s->rc)
			s->rc = CLI_EXIT_REFUSED;
		s->reading = false; /* stop at the first refusal */
	}
out:
	frame_fini(&f);
}

static int pub_stdin(const struct cli_args *a, struct cli_conn *c)
{
	struct pub_state s = { .next_nonce = 1, .owed = 1, .reading = true };
	const char *msg;
	size_t len;

	if (cli_conn_watch_stdin(c)) {
		cli_err(a, "cannot read standard input");
		return CLI_EXIT_CONN;
	}
	for (;;) {
		bool inflight;
		enum cli_wait w;

		pub_fill(a, c, &s);
		while (cli_ws_pending(c) &&
		       cli_ws_recv(c, 0, &msg, &len) == CLI_WAIT_DONE)
			pub_answer(a, msg, len, &s);
		inflight = s.owed != s.next_nonce;
		if (!s.reading && !inflight)
			return s.rc;
		/* user input may take its time; an answer may not */
		if (s.reading && s.next_nonce - s.owed < PUB_WINDOW) {
			w = cli_conn_wait(c, inflight ? s.progress_ms +
								a->timeout_ms
						      : -1);
		} else {
			w = cli_ws_recv(c, s.progress_ms + a->timeout_ms, &msg,
					&len);
			if (w == CLI_WAIT_DONE)
				pub_answer(a, msg, len, &s);
		}
		if (w != CLI_WAIT_DONE)
			return wait_failed(a, c, w);
	}
}

int cli_cmd_pub(const struct cli_args *a)
{
	struct cli_conn *c;
	int rc;

	rc = open_conn(a, &c);
	if (!rc)
		rc = subscribe(a, c, NULL);
	if (!rc)
		rc = a->message ? pub_one(a, c) : pub_stdin(a, c);
	cli_conn_destroy(c);
	return rc;
}

/* ---- list ---- */

int cli_cmd_list(const struct cli_args *a)
{
	static const char cmd[] =
		"{\"command\":\"list\",\"data\":{},\"nonce\":\"" LIST_NONCE
		"\"}";
	struct cli_conn *c;
	struct frame f;
	int rc;

	rc = open_conn(a, &c);
	if (rc)
		goto out;
	if (cli_ws_send(c, cmd, sizeof(cmd) - 1)) {
		cli_err(a, "out of memory");
		rc = CLI_EXIT_CONN;
		goto out;
	}
	rc = await_response(a, c, LIST_NONCE, &f, PRINT_CHANNELS);
	if (rc)
		goto out;
	if (!f.ok) {
		cli_err(a, "list refused: %s",
			f.reason ? f.reason : "no reason given");
		rc = CLI_EXIT_REFUSED;
	} else if (cli_flush_stdout(a) < 0) {
		rc = CLI_EXIT_CONN;
	}
	frame_fini(&f);
out:
	cli_conn_destroy(c);
	return rc;
}

/* ---- history, presence: one question on a subscribed channel ---- */

/*
 * Subscribes to a->channel (7.5.8: these commands answer subscribers
 * only), sends @b (its nonce @nonce) and waits for the answer into @f:
 * with --json the answer is printed as received, else @print applies.
 * Returns 0 with @f filled (the caller frame_fini()s it) or an exit code.
 */
static int ask(const struct cli_args *a, struct cli_conn *c, struct wr_buf *b,
	       const char *nonce, unsigned print, struct frame *f)
{
	const char *msg;
	size_t len;
	int rc = subscribe(a, c, NULL);

	if (rc)
		return rc;
	if (b->oom || cli_ws_send(c, b->p, b->len)) {
		cli_err(a, "out of memory");
		return CLI_EXIT_CONN;
	}
	if (!a->json)
		return await_response(a, c, nonce, f, print);
	/* the answer as received (deliveries meanwhile skipped) */
	for (;;) {
		enum cli_wait w = cli_ws_recv(c, wr_now_ms() + a->timeout_ms,
					      &msg, &len);

		if (w != CLI_WAIT_DONE)
			return wait_failed(a, c, w);
		frame_decode(f, msg, len, 0);
		if (f->kind == FRAME_RESPONSE)
			break;
		frame_fini(f);
	}
	if (f->ok) {
		fwrite(msg, 1, len, stdout);
		fputc('\n', stdout);
	}
	return 0;
}

int cli_cmd_history(const struct cli_args *a)
{
	struct cli_conn *c;
	struct frame f;
	struct wr_buf b;
	int rc;

	rc = open_conn(a, &c);
	if (rc)
		goto out;
	wr_buf_init(&b);
	wr_buf_puts(&b, "{\"command\":\"history\",\"data\":{\"channel\":");
	wr_buf_json_str(&b, a->channel, strlen(a->channel));
	if (a->has_limit)
		wr_buf_printf(&b, ",\"limit\":%" PRIu64, a->limit);
	wr_buf_puts(&b, "},\"nonce\":\"" HISTORY_NONCE "\"}");
	rc = ask(a, c, &b, HISTORY_NONCE, PRINT_HISTORY, &f);
	wr_buf_fini(&b);
	if (rc)
		goto out;
	if (!f.ok) {
		cli_err(a, "history refused: %s",
			f.reason ? f.reason : "no reason given");
		rc = CLI_EXIT_REFUSED;
	} else {
		if (f.epoch && f.has_offset)
			fprintf(stderr,
				"wsrelay history: position %s:%" PRIu64 "\n",
				f.epoch, f.offset);
		if (cli_flush_stdout(a) < 0)
			rc = CLI_EXIT_CONN;
	}
	frame_fini(&f);
out:
	cli_conn_destroy(c);
	return rc;
}

int cli_cmd_presence(const struct cli_args *a)
{
	struct cli_conn *c;
	struct frame f;
	struct wr_buf b;
	int rc;

	rc = open_conn(a, &c);
	if (rc)
		goto out;
	wr_buf_init(&b);
	wr_buf_puts(&b, "{\"command\":\"presence\",\"data\":{\"channel\":");
	wr_buf_json_str(&b, a->channel, strlen(a->channel));
	wr_buf_puts(&b, "},\"nonce\":\"" PRESENCE_NONCE "\"}");
	rc = ask(a, c, &b, PRESENCE_NONCE, PRINT_USERS, &f);
	wr_buf_fini(&b);
	if (rc)
		goto out;
	if (!f.ok) {
		cli_err(a, "presence refused: %s",
			f.reason ? f.reason : "no reason given");
		rc = CLI_EXIT_REFUSED;
	} else {
		/* this connection is one of the clients counted */
		fprintf(stderr, "wsrelay presence: %.0f client(s)%s\n",
			f.clients, f.partial ? ", partial" : "");
		if (cli_flush_stdout(a) < 0)
			rc = CLI_EXIT_CONN;
	}
	frame_fini(&f);
out:
	cli_conn_destroy(c);
	return rc;
}
