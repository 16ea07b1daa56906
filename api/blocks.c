/**
 * @file blocks.c  REST API: authentication-failure blocks
 *
 *   GET    /v1/blocks[?all=1]    sources and user names blocked now (all:
 *                                also those with recent failures)
 *   DELETE /v1/blocks/{id}       lift a block (admin token)
 *
 * The blocks are the B2BUA's, in memory on this node.
 */

#include <string.h>
#include "api_int.h"


struct blocks_ctx {
	struct odict *arr;
	uint32_t n;
	int err;
};


static int block_odict(struct odict **odp, const struct b2bua_block *blk)
{
	struct odict *o;
	int err;

	err = odict_alloc(&o, 16);
	if (err)
		return err;

	err  = odict_entry_add(o, "id", ODICT_INT, (int64_t)blk->id);
	err |= odict_entry_add(o, "kind", ODICT_STRING,
			       b2bua_block_kind_name(blk->kind));
	err |= odict_entry_add(o, "key", ODICT_STRING, blk->key);
	err |= odict_entry_add(o, "blocked", ODICT_BOOL, blk->blocked);
	err |= odict_entry_add(o, "failures", ODICT_INT,
			       (int64_t)blk->failures);
	err |= odict_entry_add(o, "blocks", ODICT_INT, (int64_t)blk->level);
	err |= odict_entry_add(o, "refused", ODICT_INT,
			       (int64_t)blk->refused);
	err |= api_add_time(o, "since", blk->since_ms);
	err |= api_add_time(o, "until", blk->until_ms);

	if (err)
		mem_deref(o);
	else
		*odp = o;

	return err;
}


static bool blocks_apply(const struct b2bua_block *blk, void *arg)
{
	struct blocks_ctx *ctx = arg;
	struct odict *o;
	char key[16];

	ctx->err = block_odict(&o, blk);
	if (ctx->err)
		return true;

	(void)re_snprintf(key, sizeof(key), "%u", ctx->n++);
	ctx->err = odict_entry_add(ctx->arr, key, ODICT_OBJECT, o);
	mem_deref(o);

	return ctx->err != 0;
}


/** GET /v1/blocks */
void api_blocks_h(struct api_req *req)
{
	struct blocks_ctx ctx;
	const char *all = api_arg(req, "all");
	int err;

	memset(&ctx, 0, sizeof(ctx));

	err = odict_alloc(&ctx.arr, 64);
	if (!err) {
		b2bua_block_apply(req->api->b2bua,
				  !(all && !strcmp(all, "1")),
				  blocks_apply, &ctx);
		err = ctx.err;
	}

	api_reply_list(req, "blocks", ctx.arr, ctx.n, err);
	mem_deref(ctx.arr);
}


/** DELETE /v1/blocks/{id} */
void api_block_h(struct api_req *req)
{
	struct odict *od = NULL;
	int64_t id;
	int err;

	if (api_id(req, &id))
		return;

	if (b2bua_block_lift(req->api->b2bua, (uint64_t)id)) {
		api_error(req, 404, "id", "no block %lld", (long long)id);
		return;
	}

	err  = odict_alloc(&od, 4);
	err |= odict_entry_add(od, "id", ODICT_INT, id);
	err |= odict_entry_add(od, "lifted", ODICT_BOOL, true);
	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(od);
}
