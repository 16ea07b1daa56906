/**
 * @file nonce.c  Digest nonces: made, checked, and each count taken once
 *
 * A nonce is the time it was made, 64 random bits and an HMAC of both and
 * the source address under a key made at start: no state is kept until an
 * answer to it is taken.  Then the highest nonce count taken is kept until
 * the nonce expires, and an answer with a count not higher is a replay.
 */

#include <string.h>
#include "b2bua_int.h"

enum {
	NONCE_TS_LEN   = 8,      /* hex seconds                          */
	NONCE_RAND_LEN = 16,     /* hex of 64 random bits                */
	NONCE_MAC_LEN  = 12,     /* bytes of HMAC-SHA1, hex-encoded      */
	NONCE_LEN      = NONCE_TS_LEN + NONCE_RAND_LEN + 2 * NONCE_MAC_LEN,
	NONCE_MAX_USES = 262144, /* answers remembered at once           */
};

/** The highest nonce count seen per nonce, until the nonce expires */
struct nonce_use {
	struct le he;
	struct le le;                /**< nonce_table.usel, oldest first */
	char nonce[NONCE_LEN + 1];
	uint32_t nc;
	uint64_t expires;            /**< s (tmr_jiffies / 1000)         */
};

struct nonce_table {
	struct hash *ht;             /**< struct nonce_use by nonce      */
	struct list usel;            /**< owned                          */
	uint32_t n;
};


static void use_destructor(void *arg)
{
	struct nonce_use *u = arg;

	hash_unlink(&u->he);
	list_unlink(&u->le);
}


static void table_destructor(void *arg)
{
	struct nonce_table *t = arg;

	list_flush(&t->usel);
	mem_deref(t->ht);
}


int nonce_alloc(struct b2bua *b)
{
	struct nonce_table *t;
	int err;

	t = mem_zalloc(sizeof(*t), table_destructor);
	if (!t)
		return ENOMEM;

	err = hash_alloc(&t->ht, 16384);
	if (err) {
		mem_deref(t);
		return err;
	}

	b->nonces = t;

	return 0;
}


static bool use_cmp(struct le *le, void *arg)
{
	const struct nonce_use *u = le->data;

	return 0 == pl_strcmp(arg, u->nonce);
}


static struct nonce_use *use_find(struct nonce_table *t,
				  const struct pl *nonce)
{
	uint64_t now = tmr_jiffies() / 1000;
	struct le *le;

	/* forget what expired (kept in the order first used) */
	while ((le = t->usel.head)) {
		struct nonce_use *u = le->data;

		if (u->expires > now)
			break;
		--t->n;
		mem_deref(u);
	}

	return list_ledata(hash_lookup(t->ht, hash_joaat_ci(nonce->p,
							      nonce->l),
				       use_cmp, (void *)nonce));
}


/** 0: nc is new for the nonce and now taken; EALREADY: seen before */
int nonce_take(struct b2bua *b, const struct pl *nonce, uint32_t nc)
{
	struct nonce_table *t = b->nonces;
	struct nonce_use *u = use_find(t, nonce);
	uint64_t ts;
	struct pl tsp;

	if (u) {
		if (nc <= u->nc)
			return EALREADY;
		u->nc = nc;
		return 0;
	}

	if (t->n >= NONCE_MAX_USES || nonce->l != NONCE_LEN)
		return ENOSPC;

	u = mem_zalloc(sizeof(*u), use_destructor);
	if (!u)
		return ENOMEM;

	(void)pl_strcpy(nonce, u->nonce, sizeof(u->nonce));
	u->nc = nc;
	tsp.p = nonce->p;
	tsp.l = NONCE_TS_LEN;
	ts = pl_x64(&tsp);
	u->expires = ts + b->cfg->nonce_ttl + 1;

	hash_append(t->ht, hash_joaat_ci(nonce->p, nonce->l), &u->he, u);
	list_append(&t->usel, &u->le, u);
	++t->n;

	return 0;
}


int nonce_make(char *buf, size_t sz, const struct b2bua *b,
	       const struct sa *src, uint64_t now_s, uint64_t rnd)
{
	uint8_t md[20];   /* SHA-1 */
	char data[96];
	int n;

	n = re_snprintf(data, sizeof(data), "%08llx%016llx:%j", now_s, rnd,
			src);
	if (n <= 0)
		return EINVAL;

	hmac_sha1(b->nonce_key, sizeof(b->nonce_key), (uint8_t *)data,
		  (size_t)n, md, sizeof(md));

	return re_snprintf(buf, sz, "%08llx%016llx%w", now_s, rnd, md,
			   (size_t)NONCE_MAC_LEN) > 0 ? 0 : EINVAL;
}


/** 0 if valid, ETIMEDOUT if expired (stale), EAUTH if forged */
int nonce_check(const struct b2bua *b, const struct pl *nonce,
		const struct sa *src)
{
	char expect[64];
	struct pl ts, rnd;
	uint64_t t, now = tmr_jiffies() / 1000;

	if (nonce->l != NONCE_LEN)
		return EAUTH;

	ts.p = nonce->p;
	ts.l = NONCE_TS_LEN;
	rnd.p = nonce->p + NONCE_TS_LEN;
	rnd.l = NONCE_RAND_LEN;
	t = pl_x64(&ts);

	if (nonce_make(expect, sizeof(expect), b, src, t, pl_x64(&rnd)))
		return EAUTH;

	if (pl_strcmp(nonce, expect))
		return EAUTH;

	if (t > now || now - t > b->cfg->nonce_ttl)
		return ETIMEDOUT;

	return 0;
}


/** Was this count (or a higher one) of the nonce taken already? */
bool nonce_seen(struct b2bua *b, const struct pl *nonce, uint32_t nc)
{
	struct nonce_use *u = use_find(b->nonces, nonce);

	return u && nc <= u->nc;
}
