/**
 * @file rbtree.c  A red-black tree of nodes ordered by a 64-bit key
 *
 * Intrusive, like libre's lists: the node lives in the object it orders
 * and points back at it.  Insertion, removal and the seek to the first
 * node after a key are O(log n); walking on from a node is amortised
 * O(1).  Equal keys are kept, in the order they were inserted.  Used for
 * the B2BUA's calls in the order of their id (b2bua_call_apply_sorted()).
 */

#include <string.h>
#include "b2bua_int.h"


static void rotate_left(struct rbt *t, struct rbt_node *x)
{
	struct rbt_node *y = x->r;

	x->r = y->l;
	if (y->l)
		y->l->p = x;
	y->p = x->p;
	if (!x->p)
		t->root = y;
	else if (x == x->p->l)
		x->p->l = y;
	else
		x->p->r = y;
	y->l = x;
	x->p = y;
}


static void rotate_right(struct rbt *t, struct rbt_node *x)
{
	struct rbt_node *y = x->l;

	x->l = y->r;
	if (y->r)
		y->r->p = x;
	y->p = x->p;
	if (!x->p)
		t->root = y;
	else if (x == x->p->r)
		x->p->r = y;
	else
		x->p->l = y;
	y->r = x;
	x->p = y;
}


static bool is_red(const struct rbt_node *n)
{
	return n && n->red;
}


/** Insert a node that is in no tree; key and data set by the caller */
void rbt_insert(struct rbt *t, struct rbt_node *n)
{
	struct rbt_node *p = NULL, *c = t->root;

	while (c) {
		p = c;
		c = n->key < c->key ? c->l : c->r;
	}

	n->p = p;
	n->l = n->r = NULL;
	n->red = true;
	n->linked = true;
	if (!p)
		t->root = n;
	else if (n->key < p->key)
		p->l = n;
	else
		p->r = n;
	++t->n;

	while (is_red(n->p)) {
		struct rbt_node *g = n->p->p, *u;

		if (n->p == g->l) {
			u = g->r;
			if (is_red(u)) {
				n->p->red = false;
				u->red = false;
				g->red = true;
				n = g;
				continue;
			}
			if (n == n->p->r) {
				n = n->p;
				rotate_left(t, n);
			}
			n->p->red = false;
			g->red = true;
			rotate_right(t, g);
		}
		else {
			u = g->l;
			if (is_red(u)) {
				n->p->red = false;
				u->red = false;
				g->red = true;
				n = g;
				continue;
			}
			if (n == n->p->l) {
				n = n->p;
				rotate_right(t, n);
			}
			n->p->red = false;
			g->red = true;
			rotate_left(t, g);
		}
	}

	t->root->red = false;
}


static struct rbt_node *min_of(struct rbt_node *n)
{
	while (n && n->l)
		n = n->l;

	return n;
}


/* put v where u was (u's parent now points at v) */
static void transplant(struct rbt *t, struct rbt_node *u,
		       struct rbt_node *v)
{
	if (!u->p)
		t->root = v;
	else if (u == u->p->l)
		u->p->l = v;
	else
		u->p->r = v;
	if (v)
		v->p = u->p;
}


static void remove_fixup(struct rbt *t, struct rbt_node *x,
			 struct rbt_node *xp)
{
	while (x != t->root && !is_red(x)) {
		struct rbt_node *w;

		if (x == xp->l) {
			w = xp->r;
			if (is_red(w)) {
				w->red = false;
				xp->red = true;
				rotate_left(t, xp);
				w = xp->r;
			}
			if (!is_red(w->l) && !is_red(w->r)) {
				w->red = true;
				x = xp;
				xp = x->p;
				continue;
			}
			if (!is_red(w->r)) {
				w->l->red = false;
				w->red = true;
				rotate_right(t, w);
				w = xp->r;
			}
			w->red = xp->red;
			xp->red = false;
			w->r->red = false;
			rotate_left(t, xp);
			x = t->root;
		}
		else {
			w = xp->l;
			if (is_red(w)) {
				w->red = false;
				xp->red = true;
				rotate_right(t, xp);
				w = xp->l;
			}
			if (!is_red(w->l) && !is_red(w->r)) {
				w->red = true;
				x = xp;
				xp = x->p;
				continue;
			}
			if (!is_red(w->l)) {
				w->r->red = false;
				w->red = true;
				rotate_left(t, w);
				w = xp->l;
			}
			w->red = xp->red;
			xp->red = false;
			w->l->red = false;
			rotate_right(t, xp);
			x = t->root;
		}
	}

	if (x)
		x->red = false;
}


/** Take a node out of its tree; a node in no tree is left alone */
void rbt_remove(struct rbt *t, struct rbt_node *z)
{
	struct rbt_node *x, *xp, *y = z;
	bool y_red = y->red;

	if (!z->linked)
		return;

	if (!z->l) {
		x = z->r;
		xp = z->p;
		transplant(t, z, z->r);
	}
	else if (!z->r) {
		x = z->l;
		xp = z->p;
		transplant(t, z, z->l);
	}
	else {
		y = min_of(z->r);
		y_red = y->red;
		x = y->r;
		if (y->p == z) {
			xp = y;
		}
		else {
			xp = y->p;
			transplant(t, y, y->r);
			y->r = z->r;
			y->r->p = y;
		}
		transplant(t, z, y);
		y->l = z->l;
		y->l->p = y;
		y->red = z->red;
	}

	if (!y_red)
		remove_fixup(t, x, xp);

	z->p = z->l = z->r = NULL;
	z->linked = false;
	--t->n;
}


struct rbt_node *rbt_first(const struct rbt *t)
{
	return min_of(t->root);
}


/** The node after n in the order of the keys, NULL after the last */
struct rbt_node *rbt_next(const struct rbt_node *n)
{
	const struct rbt_node *p;

	if (n->r)
		return min_of(n->r);

	for (p = n->p; p && n == p->r; p = p->p)
		n = p;

	return (struct rbt_node *)p;
}


/** The first node whose key is greater than key, NULL if none */
struct rbt_node *rbt_after(const struct rbt *t, uint64_t key)
{
	struct rbt_node *c = t->root, *best = NULL;

	while (c) {
		if (c->key > key) {
			best = c;
			c = c->l;
		}
		else {
			c = c->r;
		}
	}

	return best;
}
