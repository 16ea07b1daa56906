/**
 * @file limit.c  Limits at the door: token buckets per source address, per
 *                account and for the whole node
 *
 * Every request that reaches the B2BUA outside a known dialog is charged to
 * a bucket of its source address (INVITEs and other requests apart) and an
 * initial INVITE to the node's bucket as well; a call, once its account is
 * known, to that account's bucket.  A bucket holds BURST tokens and gains
 * RATE a second; a request that finds it empty is refused before anything
 * is created for it.
 *
 * The buckets of sources and accounts live in hash tables of bounded size.
 * An entry untouched for a while is as good as a full bucket, so it is
 * dropped: each miss drops a few of the least recently used idle entries,
 * and a full table drops its least recently used one.  Every request costs
 * one hash look-up and no timer.
 */

#include <string.h>
#include <arpa/inet.h>
#include "b2bua_int.h"


enum {
	LIM_KEY_MAX   = 16,
	LIM_IDLE_MS   = 60000,   /* untouched this long: dropped          */
	LIM_SWEEP     = 4,       /* idle entries dropped per miss at most */
	LIM_ACCOUNTS  = 65536,   /* accounts tracked at most              */
};

struct lim_entry {
	struct le he;            /* lim_table.ht                          */
	struct le le;            /* lim_table.lru, oldest first           */
	uint8_t key[LIM_KEY_MAX];
	size_t keylen;
	uint64_t used_ms;
	const struct cfg_peer *peer;  /* borrowed: the source's peer     */
	struct lim_bucket b[2];  /* sources: INVITE, other; accounts: [0] */
};

struct lim_table {
	struct hash *ht;         /* owned                                 */
	struct list lru;         /* struct lim_entry, owned               */
	uint32_t n;
	uint32_t max;
};

struct limiter {
	const struct b2bua_conf *cfg;  /* borrowed                       */
	struct lim_table src;
	struct lim_table acct;
	struct lim_bucket global;
};


static const char * const limit_namev[B2BUA_LIMIT_COUNT] = {
	"source_invite", "source_request", "account_cps", "global_invite",
};


/** The metrics label of a limit */
const char *b2bua_limit_name(enum b2bua_limit lim)
{
	return (unsigned)lim < B2BUA_LIMIT_COUNT ? limit_namev[lim] : "?";
}


void lim_bucket_fill(struct lim_bucket *bk, const struct cfg_limit *l,
		     uint64_t now)
{
	bk->milli = (uint64_t)l->burst * 1000;
	bk->last_ms = now;
}


/**
 * Take one token; if there is none, *waitp is the number of seconds until
 * there is (at least 1)
 */
bool lim_bucket_take(struct lim_bucket *bk, const struct cfg_limit *l,
		     uint64_t now, uint32_t *waitp)
{
	uint64_t cap = (uint64_t)l->burst * 1000, t = bk->milli;

	if (now > bk->last_ms) {
		uint64_t dt = now - bk->last_ms;

		/* RATE a second is RATE milli-tokens a millisecond */
		t = dt >= cap ? cap : t + dt * l->rate;
	}
	if (t > cap)
		t = cap;
	bk->last_ms = now;

	if (t >= 1000) {
		bk->milli = t - 1000;
		return true;
	}

	bk->milli = t;
	*waitp = (uint32_t)(((1000 - t) / l->rate + 999) / 1000);
	if (!*waitp)
		*waitp = 1;

	return false;
}


static void entry_destructor(void *arg)
{
	struct lim_entry *e = arg;

	hash_unlink(&e->he);
	list_unlink(&e->le);
}


static int table_init(struct lim_table *t, uint32_t max)
{
	t->max = max;
	list_init(&t->lru);

	return hash_alloc(&t->ht, hash_valid_size(max / 2 + 1));
}


static void table_close(struct lim_table *t)
{
	list_flush(&t->lru);
	t->ht = mem_deref(t->ht);
	t->n = 0;
}


static void entry_drop(struct lim_table *t, struct lim_entry *e)
{
	mem_deref(e);
	--t->n;
}


struct key_arg {
	const uint8_t *key;
	size_t len;
};


static bool key_cmp(struct le *le, void *arg)
{
	const struct lim_entry *e = le->data;
	const struct key_arg *k = arg;

	return e->keylen == k->len && !memcmp(e->key, k->key, k->len);
}


/**
 * The entry of a key, made if there is none (*newp true: its buckets are
 * for the caller to fill)
 */
static struct lim_entry *table_get(struct lim_table *t, const uint8_t *key,
				   size_t len, uint64_t now, bool *newp)
{
	struct key_arg k = { key, len };
	uint32_t h = hash_joaat(key, len);
	struct lim_entry *e;
	struct le *le;
	unsigned i;

	le = hash_lookup(t->ht, h, key_cmp, &k);
	if (le) {
		e = le->data;
		e->used_ms = now;
		list_unlink(&e->le);
		list_append(&t->lru, &e->le, e);
		*newp = false;
		return e;
	}

	for (i = 0; i < LIM_SWEEP && t->lru.head; i++) {
		e = t->lru.head->data;
		if (now - e->used_ms < LIM_IDLE_MS)
			break;
		entry_drop(t, e);
	}

	if (t->n >= t->max && t->lru.head)
		entry_drop(t, t->lru.head->data);

	e = mem_zalloc(sizeof(*e), entry_destructor);
	if (!e)
		return NULL;

	memcpy(e->key, key, len);
	e->keylen = len;
	e->used_ms = now;
	hash_append(t->ht, h, &e->he, e);
	list_append(&t->lru, &e->le, e);
	++t->n;
	*newp = true;

	return e;
}


static void destructor(void *arg)
{
	struct limiter *l = arg;

	table_close(&l->src);
	table_close(&l->acct);
}


int limiter_alloc(struct limiter **lp, const struct b2bua_conf *cfg)
{
	struct limiter *l;
	int err;

	if (!lp || !cfg)
		return EINVAL;

	l = mem_zalloc(sizeof(*l), destructor);
	if (!l)
		return ENOMEM;

	l->cfg = cfg;
	lim_bucket_fill(&l->global, &cfg->global_invite, tmr_jiffies());

	err  = table_init(&l->src, cfg->limit_sources ? cfg->limit_sources
			  : 1);
	err |= table_init(&l->acct, LIM_ACCOUNTS);
	if (err)
		mem_deref(l);
	else
		*lp = l;

	return err;
}


/**
 * Limits of a new configuration (a reload): the buckets keep their
 * tokens, refilled at the new rates from now on
 */
void limiter_set_conf(struct limiter *l, const struct b2bua_conf *cfg)
{
	if (!l || !cfg)
		return;

	l->cfg = cfg;
}


/* the address bytes of a source, an IPv4-mapped one as IPv4 */
static size_t src_key(uint8_t *key, const struct sa *src)
{
	if (sa_af(src) == AF_INET) {
		uint32_t a = htonl(sa_in(src));

		memcpy(key, &a, 4);
		return 4;
	}

	sa_in6(src, key);
	if (IN6_IS_ADDR_V4MAPPED(&src->u.in6.sin6_addr)) {
		memmove(key, key + 12, 4);
		return 4;
	}

	return 16;
}


/**
 * Charge a request to the buckets it belongs to
 *
 * @param l       the limiter
 * @param msg     a request outside any known dialog (not an ACK)
 * @param invite  an initial INVITE
 * @param retryp  when refused: seconds until the bucket has a token
 *
 * @return B2BUA_LIMIT_COUNT if the request may pass, else the limit hit
 */
enum b2bua_limit limiter_request(struct limiter *l, const struct sip_msg *msg,
				 bool invite, uint32_t *retryp)
{
	return limiter_source(l, &msg->src, msg->tp, invite, retryp);
}


/**
 * Take a token for a request from src (limiter_request() without the
 * message: for a datagram that did not decode)
 */
enum b2bua_limit limiter_source(struct limiter *l, const struct sa *src,
				enum sip_transp tp, bool invite,
				uint32_t *retryp)
{
	const struct b2bua_conf *cfg = l->cfg;
	const struct cfg_limit *lim;
	const struct cfg_peer *peer;
	uint8_t key[LIM_KEY_MAX];
	uint64_t now = tmr_jiffies();
	struct lim_entry *e;
	size_t len;
	bool fresh;

	len = src_key(key, src);
	e = table_get(&l->src, key, len, now, &fresh);
	if (!e)
		return B2BUA_LIMIT_COUNT;   /* out of memory: let it in */

	if (fresh) {
		e->peer = cfg_peer_find(cfg, src, tp);
		peer = e->peer;
		lim_bucket_fill(&e->b[0], peer ? (peer->invite_set ?
			    &peer->invite : &cfg->peer_invite) :
			    &cfg->src_invite, now);
		lim_bucket_fill(&e->b[1], peer ? (peer->request_set ?
			    &peer->request : &cfg->peer_request) :
			    &cfg->src_request, now);
	}
	peer = e->peer;

	if (peer && peer->limit_off)
		return B2BUA_LIMIT_COUNT;

	if (invite)
		lim = peer ? (peer->invite_set ? &peer->invite :
			      &cfg->peer_invite) : &cfg->src_invite;
	else
		lim = peer ? (peer->request_set ? &peer->request :
			      &cfg->peer_request) : &cfg->src_request;

	if (lim->rate && !lim_bucket_take(&e->b[invite ? 0 : 1], lim, now,
				      retryp))
		return invite ? B2BUA_LIMIT_SOURCE_INVITE :
			B2BUA_LIMIT_SOURCE_REQUEST;

	if (invite && cfg->global_invite.rate &&
	    !lim_bucket_take(&l->global, &cfg->global_invite, now, retryp))
		return B2BUA_LIMIT_GLOBAL;

	return B2BUA_LIMIT_COUNT;
}


/**
 * Charge a call to its account's bucket: max_cps calls a second, as many
 * at once
 *
 * @return true if the call may go on
 */
bool limiter_account(struct limiter *l, int64_t account_id, uint32_t max_cps,
		     uint32_t *retryp)
{
	struct cfg_limit lim = { max_cps, max_cps };
	uint64_t now = tmr_jiffies();
	struct lim_entry *e;
	bool fresh;

	if (!max_cps)
		return true;

	e = table_get(&l->acct, (const uint8_t *)&account_id,
		      sizeof(account_id), now, &fresh);
	if (!e)
		return true;

	if (fresh)
		lim_bucket_fill(&e->b[0], &lim, now);

	return lim_bucket_take(&e->b[0], &lim, now, retryp);
}


/** Source addresses tracked now */
uint32_t limiter_sources(const struct limiter *l)
{
	return l ? l->src.n : 0;
}
