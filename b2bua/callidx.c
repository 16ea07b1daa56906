/**
 * @file callidx.c  The calls in the order of their id, and by account
 *
 * Beside the hash by id (b2bua_call_find()), every call is in a
 * red-black tree ordered by its id (16 hex digits, ordered as the number
 * they write), and a call whose account is known also in its account's
 * tree.  A listing seeks to the first call after a cursor in O(log n)
 * and walks on from there, so its work grows with the page, not with
 * the number of calls (api/calls.c).
 */

#include <string.h>
#include "b2bua_int.h"


/** The order of a call id: its hex digits as a number */
uint64_t call_id_key(const char *id)
{
	uint64_t k = 0;
	unsigned i;

	for (i = 0; id && id[i] && i < 16; i++) {
		char c = id[i];
		unsigned v;

		if (c >= '0' && c <= '9')
			v = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = (unsigned)(c - 'a' + 10);
		else
			break;
		k = k << 4 | v;
	}

	/* shorter than 16 digits: as if padded with zeros on the right */
	for (; i < 16; i++)
		k <<= 4;

	return k;
}


static void aix_destructor(void *arg)
{
	struct acct_ix *ix = arg;

	hash_unlink(&ix->he_name);
	hash_unlink(&ix->he_id);
	mem_deref(ix->name);
}


static bool name_cmp(struct le *le, void *arg)
{
	const struct acct_ix *ix = le->data;

	return !strcmp(ix->name, arg);
}


static bool id_cmp(struct le *le, void *arg)
{
	const struct acct_ix *ix = le->data;

	return ix->id == *(const int64_t *)arg;
}


static struct acct_ix *aix_find(const struct b2bua *b, const char *name,
				int64_t id)
{
	if (id)
		return list_ledata(hash_lookup(b->ht_acct_id, (uint32_t)id,
					       id_cmp, &id));

	return name ? list_ledata(hash_lookup(b->ht_acct_name,
					      hash_joaat_str(name),
					      name_cmp, (void *)name)) : NULL;
}


/** The call's account is known: it goes into that account's tree */
void call_index_account(struct b2bua_call *call)
{
	struct b2bua *b = call->b;
	struct acct_ix *ix;

	if (call->aix || !call->account || !b->ht_acct_name)
		return;

	ix = list_ledata(hash_lookup(b->ht_acct_name,
				     hash_joaat_str(call->account),
				     name_cmp, call->account));
	if (ix && ix->id != call->account_id)
		ix = NULL;   /* a name used again by another account */

	if (!ix) {
		ix = mem_zalloc(sizeof(*ix), aix_destructor);
		if (!ix || str_dup(&ix->name, call->account)) {
			mem_deref(ix);
			return;   /* listed by the full tree only */
		}
		ix->id = call->account_id;
		hash_append(b->ht_acct_name, hash_joaat_str(ix->name),
			    &ix->he_name, ix);
		if (ix->id)
			hash_append(b->ht_acct_id, (uint32_t)ix->id,
				    &ix->he_id, ix);
	}

	call->acct_node.key = call->sorted.key;
	call->acct_node.data = call;
	rbt_insert(&ix->calls, &call->acct_node);
	call->aix = ix;
}


/** The call leaves every index (again: nothing happens) */
void call_unindex(struct b2bua_call *call)
{
	struct b2bua *b = call->b;

	rbt_remove(&b->calls_sorted, &call->sorted);

	if (call->aix) {
		struct acct_ix *ix = call->aix;

		rbt_remove(&ix->calls, &call->acct_node);
		call->aix = NULL;
		if (!ix->calls.n)
			mem_deref(ix);
	}
}


static bool flush_h(struct le *le, void *arg)
{
	(void)arg;
	mem_deref(le->data);

	return false;
}


/** Free the account indexes left (the calls are gone) */
void call_index_flush(struct b2bua *b)
{
	if (b->ht_acct_id)
		hash_flush(b->ht_acct_id);   /* unlinks only (borrowed) */
	if (b->ht_acct_name)
		(void)hash_apply(b->ht_acct_name, flush_h, NULL);
}


/**
 * Apply a handler to calls in the order of their id, from the first
 * whose id comes after `after` (NULL or "": from the first), until the
 * handler returns true.  With account (a name, or an id when account_id
 * is not 0) only that account's calls are visited, from its own tree.
 *
 * @return the call the handler stopped at, NULL if it did not stop
 */
struct b2bua_call *b2bua_call_apply_sorted(const struct b2bua *b,
					   const char *after,
					   const char *account,
					   int64_t account_id,
					   b2bua_call_apply_h *h, void *arg)
{
	const struct rbt *t;
	struct rbt_node *n;
	uint64_t key = 0;
	bool seek;

	if (!b || !h)
		return NULL;

	if (account || account_id) {
		const struct acct_ix *ix = aix_find(b, account, account_id);

		if (!ix)
			return NULL;
		t = &ix->calls;
	}
	else {
		t = &b->calls_sorted;
	}

	seek = after && *after;
	if (seek)
		key = call_id_key(after);

	/* a cursor shorter than an id: every id it starts comes after */
	if (seek && strlen(after) >= 16)
		n = rbt_after(t, key);
	else if (seek)
		n = key ? rbt_after(t, key - 1) : rbt_first(t);
	else
		n = rbt_first(t);

	for (; n; n = rbt_next(n)) {
		struct b2bua_call *call = n->data;

		if (h(call, arg))
			return call;
	}

	return NULL;
}
