/**
 * @file conf.c  Configuration file: read, split into lines, hand each key
 *               to the module that declared it, check and print
 *
 * The format is libre's: one "key value" pair a line, '#' starts a comment
 * at the start of a line or after whitespace, blank lines are ignored and
 * the value is the rest of the line with surrounding whitespace removed.
 * libre's own conf parser cannot say on which line a mistake is, so the
 * file is parsed here; every error is reported as FILE:LINE: reason and
 * start-up stops.
 *
 * The core knows no key: every module brings a table of its own (struct
 * cfg_module) and a struct the table fills.  The order of the modules is
 * the order of the output of cfg_print() and of the checks.
 */

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <re.h>
#include "core.h"


enum {
	CFG_MAX_ERRORS  = 20,           /* give up after this many errors  */
};


/** The parsed file: one struct per module */
struct cfg {
	char *file;                       /**< owned; path it was read from */
	const struct cfg_module **modv;   /**< owned array of borrowed      */
	void **datav;                     /**< owned; each module's struct  */
	size_t modc;
};

struct cfg_parser {
	const char *file;           /**< borrowed; name used in messages  */
	struct re_printf *errpf;    /**< borrowed; may be NULL            */
	const struct cfg_key *k;    /**< borrowed; key of current line    */
	unsigned line;              /**< current line, 0 = whole file     */
	unsigned nerr;
	unsigned *seen;             /**< owned; line per key, all modules */
};


/* ---------------------------------------------------------- error output */

static int vreport(struct cfg_parser *p, bool withkey, const char *fmt,
		   va_list ap)
{
	struct re_printf *pf = p->errpf;

	++p->nerr;

	if (!pf || p->nerr > CFG_MAX_ERRORS)
		return EINVAL;

	if (p->line)
		(void)re_hprintf(pf, "%s:%u: ", p->file, p->line);
	else
		(void)re_hprintf(pf, "%s: ", p->file);

	if (withkey && p->k)
		(void)re_hprintf(pf, "%s: ", p->k->name);

	(void)re_vhprintf(fmt, ap, pf->vph, pf->arg);
	(void)re_hprintf(pf, "\n");

	if (p->nerr == CFG_MAX_ERRORS)
		(void)re_hprintf(pf, "%s: too many errors, giving up\n",
				 p->file);

	return EINVAL;
}


/** Report an error about the current line; returns EINVAL */
int cfg_err(struct cfg_parser *p, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = vreport(p, false, fmt, ap);
	va_end(ap);

	return err;
}


/** Report an error about the value of the current key; returns EINVAL */
int cfg_kerr(struct cfg_parser *p, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = vreport(p, true, fmt, ap);
	va_end(ap);

	return err;
}


/** Report further errors as about a line (0: the whole file) */
void cfg_set_line(struct cfg_parser *p, unsigned line)
{
	if (!p)
		return;

	p->line = line;
	p->k = NULL;
}


/** Line being parsed, 0 while checking the whole file */
unsigned cfg_line(const struct cfg_parser *p)
{
	return p ? p->line : 0;
}


/** Name of the file being parsed */
const char *cfg_file(const struct cfg_parser *p)
{
	return p ? p->file : NULL;
}


/* ------------------------------------------------------------ the parser */

static inline bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}


/** Edit distance, for "did you mean" on unknown keys */
static size_t edit_distance(const struct pl *a, const char *b)
{
	size_t lb = strlen(b), i, j;
	size_t row[40];

	if (a->l >= ARRAY_SIZE(row) || lb >= ARRAY_SIZE(row))
		return (size_t)-1;

	for (j = 0; j <= lb; j++)
		row[j] = j;

	for (i = 1; i <= a->l; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a->p[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;

			row[j] = best;
			diag = up;
		}
	}

	return row[lb];
}


static int unknown_key(struct cfg_parser *p, const struct cfg *cfg,
		       const struct pl *key)
{
	const char *best = NULL;
	size_t bestd = 3, i, j;

	for (i = 0; i < cfg->modc; i++) {
		const struct cfg_module *m = cfg->modv[i];

		for (j = 0; j < m->keyc; j++) {
			size_t d = edit_distance(key, m->keyv[j].name);

			if (d < bestd) {
				bestd = d;
				best = m->keyv[j].name;
			}
		}
	}

	if (best)
		return cfg_err(p, "unknown key '%r' (did you mean '%s'?)", key,
			       best);

	return cfg_err(p, "unknown key '%r'", key);
}


/** The key of that name: module index in *mp, index among all in *ip */
static const struct cfg_key *key_find(const struct cfg *cfg,
				      const struct pl *name, size_t *mp,
				      size_t *ip)
{
	size_t i, j, n = 0;

	for (i = 0; i < cfg->modc; i++) {
		const struct cfg_module *m = cfg->modv[i];

		for (j = 0; j < m->keyc; j++, n++) {
			if (!pl_strcmp(name, m->keyv[j].name)) {
				*mp = i;
				*ip = n;
				return &m->keyv[j];
			}
		}
	}

	return NULL;
}


static int parse_line(struct cfg_parser *p, struct cfg *cfg,
		      const char *s, size_t n)
{
	const struct cfg_key *k;
	struct pl line, key, val;
	size_t i, mi, ki;
	int err;

	/* a comment starts at '#' at the start or after whitespace */
	for (i = 0; i < n; i++) {
		if (s[i] == '#' && (i == 0 || is_ws(s[i - 1]))) {
			n = i;
			break;
		}
	}

	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return cfg_err(p, "control character 0x%02x in line",
				       c);
	}

	line.p = s;
	line.l = n;
	cfg_pl_trim(&line);
	if (!line.l)
		return 0;

	key = line;
	for (i = 0; i < line.l; i++) {
		if (is_ws(line.p[i])) {
			key.l = i;
			break;
		}
	}

	val.p = key.p + key.l;
	val.l = line.l - key.l;
	cfg_pl_trim(&val);

	k = key_find(cfg, &key, &mi, &ki);
	if (!k)
		return unknown_key(p, cfg, &key);

	p->k = k;

	if (!k->repeat) {
		if (p->seen[ki])
			return cfg_err(p, "duplicate '%s' (first set at line "
				       "%u)", k->name, p->seen[ki]);

		p->seen[ki] = p->line;
	}

	if (!val.l)
		return cfg_kerr(p, "missing value");

	err = k->parse(p, cfg->datav[mi], k, &val);
	p->k = NULL;

	return err;
}


static void cfg_destructor(void *arg)
{
	struct cfg *cfg = arg;
	size_t i;

	for (i = cfg->datav ? cfg->modc : 0; i > 0; i--)
		mem_deref(cfg->datav[i - 1]);

	mem_deref(cfg->datav);
	mem_deref(cfg->modv);
	mem_deref(cfg->file);
}


/** Every module's struct with the defaults of its table */
static int modules_alloc(struct cfg_parser *p, struct cfg *cfg)
{
	size_t i, j;
	int err = 0;

	for (i = 0; i < cfg->modc; i++) {
		const struct cfg_module *m = cfg->modv[i];
		void *mod;

		mod = mem_zalloc(m->size ? m->size : 1, m->dtor);
		if (!mod)
			return ENOMEM;

		cfg->datav[i] = mod;

		for (j = 0; j < m->keyc; j++) {
			const struct cfg_key *k = &m->keyv[j];
			struct pl def;

			if (!k->def)
				continue;

			pl_set_str(&def, k->def);
			p->k = k;
			err = k->parse(p, mod, k, &def);
			p->k = NULL;
			if (err)
				return err;
		}

		if (m->init) {
			err = m->init(mod);
			if (err)
				return err;
		}
	}

	return 0;
}


/**
 * Parse configuration text
 *
 * @param cfgp  Pointer to the new configuration
 * @param file  File name for messages (and cfg_filename())
 * @param text  The text, need not be NUL-terminated
 * @param len   Length of text
 * @param modv  The modules whose keys the text may set (borrowed; each
 *              must outlive the configuration)
 * @param modc  Number of modules
 * @param errpf Where to print errors as FILE:LINE: reason (may be NULL)
 *
 * @return 0 if success, EINVAL for a bad configuration, ENOMEM
 */
int cfg_parse(struct cfg **cfgp, const char *file, const char *text,
	      size_t len, const struct cfg_module *const *modv, size_t modc,
	      struct re_printf *errpf)
{
	struct cfg_parser p;
	struct cfg *cfg;
	const char *s, *end;
	size_t i, nkeys = 0;
	int err;

	if (!cfgp || (!text && len) || (!modv && modc))
		return EINVAL;

	if (!file)
		file = "(config)";

	if (!text)
		text = "";

	memset(&p, 0, sizeof(p));
	p.file  = file;
	p.errpf = errpf;

	cfg = mem_zalloc(sizeof(*cfg), cfg_destructor);
	if (!cfg)
		return ENOMEM;

	for (i = 0; i < modc; i++)
		nkeys += modv[i]->keyc;

	cfg->modc  = modc;
	cfg->modv  = mem_zalloc((modc + 1) * sizeof(*cfg->modv), NULL);
	cfg->datav = mem_zalloc((modc + 1) * sizeof(*cfg->datav), NULL);
	p.seen     = mem_zalloc((nkeys + 1) * sizeof(*p.seen), NULL);
	if (!cfg->modv || !cfg->datav || !p.seen) {
		err = ENOMEM;
		goto out;
	}

	for (i = 0; i < modc; i++)
		cfg->modv[i] = modv[i];

	err = str_dup(&cfg->file, file);
	if (err)
		goto out;

	err = modules_alloc(&p, cfg);
	if (err)
		goto out;

	s = text;
	end = text + len;

	/* UTF-8 byte order mark */
	if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3;

	while (s < end && p.nerr < CFG_MAX_ERRORS) {
		const char *nl = memchr(s, '\n', end - s);
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);

		++p.line;

		if (n && s[n - 1] == '\r')
			--n;

		err = parse_line(&p, cfg, s, n);
		if (err && err != EINVAL)
			goto out;

		s = nl ? nl + 1 : end;
	}

	err = 0;

	/* the checks that need the whole file; pointless after errors */
	if (p.nerr)
		goto out;

	for (i = 0; i < modc; i++) {
		if (!modv[i]->check)
			continue;

		cfg_set_line(&p, 0);
		err = modv[i]->check(&p, cfg->datav[i]);
		if (err && err != EINVAL)
			goto out;
	}

	err = 0;

 out:
	mem_deref(p.seen);

	if (!err && p.nerr)
		err = EINVAL;

	if (err)
		mem_deref(cfg);
	else
		*cfgp = cfg;

	return err;
}


/* ---------------------------------------------------------- the result */

/**
 * The struct a module's table filled
 *
 * @return The struct (read-only after start-up), NULL if the module was
 *         not among those the configuration was parsed with
 */
void *cfg_get(const struct cfg *cfg, const struct cfg_module *m)
{
	size_t i;

	if (!cfg || !m)
		return NULL;

	for (i = 0; i < cfg->modc; i++) {
		if (cfg->modv[i] == m)
			return cfg->datav[i];
	}

	return NULL;
}


/** The name of the file the configuration was read from */
const char *cfg_filename(const struct cfg *cfg)
{
	return cfg ? cfg->file : NULL;
}


/**
 * Print the configuration in the file format, every key of every module
 * with its effective value, defaults included, in the order of the
 * modules and of their tables.  Key printers keep secrets out (masked, or
 * as comments), so the output is safe to show and still parses.
 */
int cfg_print(struct re_printf *pf, const struct cfg *cfg)
{
	size_t i, j;
	int err = 0;

	if (!pf || !cfg)
		return EINVAL;

	err |= re_hprintf(pf, "# effective configuration of %s\n",
			  cfg->file);

	for (i = 0; i < cfg->modc; i++) {
		const struct cfg_module *m = cfg->modv[i];

		for (j = 0; j < m->keyc; j++) {
			const struct cfg_key *k = &m->keyv[j];

			if (k->print)
				err |= k->print(pf, cfg->datav[i], k);
		}
	}

	return err ? EIO : 0;
}


/**
 * Print every key of the modules with its default and its one-line doc,
 * as comments in the file format
 */
int cfg_doc(struct re_printf *pf, const struct cfg_module *const *modv,
	    size_t modc)
{
	size_t i, j;
	int err = 0;

	if (!pf || (!modv && modc))
		return EINVAL;

	for (i = 0; i < modc; i++) {
		const struct cfg_module *m = modv[i];

		err |= re_hprintf(pf, "# --- %s\n", m->name);

		for (j = 0; j < m->keyc; j++) {
			const struct cfg_key *k = &m->keyv[j];

			err |= re_hprintf(pf, "# %s%s: %s", k->name,
					  k->repeat ? " (repeatable)" : "",
					  k->doc ? k->doc : "");
			if (k->def)
				err |= re_hprintf(pf, " [%s]", k->def);
			err |= re_hprintf(pf, "\n");
		}
	}

	return err ? EIO : 0;
}


/* ------------------------------------------------------------- reload */

/** Whether a key keeps its value on a reload */
bool cfg_key_fixed(const struct cfg_module *m, const struct cfg_key *k)
{
	const char *const *f;

	if (!m || !k)
		return false;

	if (!m->reloadable)
		return true;

	for (f = m->fixedv; f && *f; f++) {
		if (!strcmp(*f, k->name))
			return true;
	}

	return false;
}


struct key_val {
	const void *mod;
	const struct cfg_key *k;
};


static int key_val_print(struct re_printf *pf, void *arg)
{
	const struct key_val *kv = arg;

	return kv->k->print(pf, kv->mod, kv->k);
}


/* a key's value as its printer writes it, or "" */
static int key_text(char **textp, const void *mod, const struct cfg_key *k)
{
	struct key_val kv = { mod, k };

	if (!k->print)
		return str_dup(textp, "");

	return re_sdprintf(textp, "%H", key_val_print, &kv);
}


/* "KEY a\nKEY b\n" as "a, b" ("(not set)" if empty) */
struct key_text {
	const char *text;
	const char *name;
};


static int value_print(struct re_printf *pf, void *arg)
{
	const struct key_text *kt = arg;
	const char *name = kt->name;
	size_t nl = strlen(name);
	const char *s = kt->text;
	bool first = true;
	int err = 0;

	while (*s) {
		const char *e = strchr(s, '\n');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		const char *v = s;
		size_t vl = n;

		if (n > nl && !strncmp(s, name, nl) && s[nl] == ' ') {
			v += nl + 1;
			vl -= nl + 1;
		}
		if (vl) {
			err |= re_hprintf(pf, "%s%b", first ? "" : ", ", v,
					  vl);
			first = false;
		}

		s = e ? e + 1 : s + n;
	}

	if (first)
		err |= re_hprintf(pf, "(not set)");

	return err;
}


/* fixed keys: report those changed, give them their old value */
static int reload_keep(struct cfg *cfg, const struct cfg *old,
		       struct re_printf *keptpf, unsigned *keptp)
{
	size_t i, j;
	int err = 0;

	for (i = 0; i < cfg->modc; i++) {
		const struct cfg_module *m = cfg->modv[i];

		for (j = 0; j < m->keyc && !err; j++) {
			const struct cfg_key *k = &m->keyv[j];
			char *was = NULL, *now = NULL;

			if (!cfg_key_fixed(m, k))
				continue;

			err  = key_text(&was, old->datav[i], k);
			err |= key_text(&now, cfg->datav[i], k);
			if (!err && strcmp(was, now)) {
				struct key_text kt = { was, k->name };

				++*keptp;
				if (keptpf)
					(void)re_hprintf(keptpf, "reload: %s "
						"cannot change while running;"
						" keeping %H\n", k->name,
						value_print, &kt);
				if (m->reloadable && m->keep)
					err = m->keep(cfg->datav[i],
						      old->datav[i], k);
			}

			mem_deref(was);
			mem_deref(now);
		}

		if (err)
			return err;

		/* a module that cannot take a new struct keeps its own */
		if (!m->reloadable) {
			mem_deref(cfg->datav[i]);
			cfg->datav[i] = mem_ref(old->datav[i]);
		}
	}

	return 0;
}


static int reload_finish(struct cfg **cfgp, struct cfg *cfg,
			 const struct cfg *old, struct re_printf *keptpf,
			 unsigned *keptp)
{
	unsigned kept = 0;
	int err;

	err = reload_keep(cfg, old, keptpf, &kept);
	if (err) {
		mem_deref(cfg);
		return err;
	}

	if (keptp)
		*keptp = kept;
	*cfgp = cfg;

	return 0;
}


/**
 * Read the file of a configuration again, for a reload.  The new file is
 * parsed and checked whole, as at start-up (errors to errpf as
 * FILE:LINE: reason; then nothing is returned).  A key that cannot change
 * while running (cfg_key_fixed()) and has a new value is named on keptpf,
 * one line each ("reload: KEY cannot change while running; keeping OLD"),
 * and keeps its old value in the new configuration; a module that is not
 * reloadable keeps its struct (the new configuration holds a reference
 * to the old one's).
 *
 * @param cfgp    The new configuration
 * @param old     The configuration in use (borrowed; unchanged)
 * @param errpf   Where errors go (may be NULL)
 * @param keptpf  Where the keys kept are named (may be NULL)
 * @param keptp   Number of keys kept (may be NULL)
 *
 * @return 0, EINVAL (bad file), or the errno of reading it
 */
int cfg_reload(struct cfg **cfgp, const struct cfg *old,
	       struct re_printf *errpf, struct re_printf *keptpf,
	       unsigned *keptp)
{
	struct cfg *cfg = NULL;
	int err;

	if (!cfgp || !old)
		return EINVAL;

	err = cfg_load(&cfg, old->file, (const struct cfg_module *const *)
		       old->modv, old->modc, errpf);
	if (err)
		return err;

	return reload_finish(cfgp, cfg, old, keptpf, keptp);
}


/** cfg_reload() of a text in place of the file (for tests) */
int cfg_reload_text(struct cfg **cfgp, const struct cfg *old,
		    const char *text, size_t len, struct re_printf *errpf,
		    struct re_printf *keptpf, unsigned *keptp)
{
	struct cfg *cfg = NULL;
	int err;

	if (!cfgp || !old)
		return EINVAL;

	err = cfg_parse(&cfg, old->file, text, len,
			(const struct cfg_module *const *)old->modv,
			old->modc, errpf);
	if (err)
		return err;

	return reload_finish(cfgp, cfg, old, keptpf, keptp);
}
