/**
 * @file replay.c  Corpus replay: the main() of a fuzz target in a build
 *                 without --enable-fuzzing
 *
 * Every file named on the command line, or found in a directory named
 * there, is handed once to LLVMFuzzerTestOneInput().  Without arguments
 * the target's seed corpus is replayed: $top_srcdir/tests/fuzz/corpus/NAME
 * for the program fuzz_NAME.  A crash or an abort fails the run; so make
 * check guards against regressions without libFuzzer.
 */

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { REPLAY_MAX = 1 << 20 };


static int replay_file(const char *path)
{
	uint8_t *buf, *in;
	size_t n;
	FILE *f;

	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return errno;
	}

	buf = malloc(REPLAY_MAX);
	if (!buf) {
		fclose(f);
		return ENOMEM;
	}

	n = fread(buf, 1, REPLAY_MAX, f);
	fclose(f);

	/* exactly the input's size, so that ASan sees any overread */
	in = realloc(buf, n ? n : 1);
	if (!in) {
		free(buf);
		return ENOMEM;
	}

	(void)LLVMFuzzerTestOneInput(in, n);
	free(in);

	return 0;
}


static int replay_path(const char *path, unsigned *countp)
{
	struct dirent **namev = NULL;
	struct stat st;
	int i, n, err = 0;

	if (stat(path, &st)) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return errno;
	}

	if (!S_ISDIR(st.st_mode)) {
		++*countp;
		return replay_file(path);
	}

	/* sorted: the same order on every run */
	n = scandir(path, &namev, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return errno;
	}

	for (i = 0; i < n; i++) {
		char file[4096];

		if (namev[i]->d_name[0] != '.' && !err) {
			(void)snprintf(file, sizeof(file), "%s/%s", path,
				       namev[i]->d_name);
			if (!stat(file, &st) && S_ISREG(st.st_mode)) {
				++*countp;
				err = replay_file(file);
			}
		}
		free(namev[i]);
	}
	free(namev);

	return err;
}


int main(int argc, char *argv[])
{
	const char *prog = strrchr(argv[0], '/');
	unsigned count = 0;
	int i, err = 0;

	prog = prog ? prog + 1 : argv[0];

	if (argc < 2) {
		const char *top = getenv("top_srcdir");
		const char *name = strncmp(prog, "fuzz_", 5) ? prog : prog + 5;
		char dir[4096];

		(void)snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s",
			       top ? top : ".", name);
		err = replay_path(dir, &count);
	}

	for (i = 1; i < argc && !err; i++)
		err = replay_path(argv[i], &count);

	printf("%s: %u inputs replayed%s\n", prog, count,
	       err ? ", error" : "");

	return err || !count ? 1 : 0;
}
