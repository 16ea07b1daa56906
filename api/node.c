/**
 * @file node.c  REST API: the node itself
 *
 *   POST /v1/node/drain   the node drains (admin token): it takes no new
 *                         calls, lets the running ones end, then exits
 *                         (202, with the number of calls still running)
 *
 * What draining does is up to whoever put the daemon together (the drain
 * handler, api_set_drain()); /v1/health and /metrics show it.
 */

#include <string.h>
#include "api_int.h"


/** Set the handler POST /v1/node/drain calls */
void api_set_drain(struct api *api, api_drain_h *h, void *arg)
{
	if (!api)
		return;

	api->drainh = h;
	api->drain_arg = arg;
}


/** POST /v1/node/drain: no body, or an empty JSON object */
void api_node_drain_h(struct api_req *req)
{
	static const char *const allowed[] = { NULL };
	struct api *api = req->api;
	struct odict *od = NULL;
	uint32_t calls;
	int err;

	if (req->body && req->body->end) {
		err = api_body(req, &od, allowed);
		if (err)
			return;
		od = mem_deref(od);
	}

	if (!api->drainh) {
		api_error(req, 503, NULL, "this node cannot drain");
		return;
	}

	calls = api->drainh(api->drain_arg);

	err  = odict_alloc(&od, 4);
	if (!err) {
		err  = odict_entry_add(od, "draining", ODICT_BOOL, true);
		err |= odict_entry_add(od, "calls", ODICT_INT,
				       (int64_t)calls);
	}
	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 202, od);

	mem_deref(od);
}
