/**
 * @file tls.c  SIP over TLS: our certificate and key, the check of
 *              the gateways' certificates, and the keys naming the files
 *
 * libre's TLS is OpenSSL.  One context serves both directions: callers
 * connecting to a `sip_listen tls:` address, and the connections libre
 * opens to `transport=tls` gateways.  libre 1.1.0 never checks the
 * certificate of a server it connects to, so tollgate does it on libre's
 * OpenSSL context: every client-side handshake verifies the server's
 * chain against sip_tls_ca (or the system's trust store) and that the
 * certificate names the address it was opened to (b2bua_tls_expect()),
 * and fails if either does not hold.  Callers are not asked for
 * certificates.
 */

#define USE_OPENSSL 1
#include <string.h>
#include <sys/stat.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include "b2bua_int.h"


/* the line of the first tls: listener, 0 if there is none */
static unsigned tls_listen_line(const struct b2bua_conf *cfg)
{
	struct le *le;

	LIST_FOREACH(&cfg->listenl, le) {
		const struct cfg_listen *l = le->data;

		if (l->tp == SIP_TRANSP_TLS)
			return l->line;
	}

	return 0;
}


/** Does the configuration use TLS at all? */
bool b2bua_tls_needed(const struct b2bua_conf *cfg)
{
	return tls_listen_line(cfg) || cfg->tls_cert.path ||
		cfg->tls_key.path || cfg->tls_ca.path;
}


static int verify_handler(int ok, X509_STORE_CTX *ctx)
{
	if (!ok) {
		int e = X509_STORE_CTX_get_error(ctx);

		tlog_warn(NULL, "tls: server certificate refused (depth"
			  " %d): %s", X509_STORE_CTX_get_error_depth(ctx),
			  X509_verify_cert_error_string(e));
	}

	return ok;
}


/* every handshake where we are the client (toward a gateway) verifies */
static void info_handler(const SSL *ssl, int where, int ret)
{
	(void)ret;

	if (!(where & SSL_CB_HANDSHAKE_START) || SSL_is_server((SSL *)ssl))
		return;

	SSL_set_verify((SSL *)ssl, SSL_VERIFY_PEER, verify_handler);
}


/**
 * The name the next TLS connection libre opens must be for.  libre makes
 * a connection's OpenSSL object inside sip_request(), from the context's
 * verification parameters: set them just before, clear them just after
 * (host NULL), and the connection checks that the server's certificate
 * names the address (or host name) it was opened to.
 *
 * @param tls   The SIP stack's TLS context (NULL: nothing to do)
 * @param host  The IP address or host name of the next hop, NULL to clear
 */
void b2bua_tls_expect(struct tls *tls, const struct pl *host)
{
	X509_VERIFY_PARAM *vp;
	char name[256];
	SSL_CTX *ctx;

	if (!tls)
		return;

	ctx = tls_openssl_context(tls);
	vp = ctx ? SSL_CTX_get0_param(ctx) : NULL;
	if (!vp)
		return;

	(void)X509_VERIFY_PARAM_set1_ip(vp, NULL, 0);
	(void)X509_VERIFY_PARAM_set1_host(vp, NULL, 0);

	if (!host || !pl_isset(host) || host->l >= sizeof(name))
		return;

	(void)pl_strcpy(host, name, sizeof(name));

	if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1)
		(void)X509_VERIFY_PARAM_set1_host(vp, name, 0);
}


enum { TLS_FILE_MAX = 1 << 20 };


/*
 * A key file must be a regular file of sane size: OpenSSL would read a
 * device or a FIFO for ever
 */
static int file_check(char *why, size_t whysz, const char *what,
		      const struct cfg_file *f, unsigned *linep)
{
	struct stat st;

	if (stat(f->path, &st)) {
		int err = errno;

		(void)re_snprintf(why, whysz, "cannot load %s '%s': %m", what,
				  f->path, err);
		*linep = f->line;
		return EINVAL;
	}

	if (!S_ISREG(st.st_mode) || st.st_size > TLS_FILE_MAX) {
		(void)re_snprintf(why, whysz, "cannot load %s '%s': not a "
				  "regular file of at most %u bytes", what,
				  f->path, TLS_FILE_MAX);
		*linep = f->line;
		return EINVAL;
	}

	return 0;
}


/* "what FILE: OpenSSL's reason" into why */
static int load_err(char *why, size_t whysz, const char *what,
		    const char *file)
{
	unsigned long e = ERR_peek_last_error();
	char reason[160] = "unknown error";

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();

	(void)re_snprintf(why, whysz, "cannot load %s '%s': %s", what, file,
			  reason);

	return EINVAL;
}


/**
 * The TLS context of the SIP stack, from the configuration's files
 *
 * @param tlsp   The context (owned by the caller)
 * @param cfg    The B2BUA's configuration
 * @param why    On error: the reason, naming the file
 * @param whysz  Size of why
 * @param linep  On error: the line of the key that named the file
 *
 * @return 0, EINVAL (a file does not load), ENOMEM
 */
int b2bua_tls_alloc(struct tls **tlsp, const struct b2bua_conf *cfg,
		    char *why, size_t whysz, unsigned *linep)
{
	struct tls *tls = NULL;
	SSL_CTX *ctx;
	int err;

	if (!tlsp || !cfg || !why || !linep)
		return EINVAL;

	*linep = 0;

	if (!cfg->tls_cert.path || !cfg->tls_key.path) {
		(void)re_snprintf(why, whysz, "SIP over TLS needs sip_tls_cert"
				  " and sip_tls_key");
		*linep = cfg->tls_cert.path ? cfg->tls_cert.line :
			cfg->tls_key.path ? cfg->tls_key.line :
			tls_listen_line(cfg);
		return EINVAL;
	}

	err = file_check(why, whysz, "certificate", &cfg->tls_cert, linep);
	if (!err)
		err = file_check(why, whysz, "private key", &cfg->tls_key,
				 linep);
	if (!err && cfg->tls_ca.path)
		err = file_check(why, whysz, "CA file", &cfg->tls_ca, linep);
	if (err)
		return err;

	err = tls_alloc(&tls, TLS_METHOD_SSLV23, NULL, NULL);
	if (err) {
		(void)re_snprintf(why, whysz, "cannot make a TLS context: %m",
				  err);
		return err;
	}

	ctx = tls_openssl_context(tls);
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		(void)re_snprintf(why, whysz, "cannot set up the TLS context");
		err = ENOMEM;
		goto out;
	}

	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert.path) != 1) {
		*linep = cfg->tls_cert.line;
		err = load_err(why, whysz, "certificate", cfg->tls_cert.path);
		goto out;
	}

	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key.path,
					SSL_FILETYPE_PEM) != 1) {
		*linep = cfg->tls_key.line;
		err = load_err(why, whysz, "private key", cfg->tls_key.path);
		goto out;
	}

	if (SSL_CTX_check_private_key(ctx) != 1) {
		*linep = cfg->tls_key.line;
		ERR_clear_error();
		(void)re_snprintf(why, whysz, "private key '%s' does not "
				  "belong to the certificate '%s'",
				  cfg->tls_key.path, cfg->tls_cert.path);
		err = EINVAL;
		goto out;
	}

	if (cfg->tls_ca.path) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca.path,
						  NULL) != 1) {
			*linep = cfg->tls_ca.line;
			err = load_err(why, whysz, "CA file",
				       cfg->tls_ca.path);
			goto out;
		}
	}
	else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ERR_clear_error();
		tlog_warn(NULL, "tls: no system trust store: TLS gateways "
			  "need sip_tls_ca");
	}

	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_info_callback(ctx, info_handler);

 out:
	if (err)
		mem_deref(tls);
	else
		*tlsp = tls;

	return err;
}


/* ------------------------------------------- keys of b2bua/conf.c */

/* sip_tls_cert, sip_tls_key, sip_tls_ca: a file, and the line naming it */
int b2bua_conf_tls_file(struct cfg_parser *p, void *mod,
			const struct cfg_key *k, const struct pl *val)
{
	struct cfg_file *f = CFG_FIELD(mod, k, struct cfg_file);
	struct pl arg;
	int err;

	err = cfg_one_arg(p, val, &arg, "one file name");
	if (err)
		return err;

	err = cfg_set_str(&f->path, &arg);
	if (err)
		return err;

	f->line = cfg_line(p);

	return 0;
}


int b2bua_conf_print_tls_file(struct re_printf *pf, const void *mod,
			      const struct cfg_key *k)
{
	const struct cfg_file *f = CFG_CFIELD(mod, k, struct cfg_file);

	if (!f->path)
		return 0;

	return re_hprintf(pf, "%s %s\n", k->name, f->path);
}


/*
 * TLS gateways need a TLS listener (libre opens their connections with
 * its context), and the files must load: a bad one stops the start with
 * the line that named it.
 */
void b2bua_conf_tls_check(struct cfg_parser *p, const struct b2bua_conf *cfg)
{
	bool listen = false;
	struct tls *tls = NULL;
	char why[256] = "";
	unsigned line = 0;
	struct le *le;

	LIST_FOREACH(&cfg->listenl, le) {
		const struct cfg_listen *l = le->data;

		if (l->tp == SIP_TRANSP_TLS)
			listen = true;
	}

	LIST_FOREACH(&cfg->gatewayl, le) {
		const struct cfg_gateway *gw = le->data;

		if (gw->tp == SIP_TRANSP_TLS && !listen) {
			cfg_set_line(p, gw->line);
			(void)cfg_err(p, "gateway %s: transport=tls needs a "
				      "'sip_listen tls:...'", gw->name);
		}
	}

	if (!b2bua_tls_needed(cfg))
		return;

	if (b2bua_tls_alloc(&tls, cfg, why, sizeof(why), &line)) {
		cfg_set_line(p, line);
		(void)cfg_err(p, "%s", why);
	}

	mem_deref(tls);
}
