/**
 * @file ui.c  REST API: the operator's live calls page (GET /ui/)
 *
 * The page's files (api/ui/) are compiled in: tools/ui-embed.py writes
 * api/ui_assets.c from them at build time, with each file's type and an
 * ETag made from its content.  They carry no data and are served without
 * a token; the page asks the API for everything with the operator's
 * bearer token.  Every answer carries a strict Content-Security-Policy
 * (only this origin, no inline script or style, no framing).
 */

#include <string.h>
#include "api_int.h"


static const char csp[] =
	"default-src 'self'; script-src 'self'; style-src 'self'; "
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; "
	"object-src 'none'; base-uri 'none'; form-action 'self'; "
	"frame-ancestors 'none'";


/** The asset at a path under /ui/ ("" is the page), or NULL */
const struct api_asset *api_asset_find(const char *path)
{
	size_t i;

	if (!path)
		return NULL;

	if (!*path)
		path = "index.html";

	for (i = 0; i < api_assetc; i++) {
		if (!strcmp(api_assetv[i].path, path))
			return &api_assetv[i];
	}

	return NULL;
}


static void add_headers(struct MHD_Response *resp)
{
	(void)MHD_add_response_header(resp, "Content-Security-Policy", csp);
	(void)MHD_add_response_header(resp, "X-Content-Type-Options",
				      "nosniff");
	(void)MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	(void)MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	(void)MHD_add_response_header(resp, "Cross-Origin-Opener-Policy",
				      "same-origin");
}


/* does If-None-Match name the tag (or "*")? */
static bool etag_match(const char *inm, const char *etag)
{
	size_t l = strlen(etag);
	const char *p = inm;

	if (!inm)
		return false;

	while (*p) {
		while (*p == ' ' || *p == ',')
			++p;
		if (*p == '*')
			return true;
		if (!strncmp(p, "W/", 2))
			p += 2;
		if (!strncmp(p, etag, l) &&
		    (p[l] == '\0' || p[l] == ',' || p[l] == ' '))
			return true;
		while (*p && *p != ',')
			++p;
	}

	return false;
}


/** GET /ui, /ui/, /ui/{file} */
void api_ui_h(struct api_req *req)
{
	const struct api_asset *a;
	struct MHD_Response *resp;
	const char *path = req->url;
	unsigned status = 200;

	if (!strcmp(path, "/ui")) {
		resp = MHD_create_response_from_buffer(0, NULL,
						       MHD_RESPMEM_PERSISTENT);
		if (resp) {
			(void)MHD_add_response_header(resp, "Location",
						      "/ui/");
			add_headers(resp);
		}
		api_reply_resp(req, 308, resp);
		return;
	}

	a = api_asset_find(path + 4);
	if (!a) {
		api_error(req, 404, NULL, "no resource %s", req->url);
		if (req->resp)
			add_headers(req->resp);
		return;
	}

	if (etag_match(api_header(req, "If-None-Match"), a->etag)) {
		status = 304;
		resp = MHD_create_response_from_buffer(0, NULL,
						       MHD_RESPMEM_PERSISTENT);
	}
	else {
		resp = MHD_create_response_from_buffer(a->len, (void *)a->data,
						       MHD_RESPMEM_PERSISTENT);
	}

	if (resp) {
		(void)MHD_add_response_header(resp, "Content-Type", a->ctype);
		(void)MHD_add_response_header(resp, "ETag", a->etag);
		(void)MHD_add_response_header(resp, "Cache-Control",
					      "no-cache");
		add_headers(resp);
	}

	api_reply_resp(req, status, resp);
}
