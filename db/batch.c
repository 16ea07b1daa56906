/**
 * @file batch.c  PostgreSQL client: several queries as one command
 *
 * A statement with a batch form (db_prepare_batch()) takes the queries of
 * the same statement waiting behind it along: one round trip, one
 * transaction, its k-th parameter an array of their k-th values.  The
 * rows come back numbered by query and are split into one result each.
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "db_int.h"


/* append v to an array literal as one quoted element (NULL for NULL) */
static int array_elem(struct mbuf *mb, const char *v)
{
	int err = 0;

	if (!v)
		return mbuf_write_str(mb, "NULL");

	err |= mbuf_write_u8(mb, '"');
	for (; *v && !err; v++) {
		if (*v == '"' || *v == '\\')
			err |= mbuf_write_u8(mb, '\\');
		err |= mbuf_write_u8(mb, (uint8_t)*v);
	}
	err |= mbuf_write_u8(mb, '"');

	return err;
}


/*
 * Send q together with the queries of the same statement queued after it
 * (those no fence holds back, at most the statement's batch_max) as one
 * command: the batch form of the statement, its k-th parameter an array
 * of their k-th values.  Its first column numbers the query a row belongs
 * to, from 1; command_done() gives each query its own rows.
 *
 * @return 1 if sent, 0 if q goes alone (nothing to batch it with), -1 if
 *         the connection failed
 */
int db_batch_send(struct db_conn *c, struct db_query *q)
{
	struct db *db = c->db;
	const struct db_stmt *stmt = q->stmt;
	struct db_query *mv[DB_BATCH_MAX];
	struct mbuf *pv[DB_BATCH_PARAMS];
	const char *vv[DB_BATCH_PARAMS];
	uint64_t fence = 0;
	uint32_t n = 0, i;
	struct le *le;
	int k, ok = 0, err = 0;

	for (le = &q->le; le && n < stmt->batch_max; le = le->next) {
		struct db_query *p = le->data;

		if (p->stmt == stmt && !p->single && db_may_send(db, p))
			mv[n++] = p;
	}

	if (n < 2)
		return 0;

	/* more parameters than a batch form may have are refused by
	   db_prepare_batch() */
	memset(pv, 0, sizeof(pv));
	for (k = 0; k < stmt->nparams && !err; k++) {
		pv[k] = mbuf_alloc(64 * n);
		if (!pv[k]) {
			err = ENOMEM;
			break;
		}

		err |= mbuf_write_u8(pv[k], '{');
		for (i = 0; i < n && !err; i++) {
			if (i)
				err |= mbuf_write_u8(pv[k], ',');
			err |= array_elem(pv[k], mv[i]->values[k]);
		}
		err |= mbuf_write_u8(pv[k], '}');
		err |= mbuf_write_u8(pv[k], 0);
		vv[k] = (const char *)pv[k]->buf;
	}

	if (!err)
		ok = PQsendQueryPrepared(c->conn, stmt->batch->name,
					 stmt->nparams, vv, NULL, NULL, 0);

	for (k = 0; k < stmt->nparams; k++)
		mem_deref(pv[k]);

	if (err) {
		/* out of memory: they go one by one */
		tlog_warn(NULL, "db: cannot build a batch of %s: %s",
			  stmt->name, strerror(err));
		return 0;
	}

	if (!ok)
		return -1;

	db_note_wait(db, mv[0]);
	for (i = 0; i < n; i++) {
		struct db_query *p = mv[i];

		list_unlink(&p->le);
		list_append(&c->bq, &p->le, p);
		p->conn = c;
		p->inbatch = true;
		p->bidx = i;

		if (!p->h && p->seq > fence)
			fence = p->seq;
	}

	c->busy = true;
	c->bn = n;
	++db->st.batches;
	db->st.batched += n;

	/* nobody waits for some of them: what follows waits for them */
	if (fence) {
		c->fenced = true;
		c->fence_seq = fence;
	}

	return 1;
}


/* take the queries of c's batch out of it, into l (same order) */
void db_batch_take(struct db_conn *c, struct list *l)
{
	struct le *le;

	list_init(l);
	c->bn = 0;

	while ((le = c->bq.head)) {
		struct db_query *q = le->data;

		list_unlink(le);
		list_append(l, le, q);
		q->conn = NULL;
		q->inbatch = false;
	}
}


/* the queries of a failed batch go again, one by one, first in line */
static void batch_requeue(struct db *db, struct list *l)
{
	struct le *le;

	while ((le = list_tail(l))) {
		struct db_query *q = le->data;

		list_unlink(le);
		q->single = true;
		list_prepend(&db->queryl, le, q);
	}
}


/*
 * Split a batch's result into one result per query: the same columns but
 * the first (the query's number, from 1), and the rows that carry its
 * number.  res is PGRES_TUPLES_OK.
 *
 * @return 0, or ENOMEM/EPROTO (then nothing is left in subv)
 */
static int batch_split(PGconn *conn, const PGresult *res, PGresult **subv,
		       uint32_t n)
{
	PGresAttDesc attv[64];
	int nf = PQnfields(res) - 1, ntup = PQntuples(res), r, k;
	uint32_t i;
	int err = 0;

	if (nf < 0 || nf > (int)ARRAY_SIZE(attv))
		return EPROTO;

	for (k = 0; k < nf; k++) {
		attv[k].name      = PQfname(res, k + 1);
		attv[k].tableid   = PQftable(res, k + 1);
		attv[k].columnid  = PQftablecol(res, k + 1);
		attv[k].format    = PQfformat(res, k + 1);
		attv[k].typid     = PQftype(res, k + 1);
		attv[k].typlen    = PQfsize(res, k + 1);
		attv[k].atttypmod = PQfmod(res, k + 1);
	}

	for (i = 0; i < n && !err; i++) {
		subv[i] = PQmakeEmptyPGresult(conn, PGRES_TUPLES_OK);
		if (!subv[i] || !PQsetResultAttrs(subv[i], nf, attv))
			err = ENOMEM;
	}

	for (r = 0; r < ntup && !err; r++) {
		const char *v = PQgetvalue(res, r, 0);
		char *end;
		unsigned long ord;
		PGresult *sub;
		int t;

		ord = strtoul(v, &end, 10);
		if (end == v || *end || ord < 1 || ord > n) {
			tlog_err(NULL, "db: batch row %d names query '%s'"
				 " of %u", r, v, n);
			err = EPROTO;
			break;
		}

		sub = subv[ord - 1];
		t = PQntuples(sub);

		for (k = 0; k < nf && !err; k++) {
			bool null = PQgetisnull(res, r, k + 1);

			if (!PQsetvalue(sub, t, k,
					null ? NULL : PQgetvalue(res, r, k + 1),
					null ? -1 : PQgetlength(res, r, k + 1)))
				err = ENOMEM;
		}
	}

	if (err) {
		for (i = 0; i < n; i++) {
			PQclear(subv[i]);
			subv[i] = NULL;
		}
	}

	return err;
}


/* A batch ended: each query gets its rows, or all go again one by one */
void db_batch_done(struct db_conn *c, PGresult *res, const char *msg)
{
	struct db *db = c->db;
	uint32_t n = c->bn;
	PGresult *subv[DB_BATCH_MAX];
	const char *name = "?";
	struct list l;
	struct le *le;
	int err = EPROTO;

	memset(subv, 0, sizeof(subv));
	db_batch_take(c, &l);

	if (l.head)
		name = ((struct db_query *)l.head->data)->stmt->name;

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		err = batch_split(c->conn, res, subv, n);

	if (err) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		tlog_warn(NULL, "db: a batch of %u %s failed: %s [%s]: they"
			  " go one by one", n, name,
			  err == EPROTO ? msg : strerror(err),
			  state ? state : "-");
		batch_requeue(db, &l);
		return;
	}

	/* a handler may queue (and send on c), detach a query of l, or
	   free the db */
	while ((le = l.head)) {
		struct db_query *q = le->data;
		uint64_t lat = db_now_us() - q->t_start;

		if (db_released(db)) {
			db_query_drop(q);
			continue;
		}

		++db->st.queries;
		db->st.lat_us_sum += lat;
		if (lat > db->st.lat_us_max)
			db->st.lat_us_max = lat;

		db_query_finish(q, 0, subv[q->bidx]);
	}

	for (n = 0; n < DB_BATCH_MAX; n++)
		PQclear(subv[n]);
}
