/**
 * @file fuzz_conf.c  Fuzz target: the configuration parser
 *
 * The input is a whole tollgate.conf, parsed with every module's keys as
 * the daemon parses it; errors are printed (to nowhere) and a file that
 * is accepted is printed back as tollgate -t does.
 */

#include <re.h>
#include "core.h"
#include "tollgate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int discard(const char *p, size_t size, void *arg)
{
	(void)p;
	(void)size;
	(void)arg;

	return 0;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct re_printf errpf = { discard, NULL };
	struct cfg *cfg = NULL;

	if (cfg_parse(&cfg, "fuzz.conf", (const char *)data, size,
		      tollgate_modv, tollgate_modc, &errpf))
		return 0;

	(void)cfg_print(&errpf, cfg);
	mem_deref(cfg);

	return 0;
}
