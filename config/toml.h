/*
 * config/toml: a strict parser for the small TOML subset the config uses.
 * It turns (text, length) into a read-only tree of tables, arrays and
 * scalars, each carrying its line; anything outside the subset is an error.
 */
#ifndef CONFIG_TOML_H
#define CONFIG_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wr.h"

/*
 * The subset: comments, [table] and [[array]] headers with bare names,
 * bare keys, basic and literal one-line strings, decimal integers,
 * booleans, and one-line or multi-line arrays of those scalars.
 * Dotted or quoted keys, inline tables, floats, dates, multi-line strings
 * and nested arrays are rejected as "unsupported ...".
 */
enum toml_type {
	TOML_STRING,
	TOML_INT,
	TOML_BOOL,
	TOML_ARRAY,
	TOML_TABLE,
};

/*
 * One node of the tree. The layout is public because the tree is plain
 * data for the caller to walk; only toml_parse() builds it.
 */
struct toml {
	enum toml_type type;
	int line;  /* 1-based: the key, the header or the element */
	char *key; /* NULL for the root and for array elements */
	union {
		char *str; /* STRING: valid UTF-8, no NUL but the last */
		int64_t i; /* INT */
		bool b;    /* BOOL */
	} v;
	/* ARRAY elements or TABLE members, in file order */
	struct toml **items;
	size_t n, cap;
	bool aot; /* ARRAY made by [[key]]: its items are TABLEs */
};

/* Where and why parsing failed. */
struct toml_err {
	int line;      /* 1-based line of the fault */
	char key[160]; /* "limits.max_clients", "peers[1].url", or "" */
	char msg[160]; /* one line, printable ASCII */
};

/*
 * Parses @text (@len bytes, need not be NUL-terminated). On success
 * returns WR_OK and gives the caller the root table in *@root (free it
 * with toml_destroy()). On failure *@root is NULL, @err is filled and
 * the result is WR_EINVAL (bad input) or WR_ENOMEM. Reentrant.
 */
int toml_parse(const char *text, size_t len, struct toml **root,
	       struct toml_err *err);

/* Frees @t and everything under it; NULL is a no-op. */
void toml_destroy(struct toml *t);

/* The member @key of table @t, or NULL (also when @t is not a table). */
const struct toml *toml_get(const struct toml *t, const char *key);

/* "a string", "an integer", ... for messages like "expected X, got Y". */
const char *toml_type_name(const struct toml *t);

#endif
