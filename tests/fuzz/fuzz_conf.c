/**
 * @file fuzz_conf.c  Fuzz target: the configuration parser
 *
 * The input is a whole tollgate.conf; errors are printed (to nowhere) as
 * the daemon prints them.
 */

#include <re.h>
#include "core.h"

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
	struct tg_config *cfg = NULL;

	if (!cfg_parse(&cfg, "fuzz.conf", (const char *)data, size, &errpf))
		mem_deref(cfg);

	return 0;
}
