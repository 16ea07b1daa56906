/**
 * @file re_private.h  libre functions that libre exports but does not declare
 *
 * libre 1.1.x exports these from libre.so but declares them only in its
 * private headers (src/sip/sip.h).  Every such declaration lives here and
 * nowhere else; configure reads the function names from this file and
 * fails if the installed libre does not export one of them.  One
 * declaration a line, starting at the first column, so that configure
 * finds it.
 *
 * configure also pins libre to 1.1.x: the signatures are those of 1.1.0.
 * This header includes nothing but <re.h>.
 */

#ifndef TOLLGATE_RE_PRIVATE_H
#define TOLLGATE_RE_PRIVATE_H

#include <re.h>

/*
 * The UAC leg sends its INVITE with sip_request() and its own Max-Forwards
 * (the public sip_drequestf() always writes 70): it needs the dialog's
 * headers, target, route set and hash.
 */
int sip_dialog_encode(struct mbuf *mb, struct sip_dialog *dlg, uint32_t cseq,
		      const char *met);
const char *sip_dialog_uri(const struct sip_dialog *dlg);
const struct uri *sip_dialog_route(const struct sip_dialog *dlg);
uint32_t sip_dialog_hash(const struct sip_dialog *dlg);

/* true for TCP and TLS: a 2xx is not retransmitted over them */
bool sip_transp_reliable(enum sip_transp tp);

#endif
