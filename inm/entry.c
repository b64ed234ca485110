/*
 * inm/entry: the channel entry, one decoder and one encoder for the shape
 * that list-channels, list-reserved-channels and the full announce all
 * carry: {"name", "password", "created", "holders"}.
 */
#include <string.h>

#include "inm.h"

int inm_hash_decode(const cJSON *v, uint8_t out[INM_HASH_LEN], bool *has)
{
	*has = false;
	if (!v || cJSON_IsNull(v))
		return WR_OK;
	if (!cJSON_IsString(v) || wr_unhex(out, v->valuestring, INM_HASH_LEN))
		return WR_EINVAL;
	*has = true;
	return WR_OK;
}

int inm_chan_entry_decode(const cJSON *o, struct inm_chan_entry *e)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "name");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "created");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "holders");

	memset(e, 0, sizeof(*e));
	if (!cJSON_IsObject(o) || !cJSON_IsString(n) ||
	    !wr_channel_name_valid(n->valuestring, strlen(n->valuestring)) ||
	    inm_hash_decode(cJSON_GetObjectItemCaseSensitive(o, "password"),
			    e->hash, &e->has_hash) ||
	    (c && !inm_json_int_ok(c)) || (h && !cJSON_IsArray(h)))
		return WR_EINVAL;
	e->name = n->valuestring;
	e->has_created = c != NULL;
	e->created = c ? (int64_t)c->valuedouble : 0;
	e->holders = h;
	return WR_OK;
}

bool inm_hash_json(cJSON *o, const uint8_t *hash)
{
	char hex[2 * INM_HASH_LEN + 1];

	if (!hash)
		return cJSON_AddNullToObject(o, "password") != NULL;
	wr_hex(hex, hash, INM_HASH_LEN);
	return cJSON_AddStringToObject(o, "password", hex) != NULL;
}

cJSON *inm_chan_entry_json(const char *name, const uint8_t *hash,
			   int64_t created)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "name", name) ||
	    !inm_hash_json(o, hash) ||
	    !cJSON_AddNumberToObject(o, "created", (double)created)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
