/**
 * @file openapi.c  REST API: GET /v1/openapi.json, the API's contract
 *
 * docs/openapi.yaml is the source; tools/openapi-json turns it into the
 * JSON bytes of api/openapi_json.c at build time (shipped in the tarball,
 * so a build from it needs no python).  The document holds no secrets and
 * needs no token (API_OPEN_ALWAYS).
 */

#include "api_int.h"


/* api/openapi_json.c, generated */
extern const unsigned char api_openapi_json[];
extern const size_t api_openapi_json_len;


/** The OpenAPI document served, as JSON (api_openapi_json_len bytes) */
const char *api_openapi_doc(size_t *lenp)
{
	if (lenp)
		*lenp = api_openapi_json_len;

	return (const char *)api_openapi_json;
}


/** GET /v1/openapi.json */
void api_openapi_h(struct api_req *req)
{
	size_t len;
	const char *doc = api_openapi_doc(&len);

	api_reply_text(req, 200, "application/json", doc, len);
}
