/**
 * @file test_openapi.c  The OpenAPI document against the route table
 *
 * The daemon's routes come from api/http.c's own table (api_routes()),
 * the document from the JSON the daemon serves (api_openapi_doc(), made
 * from docs/openapi.yaml).  Every route and method of the table must be
 * an operation of the document, and every operation of the document a
 * route and method of the table; each one missing is named with the side
 * it is missing on.  A path of the document matches a pattern of the
 * table when each {parameter} segment stands where the table has '*'.
 */

#include <stdio.h>
#include <string.h>
#include <re.h>
#include "core.h"
#include "api_int.h"

#include "check.h"


static const struct {
	unsigned meth;
	const char *key;             /**< the document's operation key   */
	const char *name;
} methv[] = {
	{API_GET,    "get",    "GET"},
	{API_POST,   "post",   "POST"},
	{API_PATCH,  "patch",  "PATCH"},
	{API_DELETE, "delete", "DELETE"},
};

/* the operation keys of a path item; anything else there is no method */
static const char *const itemv[] = {
	"get", "put", "post", "delete", "options", "head", "patch", "trace",
	"parameters", "summary", "description", "servers", NULL
};


/* a document path as a table pattern: {id} of "/v1/calls/{id}" becomes
   the table's one-segment wildcard */
static int pattern_of(char *buf, size_t sz, const char *path)
{
	const char *start = path;
	size_t n = 0;

	while (*path) {
		if (path[0] == '{' && (path == start || path[-1] == '/')) {
			const char *e = strchr(path, '}');

			if (!e || (e[1] && e[1] != '/'))
				return EINVAL;
			if (n + 1 >= sz)
				return ENOMEM;
			buf[n++] = '*';
			path = e + 1;
			continue;
		}
		if (*path == '*' || *path == '{' || *path == '}' ||
		    n + 1 >= sz)
			return EINVAL;
		buf[n++] = *path++;
	}
	buf[n] = '\0';

	return 0;
}


static const struct api_route *route_find(const char *pattern)
{
	const struct api_route *rv;
	size_t n, i;

	rv = api_routes(&n);
	for (i = 0; i < n; i++) {
		if (!strcmp(rv[i].pattern, pattern))
			return &rv[i];
	}

	return NULL;
}


/* the path item of the document for a table pattern, or NULL */
static const struct odict *item_find(const struct odict *paths,
				     const char *pattern)
{
	struct le *le;

	LIST_FOREACH(&paths->lst, le) {
		const struct odict_entry *e = le->data;
		char pat[256];

		if (e->type != ODICT_OBJECT ||
		    pattern_of(pat, sizeof(pat), e->key))
			continue;
		if (!strcmp(pat, pattern))
			return e->u.odict;
	}

	return NULL;
}


/* every route and method of the table is in the document */
static void table_in_doc(const struct odict *paths)
{
	const struct api_route *rv;
	size_t n, i, m;

	rv = api_routes(&n);
	CHECK(n > 0);

	for (i = 0; i < n; i++) {
		const struct odict *item = item_find(paths, rv[i].pattern);

		for (m = 0; m < ARRAY_SIZE(methv); m++) {
			bool ok;

			if (!(rv[i].meths & methv[m].meth))
				continue;
			ok = item && odict_lookup(item, methv[m].key);
			if (!ok)
				fprintf(stderr, "route %s %s of api/http.c is "
					"not in docs/openapi.yaml (add its "
					"path, a {parameter} for each '*', "
					"with a %s: operation)\n",
					methv[m].name, rv[i].pattern,
					methv[m].key);
			CHECK(ok);
		}
	}
}


/* every operation of the document is a route and method of the table */
static void doc_in_table(const struct odict *paths)
{
	struct le *le;
	unsigned ops = 0;

	LIST_FOREACH(&paths->lst, le) {
		const struct odict_entry *e = le->data;
		const struct api_route *r;
		struct le *ie;
		char pat[256];
		bool ok;

		ok = e->type == ODICT_OBJECT &&
			!pattern_of(pat, sizeof(pat), e->key);
		if (!ok) {
			fprintf(stderr, "docs/openapi.yaml: path %s is not a "
				"path of segments and {parameters}\n", e->key);
			CHECK(ok);
			continue;
		}

		r = route_find(pat);

		LIST_FOREACH(&e->u.odict->lst, ie) {
			const struct odict_entry *op = ie->data;
			size_t m, k;
			bool known = false;

			for (k = 0; itemv[k]; k++)
				known |= !strcmp(itemv[k], op->key);
			if (!strncmp(op->key, "x-", 2))
				known = true;
			if (!known) {
				fprintf(stderr, "docs/openapi.yaml: %s: %s is"
					" not a member of a path item\n",
					e->key, op->key);
				CHECK(known);
				continue;
			}

			for (m = 0; m < ARRAY_SIZE(methv); m++) {
				if (!strcmp(op->key, methv[m].key))
					break;
			}

			if (m == ARRAY_SIZE(methv)) {
				bool meth = !strcmp(op->key, "parameters") ||
					!strcmp(op->key, "summary") ||
					!strcmp(op->key, "description") ||
					!strcmp(op->key, "servers") ||
					!strncmp(op->key, "x-", 2);

				/* head, put, options, trace: not served
				   (HEAD is GET's, without a body) */
				if (!meth)
					fprintf(stderr, "operation %s %s of "
						"docs/openapi.yaml: the daemon "
						"has no such method\n",
						op->key, e->key);
				CHECK(meth);
				continue;
			}

			++ops;
			ok = r && (r->meths & methv[m].meth);
			if (!ok)
				fprintf(stderr, "operation %s %s of "
					"docs/openapi.yaml is not a route of "
					"api/http.c (%s %s)\n",
					methv[m].name, e->key, methv[m].name,
					pat);
			CHECK(ok);
		}
	}

	CHECK(ops > 0);
}


static void pattern_checks(void)
{
	char buf[64];

	CHECK(!pattern_of(buf, sizeof(buf), "/v1/calls/{id}") &&
	      !strcmp(buf, "/v1/calls/*"));
	CHECK(!pattern_of(buf, sizeof(buf), "/v1/carriers/{name}/deck") &&
	      !strcmp(buf, "/v1/carriers/*/deck"));
	CHECK(!pattern_of(buf, sizeof(buf), "/metrics") &&
	      !strcmp(buf, "/metrics"));
	CHECK(pattern_of(buf, sizeof(buf), "/v1/x{id}") == EINVAL);
	CHECK(pattern_of(buf, sizeof(buf), "/v1/{id}x") == EINVAL);
	CHECK(pattern_of(buf, sizeof(buf), "/v1/*") == EINVAL);
}


int main(void)
{
	const struct odict_entry *paths, *ver;
	struct odict *doc = NULL;
	const char *s;
	size_t len;
	int err;

	pattern_checks();

	s = api_openapi_doc(&len);
	CHECK(s && len > 0 && strlen(s) == len);

	err = json_decode_odict(&doc, 64, s, len, 32);
	CHECK(err == 0 && doc);
	if (err || !doc) {
		fprintf(stderr, "the served document is not JSON (%s)\n",
			strerror(err));
		return check_report("test_openapi");
	}

	ver = odict_lookup(doc, "openapi");
	CHECK(ver && ver->type == ODICT_STRING &&
	      !strncmp(ver->u.str, "3.", 2));

	paths = odict_lookup(doc, "paths");
	CHECK(paths && paths->type == ODICT_OBJECT);
	if (paths && paths->type == ODICT_OBJECT) {
		table_in_doc(paths->u.odict);
		doc_in_table(paths->u.odict);
	}

	mem_deref(doc);

	return check_report("test_openapi");
}
