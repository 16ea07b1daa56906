/**
 * @file conf.c  The REST API's keys: where it listens, its tokens, the
 *               paths open without one and the largest body
 */

#include <string.h>
#include <re.h>
#include "core.h"
#include "api.h"
#include "api_int.h"


enum {
	CFG_MIN_TOKEN   = 16,
	CFG_MAX_TOKEN   = 256,
};


static void token_destructor(void *arg)
{
	struct cfg_token *tok = arg;

	if (tok->token)
		memset(tok->token, 0, strlen(tok->token));

	mem_deref(tok->token);
}


static int h_api_listen(struct cfg_parser *p, void *mod,
			const struct cfg_key *k, const struct pl *val)
{
	struct api_conf *cfg = mod;
	struct pl arg;
	struct sa sa;
	int err;
	(void)k;

	err = cfg_one_arg(p, val, &arg, "ADDRESS[:PORT], e.g. 127.0.0.1:8080");
	if (err)
		return err;

	err = cfg_get_hostport(p, &arg, 8080, &sa);
	if (err)
		return err;

	cfg->api_listen = sa;

	return 0;
}


static int h_api_token(struct cfg_parser *p, void *mod,
		       const struct cfg_key *k, const struct pl *val)
{
	struct api_conf *cfg = mod;
	static const char * const rolev[] = {"admin", "readonly"};
	struct pl argv[2];
	struct cfg_token *tok;
	struct le *le;
	size_t i, role;
	int err;
	(void)k;

	if (cfg_split_args(val, argv, 2) != 2)
		return cfg_kerr(p, "expected TOKEN admin|readonly");

	if (argv[0].l < CFG_MIN_TOKEN || argv[0].l > CFG_MAX_TOKEN)
		return cfg_kerr(p, "token has %zu characters, it needs %u..%u",
				argv[0].l, CFG_MIN_TOKEN, CFG_MAX_TOKEN);

	for (i = 0; i < argv[0].l; i++) {
		unsigned char c = argv[0].p[i];

		if (c < 0x21 || c > 0x7e)
			return cfg_kerr(p, "token may only contain printable "
					"ASCII characters");
	}

	err = cfg_get_choice(p, &argv[1], rolev, ARRAY_SIZE(rolev), &role);
	if (err)
		return err;

	LIST_FOREACH(&cfg->tokenl, le) {
		const struct cfg_token *o = le->data;

		if (!pl_strcmp(&argv[0], o->token))
			return cfg_kerr(p, "token already listed");
	}

	tok = mem_zalloc(sizeof(*tok), token_destructor);
	if (!tok)
		return ENOMEM;

	tok->admin = (role == 0);

	err = pl_strdup(&tok->token, &argv[0]);
	if (err) {
		mem_deref(tok);
		return err;
	}

	list_append(&cfg->tokenl, &tok->le, tok);

	return 0;
}


/** Tokens are secrets: only their length and role, as a comment */
static int print_tokens(struct re_printf *pf, const void *mod,
			const struct cfg_key *k)
{
	const struct api_conf *cfg = mod;
	struct le *le;
	int err = 0;

	LIST_FOREACH(&cfg->tokenl, le) {
		const struct cfg_token *tok = le->data;

		err |= re_hprintf(pf, "# %s (%zu characters, hidden) %s\n",
				  k->name, strlen(tok->token),
				  tok->admin ? "admin" : "readonly");
	}

	return err;
}


static void conf_destructor(void *arg)
{
	struct api_conf *cfg = arg;

	list_flush(&cfg->tokenl);
}


#define A struct api_conf

static const struct cfg_key keyv[] = {
	{ .name = "api_listen", .parse = h_api_listen,
	  .print = cfg_print_hostport, .off = offsetof(A, api_listen),
	  .def = "127.0.0.1:8080",
	  .doc = "ADDRESS[:PORT] of the REST API (HTTP)" },
	{ .name = "api_token", .parse = h_api_token, .print = print_tokens,
	  .repeat = true,
	  .doc = "TOKEN admin|readonly: a bearer token of the REST API" },
	CFG_YESNO("api_open_metrics", A, api_open_metrics, "no",
		  "GET /metrics without a token"),
	CFG_YESNO("api_open_health", A, api_open_health, "no",
		  "GET /v1/health without a token"),
	CFG_U32("api_max_body", A, api_max_body, 1024, 16777216, "65536",
		"bytes of a request body, larger ones get 413"),
	CFG_U32("api_max_import", A, api_max_import, 1024, 268435456,
		"16777216", "bytes of a rate deck POSTed to /v1/rates/import"),
	CFG_U32("api_max_event_streams", A, api_max_event_streams, 0, 1024,
		"8", "event streams (GET /v1/events) open at once, more get "
		"503"),
};

#undef A


/* a reload changes tokens, open paths and the body limit; the socket
 * stays where it is */
static const char *const fixedv[] = { "api_listen", NULL };


static int conf_keep(void *mod, const void *oldmod, const struct cfg_key *k)
{
	struct api_conf *cfg = mod;
	const struct api_conf *old = oldmod;

	if (strcmp(k->name, "api_listen"))
		return ENOENT;

	cfg->api_listen = old->api_listen;

	return 0;
}


CFG_MODULE_RELOAD(api_conf_module, "api", keyv, struct api_conf,
		  NULL, NULL, conf_destructor, fixedv, conf_keep);


/**
 * Requests from now on are checked against a new configuration (a
 * reload): its tokens, open paths and body limit.  The socket stays.
 */
void api_reconfigure(struct api *api, const struct api_conf *cfg)
{
	const struct api_conf *old;

	if (!api || !cfg || cfg == api->cfg)
		return;

	old = api->cfg;
	api->cfg = mem_ref((void *)cfg);
	mem_deref((void *)old);
}


/** A reload of the configuration ended (for GET /metrics) */
void api_reload_count(struct api *api, bool ok, uint64_t wall_ms)
{
	if (!api)
		return;

	++api->reloads[ok ? 0 : 1];
	if (ok)
		api->reload_ok_ms = wall_ms;
}
