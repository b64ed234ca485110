/*
 * tests/unit/test_inm_token: one-time connection tokens — issue and use,
 * expiry at exactly the ttl, a wrong name wiping the token, reuse failing,
 * malformed tokens, and the capacity bound refusing new tokens.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "inm.h"

#define TTL 60000

static enum inm_token_result use(struct inm_tokens *t, const char *tok,
				 const char *name, int64_t now)
{
	return inm_token_use(t, tok, strlen(tok), name, now);
}

Test(inm_token, issue_and_use_once)
{
	struct inm_tokens *t = inm_tokens_create(8, TTL);
	char a[INM_TOKEN_LEN + 1], b[INM_TOKEN_LEN + 1];

	cr_assert_not_null(t);
	cr_assert_eq(inm_token_issue(t, "node-c", 1000, a), WR_OK);
	cr_assert_eq(inm_token_issue(t, "node-c", 1000, b), WR_OK);
	cr_expect_eq(strlen(a), INM_TOKEN_LEN);
	cr_expect_eq(strspn(a, "0123456789abcdef"), INM_TOKEN_LEN);
	cr_expect_str_neq(a, b);
	cr_expect_eq(inm_tokens_count(t), 2);
	cr_expect_eq(use(t, a, "node-c", 2000), INM_TOKEN_OK);
	cr_expect_eq(use(t, a, "node-c", 2000), INM_TOKEN_UNKNOWN);
	cr_expect_eq(inm_tokens_count(t), 1);
	/* the other token is unaffected */
	cr_expect_eq(use(t, b, "node-c", 2000), INM_TOKEN_OK);
	cr_expect_eq(inm_tokens_count(t), 0);
	inm_tokens_destroy(t);
}

Test(inm_token, wrong_name_wipes)
{
	struct inm_tokens *t = inm_tokens_create(8, TTL);
	char a[INM_TOKEN_LEN + 1];

	cr_assert_eq(inm_token_issue(t, "node-c", 0, a), WR_OK);
	cr_expect_eq(use(t, a, "node-d", 1), INM_TOKEN_WRONG_NAME);
	/* the right name cannot use it afterwards */
	cr_expect_eq(use(t, a, "node-c", 2), INM_TOKEN_UNKNOWN);
	cr_assert_eq(inm_token_issue(t, "node-c", 0, a), WR_OK);
	cr_expect_eq(inm_token_use(t, a, INM_TOKEN_LEN, NULL, 1),
		     INM_TOKEN_WRONG_NAME);
	cr_expect_eq(use(t, a, "node-c", 2), INM_TOKEN_UNKNOWN);
	inm_tokens_destroy(t);
}

Test(inm_token, expires_at_ttl)
{
	struct inm_tokens *t = inm_tokens_create(8, TTL);
	char a[INM_TOKEN_LEN + 1], b[INM_TOKEN_LEN + 1];

	cr_assert_eq(inm_token_issue(t, "n", 1000, a), WR_OK);
	cr_assert_eq(inm_token_issue(t, "n", 1000, b), WR_OK);
	cr_expect_eq(use(t, a, "n", 1000 + TTL - 1), INM_TOKEN_OK);
	cr_expect_eq(use(t, b, "n", 1000 + TTL), INM_TOKEN_UNKNOWN);
	cr_expect_eq(inm_tokens_count(t), 0);
	inm_tokens_destroy(t);
}

Test(inm_token, unknown_and_malformed)
{
	struct inm_tokens *t = inm_tokens_create(8, TTL);
	char a[INM_TOKEN_LEN + 1], other[INM_TOKEN_LEN + 1];

	cr_assert_eq(inm_token_issue(t, "n", 0, a), WR_OK);
	memcpy(other, a, sizeof(other));
	other[INM_TOKEN_LEN - 1] = other[INM_TOKEN_LEN - 1] == '0' ? '1' : '0';
	cr_expect_eq(use(t, other, "n", 1), INM_TOKEN_UNKNOWN);
	cr_expect_eq(use(t, "", "n", 1), INM_TOKEN_UNKNOWN);
	cr_expect_eq(inm_token_use(t, a, INM_TOKEN_LEN - 1, "n", 1),
		     INM_TOKEN_UNKNOWN);
	cr_expect_eq(inm_token_use(t, NULL, 0, "n", 1), INM_TOKEN_UNKNOWN);
	/* a header value carries no NUL: a longer buffer with the token as
	 * prefix is not the token */
	{
		char longer[INM_TOKEN_LEN + 2];

		memcpy(longer, a, INM_TOKEN_LEN);
		longer[INM_TOKEN_LEN] = 'x';
		longer[INM_TOKEN_LEN + 1] = '\0';
		cr_expect_eq(use(t, longer, "n", 1), INM_TOKEN_UNKNOWN);
	}
	/* none of those spent it */
	cr_expect_eq(inm_token_use(t, a, INM_TOKEN_LEN, "n", 1), INM_TOKEN_OK);
	cr_expect_eq(inm_token_issue(t, "bad name", 0, a), WR_EINVAL);
	cr_expect_eq(inm_token_issue(t, "*", 0, a), WR_EINVAL);
	cr_expect_eq(inm_token_issue(t, NULL, 0, a), WR_EINVAL);
	inm_tokens_destroy(t);
}

Test(inm_token, capacity_refuses_never_evicts)
{
	struct inm_tokens *t = inm_tokens_create(3, TTL);
	char tok[5][INM_TOKEN_LEN + 1];

	for (int i = 0; i < 3; i++)
		cr_assert_eq(inm_token_issue(t, "n", i, tok[i]), WR_OK);
	/* full of live tokens: refused, nothing handed out is lost */
	cr_expect_eq(inm_token_issue(t, "n", 3, tok[3]), WR_EFULL);
	cr_expect_eq(inm_tokens_refused(t), 1);
	cr_expect_eq(inm_tokens_count(t), 3);
	/* a spent token frees its slot, even in the middle */
	cr_expect_eq(use(t, tok[1], "n", 10), INM_TOKEN_OK);
	cr_assert_eq(inm_token_issue(t, "n", 11, tok[3]), WR_OK);
	cr_expect_eq(inm_token_issue(t, "n", 12, tok[4]), WR_EFULL);
	for (int i = 0; i < 4; i++)
		if (i != 1)
			cr_expect_eq(use(t, tok[i], "n", 20), INM_TOKEN_OK,
				     "token %d", i);
	/* expired slots are reused */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(inm_token_issue(t, "n", 30, tok[i]), WR_OK);
	cr_assert_eq(inm_token_issue(t, "n", 30 + TTL, tok[3]), WR_OK);
	cr_expect_eq(use(t, tok[3], "n", 31 + TTL), INM_TOKEN_OK);
	cr_expect_eq(use(t, tok[0], "n", 31 + TTL), INM_TOKEN_UNKNOWN);
	cr_expect_eq(inm_tokens_refused(t), 2);
	inm_tokens_destroy(t);
}

Test(inm_token, create_checks)
{
	cr_expect_null(inm_tokens_create(0, TTL));
	cr_expect_null(inm_tokens_create(4, 0));
	inm_tokens_destroy(NULL);
}

/* The upgrade's check: known does not spend, expiry and use end it. */
Test(inm_token, known_checks_without_spending)
{
	struct inm_tokens *t = inm_tokens_create(4, TTL);
	char a[INM_TOKEN_LEN + 1], other[INM_TOKEN_LEN + 1];

	cr_assert_eq(inm_token_issue(t, "node-c", 0, a), WR_OK);
	cr_expect(inm_token_known(t, a, INM_TOKEN_LEN, 10));
	cr_expect(inm_token_known(t, a, INM_TOKEN_LEN, 10)); /* still live */
	cr_expect_not(inm_token_known(t, a, INM_TOKEN_LEN - 1, 10));
	cr_expect_not(inm_token_known(t, NULL, 0, 10));
	memcpy(other, a, sizeof(other));
	other[0] = other[0] == '0' ? '1' : '0';
	cr_expect_not(inm_token_known(t, other, INM_TOKEN_LEN, 10));
	cr_expect_eq(use(t, a, "node-c", 20), INM_TOKEN_OK);
	cr_expect_not(inm_token_known(t, a, INM_TOKEN_LEN, 30));
	cr_assert_eq(inm_token_issue(t, "node-d", 100, a), WR_OK);
	cr_expect(inm_token_known(t, a, INM_TOKEN_LEN, 100 + TTL - 1));
	cr_expect_not(inm_token_known(t, a, INM_TOKEN_LEN, 100 + TTL));
	cr_expect_eq(inm_tokens_count(t), 0); /* found expired: wiped */
	inm_tokens_destroy(t);
}
