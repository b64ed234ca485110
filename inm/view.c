/*
 * inm/view: this node's view of the mesh (docs/mesh.md). One node-state
 * record per node; their peer lists draw the graph (an edge only when
 * both ends list each other, so a crashed node's stale record cannot keep
 * it reachable); reachability from self decides who is alive, and
 * breadth-first trees with one tie rule (neighbours in name order) give
 * every node with the same records the same routes. The graph and trees
 * are rebuilt lazily after a change; a mesh of tens of nodes rebuilds in
 * microseconds, and nothing is rebuilt while the records stay the same.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "inm.h"

struct vnode {
	struct inm_node_state st;
	bool reachable;
	bool up;                /* INM_VIEW_UP reported, not gone since */
	bool gone;              /* INM_VIEW_GONE reported, not up since */
	int64_t lost_since;     /* monotonic ms; 0 while reachable */
	int first;              /* first hop from self, -1 none */
	unsigned adj_off, nadj; /* neighbours in v->adj, in name order */
};

struct inm_view {
	char self[INM_NAME_MAX + 1];
	struct vnode *nodes; /* [0] is self */
	size_t n, max;
	bool dirty; /* records changed: graph is stale */
	int *order; /* indices by name, for lookups */
	int *adj;
	size_t adj_cap;
	int *queue;
	int **trees; /* parent arrays per root, lazily */
	uint64_t *tree_gen;
	uint64_t gen;
	bool digest_ok;
	uint64_t digest;
};

/* ---- records on the wire ---- */

void inm_digest_hex(uint64_t d, char out[INM_DIGEST_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = INM_DIGEST_HEX - 1; i >= 0; i--, d >>= 4)
		out[i] = hex[d & 15];
	out[INM_DIGEST_HEX] = '\0';
}

int inm_digest_parse(const char *s, uint64_t *d)
{
	unsigned char b[INM_DIGEST_HEX / 2];
	uint64_t v = 0;

	if (wr_unhex(b, s, sizeof(b)))
		return WR_EINVAL;
	for (size_t i = 0; i < sizeof(b); i++)
		v = v << 8 | b[i];
	*d = v;
	return WR_OK;
}

uint64_t inm_chan_digest(const char *name, size_t len, const uint8_t *hash,
			 size_t hlen, int64_t created)
{
	crypto_generichash_state h;
	unsigned char out[8], c[8];
	uint64_t d = 0;

	for (int i = 0; i < 8; i++)
		c[i] = (unsigned char)((uint64_t)created >> (8 * i));
	crypto_generichash_init(&h, NULL, 0, sizeof(out));
	crypto_generichash_update(&h, (const unsigned char *)name, len);
	crypto_generichash_update(&h, (const unsigned char *)"", 1);
	if (hash)
		crypto_generichash_update(&h, hash, hlen);
	crypto_generichash_update(&h, (const unsigned char *)"", 1);
	crypto_generichash_update(&h, c, sizeof(c));
	crypto_generichash_final(&h, out, sizeof(out));
	for (int i = 0; i < 8; i++)
		d = d << 8 | out[i];
	return d;
}

static bool name_ok(const cJSON *v)
{
	return cJSON_IsString(v) &&
	       inm_node_name_valid(v->valuestring, strlen(v->valuestring));
}

/* A non-negative integer below 2^53 (exact in a JSON number). */
static bool count_ok(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble >= 0 &&
	       v->valuedouble < 9007199254740992.0 &&
	       v->valuedouble == (double)(int64_t)v->valuedouble;
}

int inm_state_decode(const cJSON *o, struct inm_node_state *st)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(o, "url");
	const cJSON *inc = cJSON_GetObjectItemCaseSensitive(o, "incarnation");
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
	const cJSON *peers = cJSON_GetObjectItemCaseSensitive(o, "peers");
	const cJSON *lat = cJSON_GetObjectItemCaseSensitive(o, "latency");
	const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "channels");
	const cJSON *rejoin = cJSON_GetObjectItemCaseSensitive(o, "rejoin");
	const cJSON *n, *dg, *it;
	unsigned char tok[INM_TOKEN_LEN / 2];

	memset(st, 0, sizeof(*st));
	if (!cJSON_IsObject(o) || !name_ok(name) || !count_ok(inc) ||
	    !count_ok(ver) || !cJSON_IsArray(peers) || !cJSON_IsObject(ch))
		return WR_EINVAL;
	if (url && (!cJSON_IsString(url) ||
		    strlen(url->valuestring) >= sizeof(st->url)))
		return WR_EINVAL;
	n = cJSON_GetObjectItemCaseSensitive(ch, "n");
	dg = cJSON_GetObjectItemCaseSensitive(ch, "digest");
	if (!count_ok(n) || n->valuedouble > UINT32_MAX ||
	    !cJSON_IsString(dg) ||
	    inm_digest_parse(dg->valuestring, &st->chan_digest))
		return WR_EINVAL;
	if (rejoin && (!cJSON_IsString(rejoin) ||
		       wr_unhex(tok, rejoin->valuestring, sizeof(tok))))
		return WR_EINVAL;
	if (lat && !cJSON_IsObject(lat))
		return WR_EINVAL;
	memcpy(st->name, name->valuestring, strlen(name->valuestring) + 1);
	if (url)
		memcpy(st->url, url->valuestring, strlen(url->valuestring) + 1);
	st->incarnation = (int64_t)inc->valuedouble;
	st->version = (uint64_t)ver->valuedouble;
	st->master = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o,
								   "master"));
	st->leaving = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o,
								    "leaving"));
	st->nchannels = (uint32_t)n->valuedouble;
	if (rejoin)
		memcpy(st->rejoin, rejoin->valuestring, INM_TOKEN_LEN + 1);
	cJSON_ArrayForEach(it, peers) {
		const cJSON *ms;

		if (!name_ok(it))
			return WR_EINVAL;
		if (st->npeers == INM_VIEW_PEERS_MAX)
			continue; /* a bigger hub: the rest stay unlisted */
		ms = lat ? cJSON_GetObjectItemCaseSensitive(lat,
							    it->valuestring)
			 : NULL;
		st->latency[st->npeers] = cJSON_IsNumber(ms) &&
							  ms->valuedouble >= 0
						  ? ms->valuedouble
						  : -1.0;
		memcpy(st->peers[st->npeers++], it->valuestring,
		       strlen(it->valuestring) + 1);
	}
	return WR_OK;
}

cJSON *inm_state_json(const struct inm_node_state *st)
{
	cJSON *o = cJSON_CreateObject(), *peers, *lat, *ch;
	char hex[INM_DIGEST_HEX + 1];
	bool ok;

	if (!o)
		return NULL;
	inm_digest_hex(st->chan_digest, hex);
	ok = cJSON_AddStringToObject(o, "name", st->name) &&
	     cJSON_AddStringToObject(o, "url", st->url) &&
	     cJSON_AddNumberToObject(o, "incarnation",
				     (double)st->incarnation) &&
	     cJSON_AddNumberToObject(o, "version", (double)st->version) &&
	     cJSON_AddBoolToObject(o, "master", st->master) &&
	     (peers = cJSON_AddArrayToObject(o, "peers")) &&
	     (lat = cJSON_AddObjectToObject(o, "latency")) &&
	     (ch = cJSON_AddObjectToObject(o, "channels")) &&
	     cJSON_AddNumberToObject(ch, "n", st->nchannels) &&
	     cJSON_AddStringToObject(ch, "digest", hex);
	if (ok && st->leaving)
		ok = cJSON_AddTrueToObject(o, "leaving");
	if (ok && st->rejoin[0])
		ok = cJSON_AddStringToObject(o, "rejoin", st->rejoin);
	for (unsigned i = 0; ok && i < st->npeers; i++) {
		cJSON *s = cJSON_CreateString(st->peers[i]);

		ok = s && cJSON_AddItemToArray(peers, s);
		if (ok && st->latency[i] >= 0)
			ok = cJSON_AddNumberToObject(lat, st->peers[i],
						     st->latency[i]);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ---- the table ---- */

struct inm_view *inm_view_create(const char *self, size_t max_nodes)
{
	struct inm_view *v;

	if (!self || !inm_node_name_valid(self, strlen(self)) ||
	    max_nodes < 1 || max_nodes > 65536)
		return NULL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->max = max_nodes;
	v->nodes = calloc(max_nodes, sizeof(*v->nodes));
	v->order = calloc(max_nodes, sizeof(*v->order));
	v->queue = calloc(max_nodes, sizeof(*v->queue));
	v->trees = calloc(max_nodes, sizeof(*v->trees));
	v->tree_gen = calloc(max_nodes, sizeof(*v->tree_gen));
	if (!v->nodes || !v->order || !v->queue || !v->trees || !v->tree_gen) {
		inm_view_destroy(v);
		return NULL;
	}
	memcpy(v->self, self, strlen(self) + 1);
	memcpy(v->nodes[0].st.name, self, strlen(self) + 1);
	v->nodes[0].reachable = true;
	v->nodes[0].up = true;
	v->nodes[0].first = -1;
	v->n = 1;
	v->dirty = true;
	v->gen = 1;
	return v;
}

void inm_view_destroy(struct inm_view *v)
{
	if (!v)
		return;
	for (size_t i = 0; v->trees && i < v->max; i++)
		free(v->trees[i]);
	free(v->trees);
	free(v->tree_gen);
	free(v->nodes);
	free(v->order);
	free(v->queue);
	free(v->adj);
	free(v);
}

static void changed(struct inm_view *v)
{
	v->dirty = true;
	v->digest_ok = false;
}

void inm_view_set_self(struct inm_view *v, const struct inm_node_state *st)
{
	v->nodes[0].st = *st;
	memcpy(v->nodes[0].st.name, v->self, strlen(v->self) + 1);
	changed(v);
}

const struct inm_node_state *inm_view_self(const struct inm_view *v)
{
	return &v->nodes[0].st;
}

static int find(const struct inm_view *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->nodes[i].st.name, name))
			return (int)i;
	return -1;
}

/* Drops record @i (never self); indices above it move. */
static void drop(struct inm_view *v, size_t i)
{
	memmove(&v->nodes[i], &v->nodes[i + 1],
		(v->n - i - 1) * sizeof(*v->nodes));
	v->n--;
	changed(v);
}

static void ensure(struct inm_view *v);

static bool newer(const struct inm_node_state *a,
		  const struct inm_node_state *b)
{
	if (a->incarnation != b->incarnation)
		return a->incarnation > b->incarnation;
	return a->version > b->version;
}

enum inm_merge inm_view_merge(struct inm_view *v,
			      const struct inm_node_state *st, int64_t now_ms)
{
	int i = find(v, st->name);

	(void)now_ms;
	if (i == 0)
		return INM_MERGE_SELF;
	if (i > 0) {
		if (!newer(st, &v->nodes[i].st))
			return INM_MERGE_OLD;
		v->nodes[i].st = *st;
		changed(v);
		return INM_MERGE_NEWS;
	}
	if (v->n == v->max) {
		/* room for the living first: the longest-lost record goes.
		 * lost_since is the last sweep's word, reachable must be
		 * today's: a record reachable again since is not lost. */
		size_t oldest = 0;

		ensure(v);
		for (size_t k = 1; k < v->n; k++)
			if (!v->nodes[k].reachable && v->nodes[k].lost_since &&
			    (!oldest || v->nodes[k].lost_since <
						v->nodes[oldest].lost_since))
				oldest = k;
		if (!oldest)
			return INM_MERGE_FULL;
		drop(v, oldest);
	}
	memset(&v->nodes[v->n], 0, sizeof(v->nodes[0]));
	v->nodes[v->n].st = *st;
	v->nodes[v->n].first = -1;
	v->n++;
	changed(v);
	return INM_MERGE_NEWS;
}

/* ---- the graph ---- */

/* Sorts @idx[0..n) by node name. Insertion sort: the lists are short or
 * nearly sorted already, and qsort would need a global for its context. */
static void sort_by_name(const struct inm_view *v, int *idx, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		int x = idx[i];
		size_t j = i;

		while (j && strcmp(v->nodes[idx[j - 1]].st.name,
				   v->nodes[x].st.name) > 0) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = x;
	}
}

static int lookup(const struct inm_view *v, const char *name)
{
	size_t lo = 0, hi = v->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(v->nodes[v->order[mid]].st.name, name);

		if (!c)
			return v->order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static bool lists(const struct inm_node_state *st, const char *name)
{
	if (st->leaving)
		return false;
	for (unsigned i = 0; i < st->npeers; i++)
		if (!strcmp(st->peers[i], name))
			return true;
	return false;
}

/* Breadth first from @root over the edges; @parent[i] = -1 unreached,
 * root's parent is itself. */
static void bfs(struct inm_view *v, int root, int *parent)
{
	size_t head = 0, tail = 0;

	for (size_t i = 0; i < v->n; i++)
		parent[i] = -1;
	parent[root] = root;
	v->queue[tail++] = root;
	while (head < tail) {
		int u = v->queue[head++];
		const struct vnode *nu = &v->nodes[u];

		for (unsigned k = 0; k < nu->nadj; k++) {
			int w = v->adj[nu->adj_off + k];

			if (parent[w] >= 0)
				continue;
			parent[w] = u;
			v->queue[tail++] = w;
		}
	}
}

static int rebuild(struct inm_view *v)
{
	size_t need = 0, used = 0;
	int *parent;

	for (size_t i = 0; i < v->n; i++) {
		v->order[i] = (int)i;
		need += v->nodes[i].st.leaving ? 0 : v->nodes[i].st.npeers;
	}
	sort_by_name(v, v->order, v->n);
	if (need > v->adj_cap) {
		int *a = realloc(v->adj, need * sizeof(*a));

		if (!a)
			return WR_ENOMEM;
		v->adj = a;
		v->adj_cap = need;
	}
	for (size_t i = 0; i < v->n; i++) {
		struct vnode *nd = &v->nodes[i];

		nd->adj_off = (unsigned)used;
		nd->nadj = 0;
		for (unsigned k = 0; !nd->st.leaving && k < nd->st.npeers;
		     k++) {
			int j = lookup(v, nd->st.peers[k]);

			if (j < 0 || j == (int)i ||
			    !lists(&v->nodes[j].st, nd->st.name))
				continue;
			v->adj[used++] = j;
			nd->nadj++;
		}
		/* the tie rule: neighbours in name order */
		sort_by_name(v, &v->adj[nd->adj_off], nd->nadj);
	}
	/* from self: reachability and first hops */
	if (!v->trees[0] && !(v->trees[0] = malloc(v->max * sizeof(int))))
		return WR_ENOMEM;
	parent = v->trees[0];
	bfs(v, 0, parent);
	for (size_t i = 0; i < v->n; i++) {
		struct vnode *nd = &v->nodes[i];
		int cur = (int)i;

		nd->reachable = parent[i] >= 0;
		nd->first = -1;
		if (!nd->reachable || i == 0)
			continue;
		while (parent[cur] != 0)
			cur = parent[cur];
		nd->first = cur;
	}
	v->gen++;
	v->tree_gen[0] = v->gen;
	v->dirty = false;
	v->digest_ok = false;
	return WR_OK;
}

static void ensure(struct inm_view *v)
{
	if (v->dirty && rebuild(v))
		v->dirty = true; /* no memory: try again next time */
}

void inm_view_sweep(struct inm_view *v, int64_t now_ms, int64_t grace_ms,
		    int64_t forget_ms, inm_view_cb cb, void *ud)
{
	ensure(v);
	for (size_t i = 1; i < v->n;) {
		struct vnode *nd = &v->nodes[i];

		if (nd->reachable) {
			nd->lost_since = 0;
			nd->gone = false;
			if (!nd->up) {
				nd->up = true;
				if (cb)
					cb(ud, &nd->st, INM_VIEW_UP);
			}
			i++;
			continue;
		}
		if (!nd->lost_since)
			nd->lost_since = now_ms ? now_ms : 1;
		/* also a node never reported up (it went before a sweep saw
		 * it): commands may have named it a holder meanwhile */
		if (!nd->gone &&
		    (nd->st.leaving || now_ms - nd->lost_since >= grace_ms)) {
			nd->up = false;
			nd->gone = true;
			if (cb)
				cb(ud, &nd->st, INM_VIEW_GONE);
		}
		if (!nd->up && now_ms - nd->lost_since >= forget_ms) {
			drop(v, i);
			ensure(v);
			continue;
		}
		i++;
	}
}

bool inm_view_unsettled(const struct inm_view *v)
{
	ensure((struct inm_view *)v);
	for (size_t i = 1; i < v->n; i++)
		if (v->nodes[i].reachable ? !v->nodes[i].up : !v->nodes[i].gone)
			return true;
	return false;
}

size_t inm_view_count(const struct inm_view *v)
{
	return v->n;
}

const struct inm_node_state *inm_view_at(const struct inm_view *v, size_t i)
{
	return i < v->n ? &v->nodes[i].st : NULL;
}

const struct inm_node_state *inm_view_find(const struct inm_view *v,
					   const char *name)
{
	int i = find(v, name);

	return i < 0 ? NULL : &v->nodes[i].st;
}

bool inm_view_reachable(const struct inm_view *v, const char *name)
{
	int i;

	ensure((struct inm_view *)v);
	i = find(v, name);
	return i >= 0 && v->nodes[i].reachable;
}

bool inm_view_alive(const struct inm_view *v, const char *name)
{
	int i;

	ensure((struct inm_view *)v);
	i = find(v, name);
	return i >= 0 && (v->nodes[i].reachable || v->nodes[i].up);
}

int64_t inm_view_lost_since(const struct inm_view *v, size_t i)
{
	ensure((struct inm_view *)v);
	if (i >= v->n || v->nodes[i].reachable)
		return 0;
	/* unreachable, not swept yet: lost now as far as callers know */
	return v->nodes[i].lost_since ? v->nodes[i].lost_since : 1;
}

size_t inm_view_reachable_count(const struct inm_view *v)
{
	size_t n = 0;

	ensure((struct inm_view *)v);
	for (size_t i = 0; i < v->n; i++)
		n += v->nodes[i].reachable;
	return n;
}

const char *inm_view_leader(const struct inm_view *v)
{
	const char *best = v->self;

	ensure((struct inm_view *)v);
	for (size_t i = 1; i < v->n; i++)
		if (v->nodes[i].reachable &&
		    strcmp(v->nodes[i].st.name, best) < 0)
			best = v->nodes[i].st.name;
	return best;
}

const char *inm_view_next_hop(const struct inm_view *v, const char *dest)
{
	int i;

	ensure((struct inm_view *)v);
	i = find(v, dest);
	if (i <= 0 || v->nodes[i].first < 0)
		return NULL;
	return v->nodes[v->nodes[i].first].st.name;
}

int inm_view_tree_hop(struct inm_view *v, const char *source,
		      const char *target, const char **hop)
{
	int s, t, cur, prev = -1;
	int *parent;

	ensure(v);
	s = find(v, source);
	t = find(v, target);
	*hop = NULL;
	if (s < 0 || t < 0 || !v->nodes[s].reachable || !v->nodes[t].reachable)
		return -1;
	if (t == 0)
		return 0;
	if (v->tree_gen[s] != v->gen) {
		if (!v->trees[s] &&
		    !(v->trees[s] = malloc(v->max * sizeof(int))))
			return -1;
		bfs(v, s, v->trees[s]);
		v->tree_gen[s] = v->gen;
	}
	parent = v->trees[s];
	/* up from the target: through us, or past us to the root */
	for (cur = t; cur != 0 && cur != s; cur = parent[cur])
		prev = cur;
	if (cur != 0 || prev < 0)
		return 0;
	*hop = v->nodes[prev].st.name;
	return 1;
}

uint64_t inm_view_digest(struct inm_view *v)
{
	crypto_generichash_state h;
	unsigned char out[8];

	ensure(v);
	if (v->digest_ok)
		return v->digest;
	crypto_generichash_init(&h, NULL, 0, sizeof(out));
	for (size_t k = 0; k < v->n; k++) {
		const struct vnode *nd = &v->nodes[v->order[k]];
		unsigned char num[16];

		if (!nd->reachable || nd->st.legacy)
			continue;
		for (int i = 0; i < 8; i++) {
			num[i] = (unsigned char)((uint64_t)nd->st.incarnation >>
						 (8 * i));
			num[8 + i] = (unsigned char)(nd->st.version >> (8 * i));
		}
		crypto_generichash_update(&h,
					  (const unsigned char *)nd->st.name,
					  strlen(nd->st.name) + 1);
		crypto_generichash_update(&h, num, sizeof(num));
	}
	crypto_generichash_final(&h, out, sizeof(out));
	v->digest = 0;
	for (int i = 0; i < 8; i++)
		v->digest = v->digest << 8 | out[i];
	v->digest_ok = true;
	return v->digest;
}
