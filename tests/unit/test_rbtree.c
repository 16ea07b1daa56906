/**
 * @file test_rbtree.c  The red-black tree of b2bua/rbtree.c and the order
 *                      of call ids (b2bua/callidx.c)
 *
 * Random insertions and removals checked against a sorted array after
 * every step: the walk gives every node once in key order, the tree keeps
 * its red-black rules (no red node with a red child, the same number of
 * black nodes on every path) and so a height within 2 log2(n + 1), and
 * the seek after a key lands on the first greater key.
 */

#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "b2bua_int.h"
#include "check.h"


enum { N = 2000, ROUNDS = 20000 };

static struct rbt_node nodes[N];
static bool in[N];


/* black height, or -1 when a rule is broken */
static int check_sub(const struct rbt_node *n, unsigned depth,
		     unsigned *maxdepth)
{
	int lh, rh;

	if (!n)
		return 1;

	if (depth > *maxdepth)
		*maxdepth = depth;

	if (n->l && (n->l->p != n || n->l->key > n->key))
		return -1;
	if (n->r && (n->r->p != n || n->r->key < n->key))
		return -1;
	if (n->red && ((n->l && n->l->red) || (n->r && n->r->red)))
		return -1;

	lh = check_sub(n->l, depth + 1, maxdepth);
	rh = check_sub(n->r, depth + 1, maxdepth);
	if (lh < 0 || rh < 0 || lh != rh)
		return -1;

	return lh + (n->red ? 0 : 1);
}


static unsigned log2_up(unsigned v)
{
	unsigned l = 0;

	while ((1u << l) < v)
		++l;

	return l;
}


/* the tree against the array of what is in it */
static bool tree_ok(const struct rbt *t)
{
	const struct rbt_node *n;
	unsigned count = 0, i, maxdepth = 0;
	uint64_t last = 0;

	if (t->root && (t->root->red || t->root->p))
		return false;
	if (check_sub(t->root, 1, &maxdepth) < 0)
		return false;
	if (maxdepth > 2 * log2_up(t->n + 1))
		return false;

	for (n = rbt_first(t); n; n = rbt_next(n)) {
		if (n->key < last || !in[(struct rbt_node *)n - nodes])
			return false;
		last = n->key;
		++count;
	}

	for (i = 0; i < N; i++)
		count -= in[i] ? 1 : 0;

	return count == 0;
}


static const struct rbt_node *after_slow(uint64_t key)
{
	const struct rbt_node *best = NULL;
	unsigned i;

	for (i = 0; i < N; i++) {
		if (in[i] && nodes[i].key > key &&
		    (!best || nodes[i].key < best->key))
			best = &nodes[i];
	}

	return best;
}


int main(void)
{
	struct rbt t;
	unsigned i, bad = 0, badseek = 0, n_in = 0;

	memset(&t, 0, sizeof(t));
	srand(7);

	for (i = 0; i < N; i++) {
		/* a few equal keys among them */
		nodes[i].key = (uint64_t)(rand() % (N * 4)) * 1000;
		nodes[i].data = &nodes[i];
	}

	CHECK(rbt_first(&t) == NULL);
	CHECK(rbt_after(&t, 0) == NULL);

	for (i = 0; i < ROUNDS; i++) {
		unsigned k = (unsigned)rand() % N;

		if (in[k]) {
			rbt_remove(&t, &nodes[k]);
			in[k] = false;
			--n_in;
		}
		else {
			rbt_insert(&t, &nodes[k]);
			in[k] = true;
			++n_in;
		}

		if (t.n != n_in)
			++bad;

		/* the full check is O(n): every 50th step, and at the end */
		if (i % 50 == 0 && !tree_ok(&t))
			++bad;

		if (i % 10 == 0) {
			uint64_t key = (uint64_t)(rand() % (N * 4)) * 1000 +
				(uint64_t)(rand() % 2) * 500;
			const struct rbt_node *a = rbt_after(&t, key);
			const struct rbt_node *s = after_slow(key);

			if ((a == NULL) != (s == NULL) ||
			    (a && a->key != s->key))
				++badseek;
		}
	}
	CHECK(bad == 0);
	CHECK(badseek == 0);
	CHECK(tree_ok(&t));

	/* removing a node twice changes nothing */
	for (i = 0; i < N && !in[i]; i++)
		;
	if (i < N) {
		uint32_t before = t.n;

		rbt_remove(&t, &nodes[i]);
		in[i] = false;
		rbt_remove(&t, &nodes[i]);
		CHECK(t.n == before - 1);
		CHECK(tree_ok(&t));
	}

	/* everything out: empty */
	for (i = 0; i < N; i++) {
		if (in[i]) {
			rbt_remove(&t, &nodes[i]);
			in[i] = false;
		}
	}
	CHECK(t.n == 0 && t.root == NULL);

	/* call ids are ordered as the numbers their hex digits write */
	CHECK(call_id_key("0000000000000001") == 1);
	CHECK(call_id_key("ffffffffffffffff") == UINT64_MAX);
	CHECK(call_id_key("00000000000000ff") < call_id_key("0000000000000100"));
	CHECK(call_id_key("1") == (uint64_t)1 << 60);
	CHECK(call_id_key("") == 0);

	return check_report("rbtree");
}
