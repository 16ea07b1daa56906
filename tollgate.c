/**
 * @file tollgate.c  The tollgate daemon: options, start-up, signals,
 *                   shutdown
 *
 * The composition root: the one file that knows every module.  It reads
 * the configuration with every module's keys, hands each module its own
 * part and whatever it needs from another, and wires them together.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <signal.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include "core.h"
#include "b2bua.h"
#include "db.h"
#include "billing.h"
#include "relay.h"
#include "api.h"
#include "tollgate.h"


#ifndef TOLLGATE_SRC_SQLDIR
#define TOLLGATE_SRC_SQLDIR TOLLGATE_SQLDIR
#endif

enum { CRED_TIMEOUT_MS = 2000, FD_MAX = 65536 };


static struct {
	struct cfg *cfg;         /**< owned */
	const struct tg_conf *tgc;   /**< borrowed from cfg */
	struct b2bua *b2bua;     /**< owned */
	struct db *db;           /**< owned */
	struct media_relay *relay; /**< owned; freed after the b2bua */
	struct billing *billing; /**< owned; freed before the b2bua */
	struct api *api;         /**< owned; freed after the b2bua  */
	struct tmr tmr_grace;    /**< how long a drain lets calls run */
	struct tmr tmr_bye;      /**< bounds the wait for BYE answers */
	struct tmr tmr_flush;    /**< bounds the billing flush at exit */
	struct tmr tmr_stop;     /**< leaves the event loop           */
	bool draining;           /**< no new calls (SIGTERM, API)     */
	bool stopping;           /**< every call got BYE              */
	bool finishing;          /**< settlements written, then exit  */
	bool lease;              /**< this run claimed the node's lease */
	char instance[24];       /**< random id of this process       */
	char lease_key[PATH_MAX + 300]; /**< host name:state_dir      */
	char lease_sip[80];      /**< the first sip_listen            */
	char lease_api[64];      /**< api_listen                      */
	int lock_fd;             /**< state_dir/node.lock, flocked    */
	int hup_fd;              /**< signalfd of SIGHUP, -1 if none  */
	const struct b2bua_conf *b2bc0; /**< (ref.) the first one: the
					   API's realm is borrowed from it */
	struct b2bua_reload *rl; /**< owned: routing table of a reload */
	uint64_t reloads;        /**< reloads applied                 */
	const char *node;        /**< borrowed: node_name (not reloaded) */
	int exit_code;
} app;


/* exit statuses (docs/tollgate.8) */
enum { EXIT_FAIL = 1, EXIT_HELD = 3 };


/* the relay's statistics of a call that ended go into its CDR */
static void media_ended(const struct b2bua_call *call,
			const struct relay_media *m, void *arg)
{
	billing_call_media(arg, call, m->json);
}


static int errpf_stderr(const char *p, size_t size, void *arg)
{
	(void)arg;

	return fwrite(p, 1, size, stderr) == size ? 0 : ENOMEM;
}


static struct re_printf errpf = { errpf_stderr, NULL };


static int outpf_stdout(const char *p, size_t size, void *arg)
{
	(void)arg;

	return fwrite(p, 1, size, stdout) == size ? 0 : ENOMEM;
}


static struct re_printf outpf = { outpf_stdout, NULL };


static void usage(void)
{
	(void)printf(
		"usage: tollgate [-t] -f FILE [-d CONNINFO]\n"
		"       tollgate --migrate (-f FILE | -d CONNINFO)"
		" [--sqldir DIR]\n"
		"       tollgate --ledger-check (-f FILE | -d CONNINFO)\n"
		"       tollgate --import-rates CSV [--replace]"
		" (-f FILE | -d CONNINFO)\n"
		"       tollgate --version | --help\n"
		"\n"
		"  -f, --config FILE   configuration file\n"
		"  -t, --test          check the configuration and exit\n"
		"  -d, --db CONNINFO   PostgreSQL conninfo (overrides "
		"db_conninfo)\n"
		"      --migrate       apply pending sql/ migrations and exit\n"
		"      --sqldir DIR    where the migrations are (default %s)\n"
		"      --ledger-check  check that the money ledger and the "
		"balances agree;\n"
		"                      exit 0 if so, 1 on a violation, 2 on "
		"an error\n"
		"      --import-rates CSV  check a rate deck and apply it in one "
		"transaction;\n"
		"                      exit 0 if applied, 1 with the errors "
		"(FILE:LINE: field)\n"
		"      --replace       with --import-rates: each plan of the "
		"deck keeps only its rates\n"
		"  -v, --version       print the version and exit\n"
		"  -h, --help          this text\n"
		"\n"
		"tollgate runs in the foreground.  SIGTERM drains: no new "
		"calls, the running\n"
		"ones end (shutdown_grace s at most), then it exits; SIGINT, "
		"or a signal while\n"
		"draining, ends every call with BYE and exits.  SIGHUP reads "
		"the configuration\nagain without dropping a call.\n",
		TOLLGATE_SQLDIR);
}


/* ---- account look-ups for caller identification ---- */

struct credctx {
	struct db_query *q;         /**< owned                       */
	b2bua_cred_done_h *done;
	void *arg;
};


static void credctx_destructor(void *arg)
{
	struct credctx *ctx = arg;

	mem_deref(ctx->q);
}


static void acct_handler(int err, const struct acct_info *acct, void *arg)
{
	struct credctx *ctx = arg;
	struct b2bua_cred cred;

	memset(&cred, 0, sizeof(cred));
	if (!err && acct) {
		cred.account_id = acct->id;
		cred.account = acct->name;
		cred.ha1 = acct->ha1;
		cred.ha1_sha256 = acct->ha1_sha256;
		cred.active = acct->active;
		cred.max_cps = acct->max_cps;
	}

	ctx->done(err, err ? NULL : &cred, ctx->arg);
}


static int cred_lookup(void **handlep, bool by_sipuser, const char *name,
		       b2bua_cred_done_h *done, void *done_arg, void *arg)
{
	struct credctx *ctx;
	int err;
	(void)arg;

	ctx = mem_zalloc(sizeof(*ctx), credctx_destructor);
	if (!ctx)
		return ENOMEM;

	ctx->done = done;
	ctx->arg = done_arg;

	if (by_sipuser)
		err = acct_by_sipuser(&ctx->q, app.db, name, CRED_TIMEOUT_MS,
				      acct_handler, ctx);
	else
		err = acct_by_name(&ctx->q, app.db, name, CRED_TIMEOUT_MS,
				   acct_handler, ctx);
	if (err) {
		mem_deref(ctx);
		return err;
	}

	*handlep = ctx;

	return 0;
}


/* ---- what the REST API asks of billing ---- */

static void hook_account_changed(int64_t account_id, void *arg)
{
	(void)arg;

	billing_account_changed(app.billing, account_id);
}


static int hook_call_money(const struct b2bua_call *call,
			   struct api_call_money *money, void *arg)
{
	struct billing_call_info bi;
	int err;
	(void)arg;

	if (!app.billing)
		return ENOENT;

	err = billing_call_info(app.billing, call, &bi);
	if (err)
		return err;

	money->rate_id = bi.rate_id;
	money->reserved = bi.reserved;
	money->spent = bi.spent;
	money->seconds = bi.seconds;
	money->seconds_left = bi.seconds_left;

	return 0;
}


static void hook_billing_metrics(struct api_billing_metrics *m, void *arg)
{
	struct billing_stats bs;
	(void)arg;

	memset(&bs, 0, sizeof(bs));
	billing_stats(app.billing, &bs);

	m->cutoffs = bs.cutoffs;
	m->authorized = bs.authorized;
	m->refused = bs.refused;
	m->shed = bs.shed;
	m->takeovers = bs.takeovers;
	m->taken_over = bs.taken_over;
	m->pending = bs.pending;
	m->dead_letters = bs.dead_letters;
	m->spool_syncs = bs.spool_syncs;
	m->spool_sync_us_sum = bs.spool_sync_us_sum;
	m->spool_sync_us_max = bs.spool_sync_us_max;
	m->spool_bytes = bs.spool_bytes;
	m->spool_ok = bs.spool_ok;
}


/* a call's cut-off moved: the API's event streams hear of it */
static void hook_armed(const struct b2bua_call *call, void *arg)
{
	(void)arg;

	if (app.api)
		api_call_money_changed(app.api, call);
}


static const struct api_hooks api_billing_hooks = {
	.account_changed = hook_account_changed,
	.call_money = hook_call_money,
	.billing_metrics = hook_billing_metrics,
	.arg = NULL,
};


/* ---- the node's lease ----
 *
 * One process per node name.  At start it takes the flock of
 * state_dir/node.lock without waiting (a second process on this state_dir
 * exits 3), then claims the name's lease in the database: a holder that
 * is alive elsewhere makes it exit 3, naming the holder; a holder with the
 * same lock key (host name and state_dir) is the dead last run of this
 * node, since the flock was free, and the lease is taken at once.
 * Billing renews it; if it finds the name held by another live instance
 * later, the process ends its calls and exits 1.
 */

static void time_utc(char *buf, size_t sz, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!ms || !gmtime_r(&t, &tm) ||
	    !strftime(buf, sz, "%Y-%m-%dT%H:%M:%SZ", &tm))
		str_ncpy(buf, "-", sz);
}


/* flock state_dir/node.lock: 0, EBUSY (another process has it, its PID
 * in pidbuf) or another errno */
static int node_lock(const char *dir, char *pidbuf, size_t sz)
{
	char path[PATH_MAX];
	char pid[24];
	ssize_t n;
	int fd;

	app.lock_fd = -1;
	if (re_snprintf(path, sizeof(path), "%s/node.lock", dir) < 0)
		return ENAMETOOLONG;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;

	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = errno == EWOULDBLOCK ? EBUSY : errno;

		n = pread(fd, pidbuf, sz - 1, 0);
		pidbuf[n > 0 ? n : 0] = '\0';
		pidbuf[strcspn(pidbuf, "\n")] = '\0';
		(void)close(fd);
		return err;
	}

	(void)re_snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, strlen(pid), 0) < 0)
		tlog_warn(NULL, "%s: cannot write the PID: %m", path, errno);

	app.lock_fd = fd;

	return 0;
}


static int lease_claim(const char *conninfo, const struct billing_conf *blc,
		       const char *sip, const char *api)
{
	char host[256] = "", dir[PATH_MAX];
	char pidbuf[32] = "", since[32], until[32];
	struct db_lease_holder holder;
	struct db_lease req;
	int err;

	err = node_lock(blc->state_dir, pidbuf, sizeof(pidbuf));
	if (err == EBUSY) {
		tlog_err(NULL, "%s/node.lock is held by process %s: another "
			 "tollgate runs on this state_dir", blc->state_dir,
			 pidbuf[0] ? pidbuf : "?");
		return EBUSY;
	}
	if (err)
		tlog_warn(NULL, "%s/node.lock: %m: a dead run of this node on "
			  "this host cannot be told apart", blc->state_dir,
			  err);

	if (gethostname(host, sizeof(host) - 1))
		str_ncpy(host, "localhost", sizeof(host));
	if (!realpath(blc->state_dir, dir))
		str_ncpy(dir, blc->state_dir, sizeof(dir));
	(void)re_snprintf(app.lease_key, sizeof(app.lease_key), "%s:%s",
			  host, dir);
	(void)re_snprintf(app.instance, sizeof(app.instance), "%016llx",
			  (unsigned long long)rand_u64());

	req.name = blc->node_name;
	req.instance = app.instance;
	req.sip_addr = sip;
	req.api_addr = api;
	req.lock_key = app.lease_key;
	req.seconds = billing_lease_seconds(blc);
	req.lock_free = app.lock_fd >= 0;

	err = db_lease_claim_sync(conninfo, &req, &holder, &errpf);
	if (err == EBUSY) {
		time_utc(since, sizeof(since), holder.since_ms);
		time_utc(until, sizeof(until), holder.until_ms);
		tlog_err(NULL, "node %s is held by instance %s (sip %s, api %s)"
			 " since %s, lease until %s: not starting",
			 blc->node_name, holder.instance,
			 holder.sip_addr[0] ? holder.sip_addr : "-",
			 holder.api_addr[0] ? holder.api_addr : "-",
			 since, until);
		return EBUSY;
	}
	if (err)
		return err;

	app.lease = true;
	time_utc(until, sizeof(until), holder.until_ms);
	tlog_info(NULL, "node %s: lease claimed by instance %s until %s",
		  blc->node_name, app.instance, until);

	return 0;
}


static void calls_stop(void);

static void lease_lost(const char *instance, const char *sip,
		       uint64_t since_ms, void *arg)
{
	char since[32];
	(void)arg;

	time_utc(since, sizeof(since), since_ms);
	tlog_err(NULL, "the node's name is held by instance %s (sip %s) "
		 "since %s: ending every call and exiting", instance,
		 sip && *sip ? sip : "-", since);

	app.lease = false;
	app.exit_code = EXIT_FAIL;
	app.draining = true;
	(void)svc_notifyf("STOPPING=1\nSTATUS=node name held by instance "
			  "%s: ending every call", instance);
	calls_stop();
}


/* ---- draining and shutdown ----
 *
 * SIGTERM or POST /v1/node/drain: the node drains.  New calls and OPTIONS
 * probes get 503, running calls go on for shutdown_grace seconds at most;
 * then whatever is left gets BYE on both legs (and BYE_WAIT_MS for the
 * answers), the settlements are written (BILLING_FLUSH_MS at most) and
 * the process exits.  SIGINT, or a signal while draining, ends every call
 * at once; a signal after that exits at once.
 */

enum { BYE_WAIT_MS = 5000, BILLING_FLUSH_MS = 5000 };


static void stop_now(void *arg)
{
	(void)arg;

	re_cancel();
}


static void billing_flushed(void *arg)
{
	(void)arg;

	tmr_cancel(&app.tmr_flush);
	tlog_info(NULL, "billing: every settlement written");
	tmr_start(&app.tmr_stop, 0, stop_now, NULL);
}


static void billing_flush_expired(void *arg)
{
	(void)arg;

	tlog_warn(NULL, "billing: settlements still unwritten after %u ms:"
		  " they stay in the spool for the next start",
		  (unsigned)BILLING_FLUSH_MS);
	re_cancel();
}


/* no call is left (or none answers): settle, then exit */
static void finish(void)
{
	if (app.finishing)
		return;

	app.finishing = true;
	tmr_cancel(&app.tmr_grace);
	tmr_cancel(&app.tmr_bye);
	(void)svc_notify("STATUS=writing the settlements");

	if (app.billing) {
		tmr_start(&app.tmr_flush, BILLING_FLUSH_MS,
			  billing_flush_expired, NULL);
		billing_flush(app.billing, billing_flushed, NULL);
		return;
	}

	tmr_start(&app.tmr_stop, 0, stop_now, NULL);
}


static void calls_gone(void *arg)
{
	(void)arg;

	tlog_info(NULL, "all calls ended");
	finish();
}


static void bye_expired(void *arg)
{
	(void)arg;

	tlog_warn(NULL, "%u calls still open %u ms after their BYE: "
		  "exiting", b2bua_call_count(app.b2bua),
		  (unsigned)BYE_WAIT_MS);
	finish();
}


/* BYE on both legs of every call, now */
static void calls_stop(void)
{
	if (app.stopping)
		return;

	app.stopping = true;
	tmr_cancel(&app.tmr_grace);
	tmr_start(&app.tmr_bye, BYE_WAIT_MS, bye_expired, NULL);
	b2bua_shutdown(app.b2bua, calls_gone, NULL);
}


static void grace_expired(void *arg)
{
	(void)arg;

	tlog_warn(NULL, "%u calls still running after %u s of draining: "
		  "ending them", b2bua_call_count(app.b2bua),
		  app.tgc->shutdown_grace);
	calls_stop();
}


/* the node drains: no new calls; the running ones end within the grace */
static uint32_t node_drain(const char *why)
{
	if (app.draining)
		return b2bua_call_count(app.b2bua);

	app.draining = true;
	tlog_info(NULL, "%s: draining, %u calls running, at most %u s",
		  why, b2bua_call_count(app.b2bua), app.tgc->shutdown_grace);
	(void)svc_notifyf("STOPPING=1\nSTATUS=draining (%s): %u calls "
			  "running, at most %u s", why,
			  b2bua_call_count(app.b2bua),
			  app.tgc->shutdown_grace);

	billing_node_draining(app.billing, true);

	tmr_start(&app.tmr_grace, (uint64_t)app.tgc->shutdown_grace * 1000,
		  grace_expired, NULL);
	b2bua_drain(app.b2bua, calls_gone, NULL);

	return b2bua_call_count(app.b2bua);
}


static uint32_t api_drain(void *arg)
{
	(void)arg;

	return node_drain("POST /v1/node/drain");
}


static void signal_handler(int sig)
{
	if (app.stopping || app.finishing) {
		tlog_warn(NULL, "signal %d again: exiting now", sig);
		re_cancel();
		return;
	}

	/* libre hands SIGALRM over as it does SIGTERM */
	if (sig != SIGINT && !app.draining) {
		(void)node_drain(sig == SIGTERM ? "SIGTERM" : "signal");
		return;
	}

	app.draining = true;
	tlog_info(NULL, "signal %d: ending %u calls now", sig,
		  b2bua_call_count(app.b2bua));
	(void)svc_notifyf("STOPPING=1\nSTATUS=signal %d: ending %u calls",
			  sig, b2bua_call_count(app.b2bua));
	billing_node_draining(app.billing, true);
	calls_stop();
}


/* ---- reload ----
 *
 * SIGHUP reads the configuration file again.  The signal is blocked in
 * every thread and read from a signalfd on the event loop, so the reload
 * runs there, between two events: the new file is parsed and checked
 * whole into fresh structs (cfg_reload()), and only if it is good is it
 * handed to the modules, all in one go.  Keys that cannot change while
 * running keep their old value and are named in the log.
 */

/* collects the printed lines, logs each when it is complete */
struct linebuf {
	char buf[1024];
	size_t len;
	int level;
	const char *tag;
};


static int linebuf_print(const char *p, size_t size, void *arg)
{
	struct linebuf *lb = arg;
	size_t i;

	for (i = 0; i < size; i++) {
		if (p[i] == '\n') {
			if (lb->len)
				tlog(lb->level, NULL, "%s%b", lb->tag,
				     lb->buf, lb->len);
			lb->len = 0;
			continue;
		}
		if (lb->len < sizeof(lb->buf))
			lb->buf[lb->len++] = p[i];
	}

	return 0;
}


static void reload_routed(int err, void *arg)
{
	(void)arg;

	app.rl = mem_deref(app.rl);
	if (err)
		tlog_warn(NULL, "reload: routing table not loaded yet (%m): "
			  "retrying", err);
	else
		tlog_info(NULL, "reload: new calls are routed by the new "
			  "configuration's gateways and routes");
}


static const char *level_name(int level)
{
	switch (level) {

	case LOG_DEBUG:   return "debug";
	case LOG_INFO:    return "info";
	case LOG_NOTICE:  return "notice";
	case LOG_WARNING: return "warning";
	default:          return "error";
	}
}


/**
 * Read the configuration file again and apply it
 *
 * @param why   what asked for it, for the log
 *
 * @return 0, EINVAL (bad file, nothing changed) or another errno
 */
static int config_reload(const char *why)
{
	struct linebuf errlb = { .level = LOG_ERR, .tag = "reload: " };
	struct linebuf keptlb = { .level = LOG_WARNING, .tag = "" };
	struct re_printf epf = { linebuf_print, &errlb };
	struct re_printf kpf = { linebuf_print, &keptlb };
	const struct b2bua_conf *b2bc;
	const struct api_conf *apic;
	const struct log_conf *logc;
	struct cfg *cfg = NULL, *old;
	unsigned kept = 0;
	int err;

	(void)svc_notifyf("RELOADING=1\nSTATUS=reloading %s (%s)",
			  cfg_filename(app.cfg), why);
	tlog_info(NULL, "reload: %s: reading %s", why,
		  cfg_filename(app.cfg));

	err = cfg_reload(&cfg, app.cfg, &epf, &kpf, &kept);
	if (err) {
		tlog_err(NULL, "reload: %s is not valid: nothing changed",
			 cfg_filename(app.cfg));
		api_reload_count(app.api, false, 0);
		(void)svc_notifyf("READY=1\nSTATUS=running, node %s; the "
				  "last reload failed", app.node);
		return err;
	}

	b2bc = cfg_get(cfg, &b2bua_conf_module);
	apic = cfg_get(cfg, &api_conf_module);
	logc = cfg_get(cfg, &log_conf_module);

	/* one step: every module takes its new part */
	app.rl = mem_deref(app.rl);
	err = b2bua_reconfigure(app.b2bua, b2bc, &app.rl, reload_routed,
				NULL);
	if (err)
		tlog_warn(NULL, "reload: routing table: %m", err);
	if (app.api)
		api_reconfigure(app.api, apic);
	else if (api_enabled(apic))
		tlog_warn(NULL, "reload: the REST API was off at start-up "
			  "and stays off until a restart");
	tlog_set_level(logc->log_level);
	app.tgc = cfg_get(cfg, &tg_conf_module);

	old = app.cfg;
	app.cfg = cfg;
	mem_deref(old);

	++app.reloads;
	api_reload_count(app.api, true, b2bua_wallclock_ms());

	tlog_info(NULL, "reload: %u gateways, %u routes, %u number rules, "
		  "%u trusted peers, %u api tokens, log level %s, %u keys "
		  "kept: applied", list_count(&b2bc->gatewayl),
		  list_count(&b2bc->routel), list_count(&b2bc->xlatl),
		  list_count(&b2bc->peerl), list_count(&apic->tokenl),
		  level_name(logc->log_level), kept);

	(void)svc_notifyf("READY=1\nSTATUS=running, node %s%s; "
			  "configuration reloaded", app.node,
			  app.billing ? "" : " (billing off)");

	return 0;
}


static void hup_handler(int flags, void *arg)
{
	struct signalfd_siginfo si;
	bool hup = false;
	(void)arg;

	if (!(flags & FD_READ))
		return;

	/* several SIGHUPs before the loop came here make one reload */
	while (read(app.hup_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		hup = true;

	if (hup)
		(void)config_reload("SIGHUP");
}


/* SIGHUP blocked in this thread and every thread it starts */
static int hup_block(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);

	return pthread_sigmask(SIG_BLOCK, &set, NULL);
}


static int hup_listen(void)
{
	sigset_t set;
	int err;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);

	app.hup_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (app.hup_fd < 0)
		return errno;

	err = fd_listen(app.hup_fd, FD_READ, hup_handler, NULL);
	if (err) {
		(void)close(app.hup_fd);
		app.hup_fd = -1;
	}

	return err;
}


static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;

	if (rl.rlim_cur < FD_MAX) {
		rl.rlim_cur = rl.rlim_max < FD_MAX ? rl.rlim_max : FD_MAX;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}


/* tollgate --ledger-check: 0 if the ledger agrees, 1 if not, 2 on error */
static int ledger_check(const char *conninfo)
{
	uint32_t violations = 0;
	int err;

	err = db_ledger_check_sync(conninfo, NULL, &violations, &errpf);
	if (err)
		return 2;

	return violations ? 1 : 0;
}


static const char *sqldir_default(void)
{
	struct stat st;

	if (!stat(TOLLGATE_SQLDIR, &st) && S_ISDIR(st.st_mode))
		return TOLLGATE_SQLDIR;

	return TOLLGATE_SRC_SQLDIR;
}


int main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{"config",  required_argument, NULL, 'f'},
		{"test",    no_argument,       NULL, 't'},
		{"db",      required_argument, NULL, 'd'},
		{"migrate", no_argument,       NULL, 'M'},
		{"sqldir",  required_argument, NULL, 'S'},
		{"ledger-check", no_argument,  NULL, 'L'},
		{"import-rates", required_argument, NULL, 'I'},
		{"replace", no_argument,       NULL, 'R'},
		{"version", no_argument,       NULL, 'v'},
		{"help",    no_argument,       NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *file = NULL, *conninfo = NULL, *sqldir = NULL;
	const char *import = NULL;
	bool replace = false;
	const struct b2bua_conf *b2bc;
	const struct billing_conf *blc;
	const struct log_conf *logc;
	const struct api_conf *apic;
	const struct db_conf *dbc;
	bool test = false, migrate = false, ledger = false;
	struct tmr_wheel_stats ws;
	char *ci = NULL;
	int c, err;

	app.lock_fd = -1;
	app.hup_fd = -1;

	while ((c = getopt_long(argc, argv, "f:td:vh", longopts, NULL)) != -1) {

		switch (c) {

		case 'f': file = optarg; break;
		case 't': test = true; break;
		case 'd': conninfo = optarg; break;
		case 'M': migrate = true; break;
		case 'S': sqldir = optarg; break;
		case 'L': ledger = true; break;
		case 'I': import = optarg; break;
		case 'R': replace = true; break;
		case 'v':
			(void)printf("tollgate %s (libre %s; media relay: %s)\n",
				     TOLLGATE_VERSION, sys_libre_version_get(),
				     relay_io_modes());
			return 0;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}

	if (optind < argc) {
		(void)fprintf(stderr, "tollgate: unexpected argument '%s'\n",
			      argv[optind]);
		return 2;
	}

	/* referenced so that the timer wheel is always linked in */
	tmr_wheel_stats(&ws);

	if (migrate && !file && conninfo) {
		err = db_migrate_sync(conninfo, sqldir ? sqldir
				      : sqldir_default(), &errpf);
		return err ? 1 : 0;
	}

	if (ledger && !file && conninfo)
		return ledger_check(conninfo);

	if (import && !file && conninfo)
		return api_rates_import_file(conninfo, import, replace,
					     &outpf, &errpf);

	if (!file) {
		(void)fprintf(stderr, "tollgate: no configuration file "
			      "(-f FILE)\n");
		usage();
		return 2;
	}

	err = cfg_load(&app.cfg, file, tollgate_modv, tollgate_modc, &errpf);
	if (err) {
		(void)fprintf(stderr, "tollgate: configuration %s is not "
			      "valid\n", file);
		return ledger ? 2 : 1;
	}

	if (test) {
		(void)re_printf("%H", cfg_print, app.cfg);
		(void)fprintf(stderr, "tollgate: configuration %s is ok\n",
			      file);
		mem_deref(app.cfg);
		return 0;
	}

	app.tgc = cfg_get(app.cfg, &tg_conf_module);
	b2bc = cfg_get(app.cfg, &b2bua_conf_module);
	app.b2bc0 = mem_ref((void *)b2bc);
	blc  = cfg_get(app.cfg, &billing_conf_module);
	logc = cfg_get(app.cfg, &log_conf_module);
	apic = cfg_get(app.cfg, &api_conf_module);
	dbc  = cfg_get(app.cfg, &db_conf_module);

	if (!conninfo)
		conninfo = dbc->db_conninfo;

	if (migrate) {
		err = db_migrate_sync(conninfo, sqldir ? sqldir
				      : sqldir_default(), &errpf);
		mem_deref(app.cfg);
		return err ? 1 : 0;
	}

	if (ledger) {
		c = ledger_check(conninfo);
		mem_deref(app.cfg);
		return c;
	}

	if (import) {
		c = api_rates_import_file(conninfo, import, replace, &outpf,
					  &errpf);
		mem_deref(app.cfg);
		return c;
	}

	tlog_init(logc->log_target, logc->log_level, "tollgate");

	/* every session names the node: pg_stat_activity, and the node that
	   settled a CDR (cdrs.settled_by) */
	err = db_conninfo_appname(&ci, conninfo, blc->node_name);
	if (err) {
		tlog_err(NULL, "db_conninfo: libpq cannot parse it");
		mem_deref(app.cfg);
		return 1;
	}
	conninfo = ci;

	err = db_schema_check_sync(conninfo, &errpf);
	if (err) {
		tlog_err(NULL, "database not ready; run: tollgate --migrate"
			 " -f %s", file);
		mem_deref(ci);
		mem_deref(app.cfg);
		return 1;
	}

	raise_fd_limit();

	/* before any thread starts: SIGHUP is read on the event loop */
	err = hup_block();
	if (err) {
		tlog_err(NULL, "SIGHUP: %m", err);
		goto out;
	}
	app.node = blc->node_name;

	err = libre_init();
	if (err) {
		tlog_err(NULL, "libre_init: %m", err);
		goto out;
	}

	err = fd_setsize(FD_MAX);
	if (err) {
		tlog_err(NULL, "fd_setsize: %m", err);
		goto out;
	}

	/* one process per node name, checked before anything listens */
	if (blc->billing) {
		char *sip = app.lease_sip, *api = app.lease_api;
		const struct cfg_listen *l = list_ledata(list_head(
							&b2bc->listenl));

		if (l) {
			char *p;

			(void)re_snprintf(sip, sizeof(app.lease_sip), "%s:%J",
					  sip_transp_name(l->tp), &l->addr);
			/* as sip_listen writes it: udp:ADDR:PORT */
			for (p = sip; *p && *p != ':'; p++)
				*p = (char)tolower((unsigned char)*p);
		}
		if (api_enabled(apic) && sa_isset(&apic->api_listen, SA_ALL))
			(void)re_snprintf(api, sizeof(app.lease_api), "%J",
					  &apic->api_listen);

		err = lease_claim(conninfo, blc, sip[0] ? sip : NULL,
				  api[0] ? api : NULL);
		if (err == EBUSY)
			app.exit_code = EXIT_HELD;
		if (err)
			goto out;
	}

	err = db_alloc(&app.db, conninfo, dbc->db_connections);
	if (!err) {
		db_set_statement_timeout(app.db, dbc->db_statement_timeout);
		err = acct_register_statements(app.db);
	}
	if (err) {
		tlog_err(NULL, "database client: %m", err);
		goto out;
	}

	err = b2bua_alloc(&app.b2bua, b2bc);
	if (err)
		goto out;

	b2bua_set_cred(app.b2bua, cred_lookup, NULL);

	/* routing: the configuration's gateways and routes written to the
	 * database, calls routed by the table it holds */
	err = b2bua_store_start(app.b2bua, app.db, conninfo);
	if (err) {
		tlog_err(NULL, "routing table: %m", err);
		goto out;
	}

	/* media relay: SDP rewrite, RTP/RTCP relay, media timeout, tone */
	err = relay_alloc(&app.relay, cfg_get(app.cfg, &relay_conf_module),
			  app.b2bua);
	if (err) {
		tlog_err(NULL, "media relay: %m", err);
		goto out;
	}

	/* prepaid billing: authorise, reserve, cut off, settle; it
	 * subscribes to the B2BUA after the relay, so a call's media
	 * statistics reach it before the call's end does */
	if (blc->billing) {
		err = billing_alloc(&app.billing, blc, app.db, app.b2bua,
				    conninfo);
		if (!err)
			err = relay_media_subscribe(app.relay, media_ended,
						    app.billing);
		if (!err && app.lease) {
			const struct billing_lease ls = {
				.instance = app.instance,
				.lock_key = app.lease_key,
				.sip_addr = app.lease_sip[0] ?
					    app.lease_sip : NULL,
				.api_addr = app.lease_api[0] ?
					    app.lease_api : NULL,
			};

			err = billing_lease_start(app.billing, &ls,
						  lease_lost, NULL);
		}
		if (err) {
			tlog_err(NULL, "billing: %m", err);
			goto out;
		}

		/* a node that starts takes calls, whatever its last run did */
		billing_node_draining(app.billing, false);
	}
	else {
		tlog_warn(NULL, "billing is off: calls are not charged");
	}

	/* REST API: calls, accounts and credit, rates, gateways and
	 * routes, CDRs, health and metrics */
	if (api_enabled(apic)) {
		/* the API computes HA1 with the B2BUA's digest realm */
		err = api_alloc(&app.api, apic, b2bc->realm, app.db,
				app.b2bua,
				app.billing ? &api_billing_hooks : NULL,
				app.relay);
		if (err) {
			tlog_err(NULL, "api: %m", err);
			goto out;
		}
		api_set_drain(app.api, api_drain, NULL);
		if (app.billing)
			billing_set_armed(app.billing, hook_armed, NULL);

		/* nodes sharing the database end each other's calls and
		 * list them (billing names this node in live_calls) */
		if (app.billing &&
		    api_cluster_start(app.api, blc->node_name, conninfo))
			tlog_warn(NULL, "api: this node takes no part in the "
				  "cluster's control");
	}
	else {
		tlog_info(NULL, "api: no api_token and no open path: the "
			  "REST API is off");
	}

	err = hup_listen();
	if (err) {
		tlog_err(NULL, "SIGHUP: %m", err);
		goto out;
	}

	tlog_info(NULL, "tollgate %s running (config %s)", TOLLGATE_VERSION,
		  file);

	/* SIP listens, the database answered, the API listens: a service
	   manager waiting for us (Type=notify) may go on */
	(void)svc_notifyf("READY=1\nSTATUS=running, node %s%s",
			  blc->node_name, app.billing ? "" : " (billing off)");

	err = re_main(signal_handler);
	if (err)
		tlog_err(NULL, "event loop: %m", err);

	tlog_info(NULL, "tollgate stopped");

 out:
	tmr_cancel(&app.tmr_grace);
	tmr_cancel(&app.tmr_bye);
	tmr_cancel(&app.tmr_flush);
	tmr_cancel(&app.tmr_stop);
	if (app.billing)
		tlog_info(NULL, "%H", billing_debug, app.billing);
	app.billing = mem_deref(app.billing);
	app.b2bua = mem_deref(app.b2bua);

	/* a clean exit frees the name at once (unless calls of the node
	   are still live in the database: then the lease runs out and a
	   surviving node settles them) */
	if (app.lease) {
		c = db_lease_release_sync(conninfo, blc->node_name,
					  app.instance, &errpf);
		if (!c)
			tlog_info(NULL, "node %s: lease released",
				  blc->node_name);
		else if (c == ENOENT)
			tlog_warn(NULL, "node %s: lease not released (taken, "
				  "or live calls remain): it runs out",
				  blc->node_name);
	}
	if (app.lock_fd >= 0)
		(void)close(app.lock_fd);
	if (app.api)
		tlog_info(NULL, "%H", api_debug, app.api);
	app.api = mem_deref(app.api);
	app.relay = mem_deref(app.relay);
	app.db = mem_deref(app.db);
	app.rl = mem_deref(app.rl);
	if (app.hup_fd >= 0) {
		fd_close(app.hup_fd);
		(void)close(app.hup_fd);
	}
	app.b2bc0 = mem_deref((void *)app.b2bc0);
	app.cfg = mem_deref(app.cfg);
	libre_close();
	mem_deref(ci);

	if (app.exit_code)
		return app.exit_code;

	return err ? EXIT_FAIL : 0;
}
