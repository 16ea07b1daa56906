/**
 * @file guard.c  The door toward unauthenticated sources: failure blocks
 *                and bounded stateless answers
 *
 * A source address or a digest user name that fails authentication
 * auth_fail_limit times within auth_fail_window seconds is blocked for
 * auth_block_time seconds, twice as long with every block after (up to
 * auth_block_max).  A blocked source or user name hears what any failure
 * hears and costs no database look-up.  The entries live in memory on this
 * node; an entry is forgotten a day after its last block ended (or after
 * its window, if it never was blocked).
 *
 * A source that has not authenticated gets at most one answer per request,
 * sent without a server transaction (never retransmitted), and over UDP
 * never one larger than the request: a spoofed source cannot be made a
 * target of amplified traffic.
 */

#include <string.h>
#include "b2bua_int.h"


enum {
	GUARD_MAX_ENTRIES = 32768,   /* per kind: memory stays bounded   */
	GUARD_PURGE_MS    = 5000,
	GUARD_FORGET_S    = 86400,   /* level kept after a block ended   */
	GUARD_KEY_LEN     = 64,
};

struct guard_entry {
	struct le he;                /**< guard.ht                       */
	struct le le;                /**< guard.entl                     */
	uint64_t id;
	enum b2bua_block_kind kind;
	char key[GUARD_KEY_LEN];
	uint32_t nfail;
	uint64_t win_start;          /**< ms (tmr_jiffies)               */
	uint64_t last;               /**< ms: last failure               */
	uint32_t level;
	uint64_t since;              /**< ms: block began, 0 = none      */
	uint64_t until;              /**< ms: block ends, 0 = none       */
	uint64_t refused;
};

struct guard {
	struct b2bua *b;             /**< borrowed                       */
	struct hash *ht;             /**< entries by kind and key        */
	struct list entl;            /**< struct guard_entry, owned      */
	uint32_t count[2];
	uint64_t next_id;
	struct tmr tmr;
};


static uint32_t key_hash(enum b2bua_block_kind kind, const char *key)
{
	return hash_joaat_str(key) ^ (uint32_t)kind;
}


struct key_ctx {
	enum b2bua_block_kind kind;
	const char *key;
};


static bool key_cmp(struct le *le, void *arg)
{
	const struct guard_entry *e = le->data;
	const struct key_ctx *ctx = arg;

	return e->kind == ctx->kind && !strcmp(e->key, ctx->key);
}


static struct guard_entry *entry_find(const struct guard *g,
				      enum b2bua_block_kind kind,
				      const char *key)
{
	struct key_ctx ctx = { kind, key };

	return list_ledata(hash_lookup(g->ht, key_hash(kind, key), key_cmp,
				       &ctx));
}


static void entry_destructor(void *arg)
{
	struct guard_entry *e = arg;

	hash_unlink(&e->he);
	list_unlink(&e->le);
}


static void entry_remove(struct guard *g, struct guard_entry *e)
{
	if (g->count[e->kind])
		--g->count[e->kind];
	mem_deref(e);
}


static bool entry_blocked(const struct guard_entry *e, uint64_t now)
{
	return e->until && now < e->until;
}


static void count_active(struct guard *g, uint64_t now)
{
	struct le *le;
	uint32_t n = 0;

	for (le = g->entl.head; le; le = le->next)
		n += entry_blocked(le->data, now);

	g->b->st.blocks_active = n;
}


static void purge(void *arg)
{
	struct guard *g = arg;
	uint64_t now = tmr_jiffies();
	const struct b2bua_conf *cfg = g->b->cfg;
	struct le *le = g->entl.head;

	while (le) {
		struct guard_entry *e = le->data;
		uint64_t keep;

		le = le->next;

		if (entry_blocked(e, now))
			continue;

		keep = e->until ? e->until + GUARD_FORGET_S * 1000ULL
			: e->win_start + cfg->auth_fail_window * 1000ULL;
		if (now >= keep)
			entry_remove(g, e);
	}

	count_active(g, now);
	tmr_start(&g->tmr, GUARD_PURGE_MS, purge, g);
}


static void guard_destructor(void *arg)
{
	struct guard *g = arg;

	tmr_cancel(&g->tmr);
	list_flush(&g->entl);
	mem_deref(g->ht);
}


int guard_alloc(struct guard **gp, struct b2bua *b)
{
	struct guard *g;
	int err;

	g = mem_zalloc(sizeof(*g), guard_destructor);
	if (!g)
		return ENOMEM;

	g->b = b;
	err = hash_alloc(&g->ht, 4096);
	if (err) {
		mem_deref(g);
		return err;
	}

	tmr_start(&g->tmr, GUARD_PURGE_MS, purge, g);
	*gp = g;

	return 0;
}


static void src_key(char *buf, size_t sz, const struct sa *src)
{
	(void)re_snprintf(buf, sz, "%j", src);
}


static bool blocked(struct guard *g, enum b2bua_block_kind kind,
		    const char *key)
{
	struct guard_entry *e;

	if (!g || !key || !*key)
		return false;

	e = entry_find(g, kind, key);
	if (!e || !entry_blocked(e, tmr_jiffies()))
		return false;

	++e->refused;
	++g->b->st.auth_blocked;

	return true;
}


/** Is this source address blocked? (counts a refused request if so) */
bool guard_src_blocked(struct guard *g, const struct sa *src)
{
	char key[GUARD_KEY_LEN];

	src_key(key, sizeof(key), src);

	return blocked(g, B2BUA_BLOCK_SOURCE, key);
}


/** Is this digest user name blocked? (counts a refused request if so) */
bool guard_user_blocked(struct guard *g, const char *user)
{
	return blocked(g, B2BUA_BLOCK_USER, user);
}


/*
 * Keys go to the log and to JSON: printable ASCII only (a user name with
 * other bytes is not tracked; its source still is)
 */
static bool key_ok(const char *key)
{
	size_t i;

	for (i = 0; key[i]; i++) {
		if (key[i] < 0x21 || key[i] > 0x7e || key[i] == '"' ||
		    key[i] == '\\')
			return false;
	}

	return i > 0 && i < GUARD_KEY_LEN;
}


static void fail(struct guard *g, enum b2bua_block_kind kind,
		 const char *key)
{
	const struct b2bua_conf *cfg = g->b->cfg;
	uint64_t now = tmr_jiffies(), dur;
	struct guard_entry *e;

	if (!key || !key_ok(key))
		return;

	e = entry_find(g, kind, key);
	if (!e) {
		if (g->count[kind] >= GUARD_MAX_ENTRIES)
			return;

		e = mem_zalloc(sizeof(*e), entry_destructor);
		if (!e)
			return;

		e->id = ++g->next_id;
		e->kind = kind;
		str_ncpy(e->key, key, sizeof(e->key));
		hash_append(g->ht, key_hash(kind, key), &e->he, e);
		list_append(&g->entl, &e->le, e);
		++g->count[kind];
	}

	if (entry_blocked(e, now))
		return;

	if (!e->nfail || now - e->win_start >= cfg->auth_fail_window * 1000ULL) {
		e->nfail = 0;
		e->win_start = now;
	}
	++e->nfail;
	e->last = now;

	if (!cfg->auth_fail_limit || e->nfail < cfg->auth_fail_limit)
		return;

	dur = cfg->auth_block_time;
	if (e->level < 32)
		dur <<= e->level;
	if (e->level >= 32 || dur > cfg->auth_block_max)
		dur = cfg->auth_block_max;

	++e->level;
	e->nfail = 0;
	e->since = now;
	e->until = now + dur * 1000;
	++g->b->st.auth_blocks;
	++g->b->st.blocks_active;

	tlog_warn(NULL, "auth: %s %s blocked for %llu s after %u failures"
		  " (block %u)", b2bua_block_kind_name(kind), key,
		  (unsigned long long)dur, cfg->auth_fail_limit, e->level);
}


/** One failed authentication of a source and (if known) a user name */
void guard_fail(struct guard *g, const struct sa *src, const char *user)
{
	char key[GUARD_KEY_LEN];

	if (!g)
		return;

	++g->b->st.auth_failures;

	src_key(key, sizeof(key), src);
	fail(g, B2BUA_BLOCK_SOURCE, key);

	if (user)
		fail(g, B2BUA_BLOCK_USER, user);
}


const char *b2bua_block_kind_name(enum b2bua_block_kind kind)
{
	return kind == B2BUA_BLOCK_USER ? "user" : "source";
}


/**
 * Call h for each source and user name with recent failures (blocked_only:
 * only those blocked now)
 */
void b2bua_block_apply(const struct b2bua *b, bool blocked_only,
		       b2bua_block_h *h, void *arg)
{
	uint64_t now = tmr_jiffies(), wall = b2bua_wallclock_ms();
	struct le *le;

	if (!b || !b->guard || !h)
		return;

	for (le = b->guard->entl.head; le; le = le->next) {
		const struct guard_entry *e = le->data;
		struct b2bua_block blk;

		memset(&blk, 0, sizeof(blk));
		blk.id = e->id;
		blk.kind = e->kind;
		blk.key = e->key;
		blk.failures = e->nfail;
		blk.level = e->level;
		blk.blocked = entry_blocked(e, now);
		blk.refused = e->refused;
		if (blk.blocked) {
			blk.since_ms = wall - (now - e->since);
			blk.until_ms = wall + (e->until - now);
		}

		if (blocked_only && !blk.blocked)
			continue;

		if (h(&blk, arg))
			break;
	}
}


/**
 * Lift a block and forget its failures
 *
 * @return 0, or ENOENT if there is no such entry
 */
int b2bua_block_lift(struct b2bua *b, uint64_t id)
{
	struct le *le;

	if (!b || !b->guard)
		return ENOENT;

	for (le = b->guard->entl.head; le; le = le->next) {
		struct guard_entry *e = le->data;

		if (e->id != id)
			continue;

		tlog_info(NULL, "auth: %s %s: block lifted by operator",
			    b2bua_block_kind_name(e->kind), e->key);
		entry_remove(b->guard, e);
		count_active(b->guard, tmr_jiffies());

		return 0;
	}

	return ENOENT;
}


/* ----------------------------------------------------- bounded answers */

static bool via_handler(const struct sip_hdr *hdr, const struct sip_msg *msg,
			void *arg)
{
	(void)msg;
	(void)mbuf_printf(arg, "Via: %r\r\n", &hdr->val);

	return false;
}


static int reply_build(struct mbuf *mb, const struct sip_msg *msg,
		       uint16_t scode, const char *phrase, const char *hdrs)
{
	int err;

	err = mbuf_printf(mb, "SIP/2.0 %u %s\r\n", scode, phrase);
	(void)sip_msg_hdr_apply(msg, true, SIP_HDR_VIA, via_handler, mb);
	err |= mbuf_printf(mb, "To: %r", &msg->to.val);
	if (!pl_isset(&msg->to.tag))
		err |= mbuf_printf(mb, ";tag=%016llx", msg->tag);
	err |= mbuf_printf(mb, "\r\nFrom: %r\r\n"
			   "Call-ID: %r\r\n"
			   "CSeq: %u %r\r\n"
			   "%s"
			   "Content-Length: 0\r\n\r\n",
			   &msg->from.val, &msg->callid, msg->cseq.num,
			   &msg->cseq.met, hdrs ? hdrs : "");

	return err;
}


/**
 * Answer a request of an unauthenticated source once, without a server
 * transaction.  Over UDP the answer is sent only if it is no larger than
 * the request: with hdrs first, else with hdrs_small (if given), else not
 * at all.
 *
 * @return 0 if sent, EMSGSIZE if nothing fitted, or an errno
 */
int guard_reply(struct b2bua *b, const struct sip_msg *msg, uint16_t scode,
		const char *phrase, const char *hdrs, const char *hdrs_small)
{
	struct mbuf *mb;
	struct sa dst;
	struct pl rp;
	size_t limit;
	int err;

	if (!pl_strcmp(&msg->met, "ACK"))
		return 0;

	mb = mbuf_alloc(512);
	if (!mb)
		return ENOMEM;

	limit = msg->tp == SIP_TRANSP_UDP && msg->mb ? msg->mb->end : SIZE_MAX;

	err = reply_build(mb, msg, scode, phrase, hdrs);
	if (!err && mb->end > limit && hdrs_small) {
		mbuf_rewind(mb);
		err = reply_build(mb, msg, scode, phrase, hdrs_small);
	}
	if (err)
		goto out;

	if (mb->end > limit) {
		++b->st.unauth_dropped;
		err = EMSGSIZE;
		goto out;
	}

	sip_reply_addr(&dst, msg,
		       0 == msg_param_exists(&msg->via.params, "rport", &rp));
	mb->pos = 0;
	err = sip_send(b->sip, msg->sock, msg->tp, &dst, mb);

 out:
	mem_deref(mb);
	return err;
}
