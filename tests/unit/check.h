/**
 * @file check.h  The assertion helper shared by the unit tests
 *
 * CHECK(cond) counts a passed or failed check and names the file and line
 * of a failure; a test ends with check_report(), whose last line is
 * "N passed, M failed" and whose value is the exit status.
 */

#include <stdbool.h>
#include <stdio.h>

static unsigned passed, failed;

#define CHECK(cond) check_at(__FILE__, __LINE__, (cond), #cond)

static inline void check_at(const char *file, int line, bool ok,
			    const char *what)
{
	const char *base = file;
	const char *p;

	for (p = file; *p; p++) {
		if (*p == '/')
			base = p + 1;
	}

	if (ok) {
		++passed;
		return;
	}

	++failed;
	fprintf(stderr, "%s:%d: check failed: %s\n", base, line, what);
}


static inline int check_report(const char *name)
{
	printf("%s%s%u passed, %u failed\n", name ? name : "",
	       name ? ": " : "", passed, failed);

	return failed ? 1 : 0;
}
