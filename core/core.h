/**
 * @file core.h  tollgate core: configuration, logging, process-wide helpers
 *
 * The core is what every other module may use: the configuration
 * machinery (modules bring their own keys), the logger and the timer
 * wheel.  It knows nothing of SIP calls, money or media.
 */

#ifndef TOLLGATE_CORE_H
#define TOLLGATE_CORE_H

#include <stddef.h>
#include <re.h>

/* ---------------------------------------------------------------- config */

/*
 * The configuration machinery.  The core parses the file (one "key value"
 * a line) and knows no key itself: every module declares its keys in a
 * table (struct cfg_key) inside a struct cfg_module, with the parser,
 * bounds, default and a one-line doc of each, and the struct they fill.
 * The composition root hands the list of modules to cfg_load(); the same
 * tables print the effective configuration (tollgate -t).
 */

struct cfg;
struct cfg_parser;
struct cfg_key;

/** Parse the value of one key into the module's struct (0 or errno) */
typedef int (cfg_parse_h)(struct cfg_parser *p, void *mod,
			  const struct cfg_key *k, const struct pl *val);

/** Print one key's effective value as whole config lines (may be none) */
typedef int (cfg_print_h)(struct re_printf *pf, const void *mod,
			  const struct cfg_key *k);

/** A key of the file */
struct cfg_key {
	const char *name;
	cfg_parse_h *parse;
	cfg_print_h *print;
	size_t off;                 /**< field in the module's struct    */
	uint32_t min, max;          /**< bounds of numbers               */
	const char *def;            /**< default as config text, or NULL */
	const char *doc;            /**< one line for the reader         */
	bool repeat;                /**< may appear more than once       */
	const char *const *choices; /**< cfg_key_choice: NULL-terminated */
};

/** A module's part of the configuration */
struct cfg_module {
	const char *name;
	const struct cfg_key *keyv;
	size_t keyc;
	size_t size;                /**< size of the module's struct     */
	/** after the table's defaults, before the file (optional) */
	int (*init)(void *mod);
	/** after the whole file, when it had no error (optional) */
	int (*check)(struct cfg_parser *p, void *mod);
	mem_destroy_h *dtor;        /**< frees the struct's members      */
	/**
	 * A reload (cfg_reload()) may hand the module a new struct.  Without
	 * it the module's struct is kept whole and every changed key is
	 * reported as one that cannot change while running.
	 */
	bool reloadable;
	/** keys that keep their value on a reload (NULL-terminated) */
	const char *const *fixedv;
	/** copy a fixed key's value from the old struct into the new one */
	int (*keep)(void *mod, const void *old, const struct cfg_key *k);
};

int  cfg_load(struct cfg **cfgp, const char *file,
	      const struct cfg_module *const *modv, size_t modc,
	      struct re_printf *errpf);
int  cfg_reload(struct cfg **cfgp, const struct cfg *old,
		struct re_printf *errpf, struct re_printf *keptpf,
		unsigned *keptp);
int  cfg_reload_text(struct cfg **cfgp, const struct cfg *old,
		     const char *text, size_t len, struct re_printf *errpf,
		     struct re_printf *keptpf, unsigned *keptp);
bool cfg_key_fixed(const struct cfg_module *m, const struct cfg_key *k);
int  cfg_parse(struct cfg **cfgp, const char *file, const char *text,
	       size_t len, const struct cfg_module *const *modv, size_t modc,
	       struct re_printf *errpf);
void *cfg_get(const struct cfg *cfg, const struct cfg_module *m);
const char *cfg_filename(const struct cfg *cfg);
int  cfg_print(struct re_printf *pf, const struct cfg *cfg);
int  cfg_doc(struct re_printf *pf, const struct cfg_module *const *modv,
	     size_t modc);

/* errors, for key parsers and checks: FILE:LINE: [key: ]reason */
int  cfg_err(struct cfg_parser *p, const char *fmt, ...);
int  cfg_kerr(struct cfg_parser *p, const char *fmt, ...);
void cfg_set_line(struct cfg_parser *p, unsigned line);
unsigned cfg_line(const struct cfg_parser *p);
const char *cfg_file(const struct cfg_parser *p);

/* typed parsers (conf_parse.c); errors name the key */
int  cfg_get_u32(struct cfg_parser *p, const char *what,
		 const struct pl *pl, uint32_t min, uint32_t max,
		 uint32_t *vp);
int  cfg_get_ip(const struct pl *pl, struct sa *sa);
int  cfg_get_hostport(struct cfg_parser *p, const struct pl *pl,
		      uint16_t defport, struct sa *sa);
int  cfg_get_transport(struct cfg_parser *p, const struct pl *pl,
		       enum sip_transp *tpp);
int  cfg_get_choice(struct cfg_parser *p, const struct pl *val,
		    const char * const *namev, size_t namec, size_t *ip);
int  cfg_one_arg(struct cfg_parser *p, const struct pl *val,
		 struct pl *arg, const char *expect);
int  cfg_set_str(char **dst, const struct pl *pl);
const char *cfg_transp_name(enum sip_transp tp);

/* lexical helpers */
unsigned cfg_split_args(const struct pl *val, struct pl *argv,
			unsigned max);
bool cfg_pl_split(const struct pl *pl, char c, struct pl *left,
		  struct pl *right);
bool cfg_pl_skip_prefix(struct pl *pl, const char *prefix);
bool cfg_pl_is_token(const struct pl *pl);
void cfg_pl_trim(struct pl *pl);

/* generic keys: the value at k->off */
cfg_parse_h cfg_key_u32;        /**< uint32_t in min..max            */
cfg_parse_h cfg_key_yesno;      /**< bool from yes|no                */
cfg_parse_h cfg_key_str;        /**< char *, owned, rest of the line */
cfg_parse_h cfg_key_choice;     /**< int, index into k->choices      */
cfg_print_h cfg_print_u32;
cfg_print_h cfg_print_yesno;
cfg_print_h cfg_print_str;
cfg_print_h cfg_print_choice;
cfg_print_h cfg_print_ip;       /**< struct sa address, if set       */
cfg_print_h cfg_print_hostport; /**< struct sa address and port      */

#define CFG_U32(nm, type, field, lo, hi, dflt, text) \
	{ .name = (nm), .parse = cfg_key_u32, .print = cfg_print_u32, \
	  .off = offsetof(type, field), .min = (lo), .max = (hi), \
	  .def = (dflt), .doc = (text) }
#define CFG_YESNO(nm, type, field, dflt, text) \
	{ .name = (nm), .parse = cfg_key_yesno, .print = cfg_print_yesno, \
	  .off = offsetof(type, field), .def = (dflt), .doc = (text) }
#define CFG_STR(nm, type, field, dflt, text) \
	{ .name = (nm), .parse = cfg_key_str, .print = cfg_print_str, \
	  .off = offsetof(type, field), .def = (dflt), .doc = (text) }
#define CFG_CHOICE(nm, type, field, namev, dflt, text) \
	{ .name = (nm), .parse = cfg_key_choice, \
	  .print = cfg_print_choice, .off = offsetof(type, field), \
	  .choices = (namev), .def = (dflt), .doc = (text) }
/**
 * Define a module from its key table: NAME as in the file's messages, KEYV
 * a static array of struct cfg_key, TYPE the struct the keys fill, and the
 * optional init, check and destructor hooks (NULL where there is none).
 */
#define CFG_MODULE(var, nm, keys, type, inith, checkh, dtorh) \
	const struct cfg_module var = { \
		.name  = (nm), \
		.keyv  = (keys), \
		.keyc  = ARRAY_SIZE(keys), \
		.size  = sizeof(type), \
		.init  = (inith), \
		.check = (checkh), \
		.dtor  = (dtorh), \
	}
/** CFG_MODULE of a module whose struct a reload may replace */
#define CFG_MODULE_RELOAD(var, nm, keys, type, inith, checkh, dtorh, \
			  fixed, keeph) \
	const struct cfg_module var = { \
		.name  = (nm), \
		.keyv  = (keys), \
		.keyc  = ARRAY_SIZE(keys), \
		.size  = sizeof(type), \
		.init  = (inith), \
		.check = (checkh), \
		.dtor  = (dtorh), \
		.reloadable = true, \
		.fixedv = (fixed), \
		.keep  = (keeph), \
	}
#define CFG_FIELD(mod, k, type) \
	((type *)(void *)((char *)(mod) + (k)->off))
#define CFG_CFIELD(mod, k, type) \
	((const type *)(const void *)((const char *)(mod) + (k)->off))


enum cfg_logtarget { CFG_LOG_STDERR = 0, CFG_LOG_SYSLOG };

/** log_target, log_level (log_conf.c) */
struct log_conf {
	enum cfg_logtarget log_target;
	int log_level;              /**< LOG_DEBUG .. LOG_ERR (syslog.h) */
};

extern const struct cfg_module log_conf_module;


/* ------------------------------------------------------------------- log */

#include <syslog.h>

void tlog_init(enum cfg_logtarget target, int level, const char *ident);
void tlog_set_level(int level);
bool tlog_enabled(int level);
void tlog(int level, const char *callid, const char *fmt, ...);
void tlog_text(int level, const char *tag, const char *p, size_t len);

/* bytes from the network as text (text.c) */
bool   text_utf8_valid(const char *p, size_t len);
size_t text_escape(char *dst, size_t sz, const char *p, size_t len);

/* the service manager's readiness protocol, sd_notify(3) (svcnotify.c) */
int svc_notify(const char *state);
int svc_notifyf(const char *fmt, ...);

#define tlog_dbg(cid, ...)  do { if (tlog_enabled(LOG_DEBUG)) \
			tlog(LOG_DEBUG, cid, __VA_ARGS__); } while (0)
#define tlog_info(cid, ...) tlog(LOG_INFO, cid, __VA_ARGS__)
#define tlog_warn(cid, ...) tlog(LOG_WARNING, cid, __VA_ARGS__)
#define tlog_err(cid, ...)  tlog(LOG_ERR, cid, __VA_ARGS__)


/* ---------------------------------------------------------------- timers */

/** Statistics of the timer wheel that replaces libre's timer list */
struct tmr_wheel_stats {
	uint64_t started;
	uint64_t fired;
	uint64_t live;
};

void tmr_wheel_stats(struct tmr_wheel_stats *st);

#endif
