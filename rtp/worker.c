/**
 * @file worker.c  The relay's packet path: one thread per worker
 *
 * A worker owns the sockets of the sessions it was given.  For each
 * packet it checks its source (src_accept(): only the sources a side may
 * send from, the first one latched), accounts it (RFC 3550 statistics,
 * RTCP reports), mixes the warning tone when one is playing, and sends it
 * on from the other side's socket.  Nothing is allocated or logged per packet.
 *
 * Two ways to wait for packets, chosen per worker at start (rtp_io),
 * each in a file of its own (worker_uring.c, worker_epoll.c):
 *
 * - io_uring (where the kernel and the build have it): a multishot
 *   receive per socket fills buffers of a ring the kernel picks from, and
 *   the kernel's receive work is deferred until the worker asks for it
 *   (IORING_SETUP_DEFER_TASKRUN).  The worker waits until the packets
 *   its recent rate brings in about 3/4 of WAIT_US have arrived, for at
 *   most WAIT_US, then reads all of them, queues their sends and hands
 *   the sends over with the next wait: one system call for a whole
 *   batch, across sockets.
 *
 * - epoll: read a batch with recvmmsg() and send it on with sendmmsg().
 *   Waking up costs more than relaying a packet, so a poll that found
 *   little work is followed by a short pause (POLL_GAP_US): the next poll
 *   then finds the packets of many streams at once.
 *
 * Arrival times for the jitter estimate come from the kernel
 * (SO_TIMESTAMPNS), so waiting does not show in the statistics.
 *
 * The main thread talks to a worker only through its command list (mutex
 * + eventfd); commands are applied between two batches, after the sends
 * of the batch have been handed to the kernel, so a socket is never
 * closed while the worker still refers to it.  Counters the main thread
 * reads are published with relaxed atomic stores.  A worker tells the
 * main thread that a session's sockets are closed through libre's mqueue.
 */

#define _GNU_SOURCE 1
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <time.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include "worker_int.h"
#include <rem.h>


/** Monotonic clock in microseconds */
uint64_t media_mono_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}


uint64_t media_mono_ms(void)
{
	return media_mono_us() / 1000;
}


/** Kernel arrival times on a socket, for the jitter estimate */
void media_sock_stamp(int fd)
{
	int one = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
}


/** Close a session's sockets; no pending read may refer to them */
void media_sess_close(struct media_worker *w, struct media_sess *s)
{
	unsigned i, k;

	/* no pending read may outlive the session */
	for (i = 0, k = 0; i < w->npend; i++) {
		if (w->pend[i]->s != s)
			w->pend[k++] = w->pend[i];
	}
	w->npend = k;

	for (i = 0; i < 2; i++) {
		for (k = 0; k < 2; k++) {
			int fd = s->side[i].fd[k];

			if (fd < 0)
				continue;

			if (s->registered)
				(void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd,
						NULL);
			(void)close(fd);
			s->side[i].fd[k] = -1;
		}
	}

	s->registered = false;
}


static void cmd_apply(struct media_worker *w, struct media_cmd *cmd)
{
	struct media_sess *s = cmd->s;
	struct media_side *sd;

	switch (cmd->type) {

	case MEDIA_CMD_ADD:
#ifdef HAVE_LIBURING
		if (w->uring) {
			media_uring_add(w, s);
			break;
		}
#endif
		media_epoll_add(w, s);
		break;

	case MEDIA_CMD_DEST:
		sd = &s->side[cmd->side];
		/* a new address from that side: learn it again */
		if (!sa_cmp(&sd->sdp[0], &cmd->rtp, SA_ALL))
			sd->latched[0] = false;
		if (!sa_cmp(&sd->sdp[1], &cmd->rtcp, SA_ALL))
			sd->latched[1] = false;
		sd->sdp[0] = cmd->rtp;
		sd->sdp[1] = cmd->rtcp;
		/* c=0.0.0.0: it may still send from where it did */
		if (sa_isset(&cmd->rtp, SA_ADDR)) {
			sd->from[0] = cmd->rtp;
			sd->from[1] = cmd->rtcp;
		}
		sd->sip = cmd->sip;
		sd->src = cmd->src;
		sd->relearn_ms = cmd->relearn_ms;
		sd->srate = cmd->srate;
		publish_dst(sd);
		break;

	case MEDIA_CMD_TONE:
		s->tone = cmd->tone;
		s->tone_n = cmd->tone_n;
		s->tone_pos = 0;
		s->tone_pcmu = cmd->pcmu;
		s->tone_pcma = cmd->pcma;
		break;

	case MEDIA_CMD_DEL:
#ifdef HAVE_LIBURING
		if (w->uring) {
			media_uring_del(w, s);
			break;
		}
#endif
		media_sess_close(w, s);
		(void)mqueue_push(w->mq, MEDIA_MQ_FREED, s);
		break;
	}
}


/** Apply the main thread's commands, between two batches */
void media_cmds_run(struct media_worker *w)
{
	uint64_t v;

	if (read(w->evfd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled, look anyway */
	}

	for (;;) {
		struct media_cmd *cmd;
		struct le *le;

		pthread_mutex_lock(&w->mtx);
		le = list_head(&w->cmdl);
		if (le)
			list_unlink(le);
		pthread_mutex_unlock(&w->mtx);

		if (!le)
			break;

		cmd = le->data;
		cmd_apply(w, cmd);
		mem_deref(cmd);
	}
}


/** Mix the warning tone into a G.711 payload, in place */
void media_tone_mix(struct media_sess *s, uint8_t *pkt, size_t len)
{
	size_t off, plen, i;
	int pt = pkt[1] & 0x7f;
	bool ulaw;

	if (pt == s->tone_pcmu)
		ulaw = true;
	else if (pt == s->tone_pcma)
		ulaw = false;
	else
		return;

	if (media_rtp_payload(pkt, len, &off, &plen))
		return;

	for (i = 0; i < plen && s->tone_pos < s->tone_n; i++) {
		int32_t v;

		v = ulaw ? g711_ulaw2pcm(pkt[off + i])
			: g711_alaw2pcm(pkt[off + i]);
		v += s->tone[s->tone_pos++];
		if (v > 32767)
			v = 32767;
		else if (v < -32768)
			v = -32768;

		pkt[off + i] = ulaw ? g711_pcm2ulaw((int16_t)v)
			: g711_pcm2alaw((int16_t)v);
	}

	if (s->tone_pos >= s->tone_n)
		s->tone = NULL;
}


/** Tell media_worker_alloc() how the start went (0 or an errno) */
static void init_done(struct media_worker *w, int err)
{
	pthread_mutex_lock(&w->mtx);
	w->init = err ? -err : 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mtx);
}


static void *worker_main(void *arg)
{
	struct media_worker *w = arg;
	int err = 0;

#ifdef HAVE_LIBURING
	if (w->io != MEDIA_IO_EPOLL) {
		err = media_uring_init(w);
		w->uring = !err;
		w->uring_err = err;
		if (err && w->io == MEDIA_IO_AUTO)
			err = 0;
	}
#else
	if (w->io == MEDIA_IO_URING)
		err = ENOSYS;
#endif

	init_done(w, err);
	if (err)
		return NULL;

#ifdef HAVE_LIBURING
	if (w->uring) {
		media_uring_loop(w);
		media_uring_fini(w);
		return NULL;
	}
#endif

	media_epoll_loop(w);

	return NULL;
}


static void worker_destructor(void *arg)
{
	struct media_worker *w = arg;
	uint64_t one = 1;

	if (w->started) {
		__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
		if (write(w->evfd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is non-zero, it wakes up */
		}
		(void)pthread_join(w->tid, NULL);
	}

	list_flush(&w->cmdl);
	if (w->epfd >= 0)
		(void)close(w->epfd);
	if (w->evfd >= 0)
		(void)close(w->evfd);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mtx);
}


/**
 * Start a worker thread
 *
 * @param wp     The new worker
 * @param mq     Where it reports closed sessions (main thread's mqueue)
 * @param index  Its number, for the thread name
 * @param io     How it waits for packets; MEDIA_IO_URING fails where
 *               io_uring is missing, MEDIA_IO_AUTO falls back to epoll
 */
int media_worker_alloc(struct media_worker **wp, struct mqueue *mq,
		       unsigned index, enum media_io io)
{
	struct media_worker *w;
	struct epoll_event ev;
	char name[16];
	int i, err;

	if (!wp || !mq)
		return EINVAL;

	w = mem_zalloc(sizeof(*w), worker_destructor);
	if (!w)
		return ENOMEM;

	w->epfd = -1;
	w->evfd = -1;
	w->mq = mq;
	w->index = index;
	w->io = io;
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cond, NULL);
	list_init(&w->cmdl);

	for (i = 0; i < BATCH; i++) {
		w->riov[i].iov_base = w->buf[i];
		w->riov[i].iov_len = PKT_MAX;
		w->rmsg[i].msg_hdr.msg_iov = &w->riov[i];
		w->rmsg[i].msg_hdr.msg_iovlen = 1;
		w->rmsg[i].msg_hdr.msg_name = &w->src[i];
		w->rmsg[i].msg_hdr.msg_namelen = sizeof(w->src[i]);
		w->rmsg[i].msg_hdr.msg_control = w->ctl[i];
		w->rmsg[i].msg_hdr.msg_controllen = sizeof(w->ctl[i]);
		w->siov[i].iov_base = w->buf[i];
		w->smsg[i].msg_hdr.msg_iov = &w->siov[i];
		w->smsg[i].msg_hdr.msg_iovlen = 1;
	}

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->epfd < 0 || w->evfd < 0) {
		err = errno;
		goto out;
	}

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev)) {
		err = errno;
		goto out;
	}

	err = pthread_create(&w->tid, NULL, worker_main, w);
	if (err)
		goto out;

	w->started = true;
	(void)re_snprintf(name, sizeof(name), "tg-rtp%u", index);
	(void)pthread_setname_np(w->tid, name);

	/* the thread sets up its own ring: wait for the outcome */
	pthread_mutex_lock(&w->mtx);
	while (!w->init)
		pthread_cond_wait(&w->cond, &w->mtx);
	if (w->init < 0)
		err = -w->init;
	pthread_mutex_unlock(&w->mtx);

 out:
	if (err)
		mem_deref(w);
	else
		*wp = w;

	return err;
}


/**
 * Whether a worker waits for packets with io_uring
 *
 * @param w     The worker
 * @param errp  Set to why not when it tried and failed, else 0 (optional)
 */
bool media_worker_uring(const struct media_worker *w, int *errp)
{
	if (errp)
		*errp = w ? w->uring_err : 0;

	return w ? w->uring : false;
}


/** Hand a command to the worker (it owns cmd from now on) */
int media_worker_send(struct media_worker *w, struct media_cmd *cmd)
{
	uint64_t one = 1;

	if (!w || !cmd)
		return EINVAL;

	pthread_mutex_lock(&w->mtx);
	list_append(&w->cmdl, &cmd->le, cmd);
	pthread_mutex_unlock(&w->mtx);

	if (write(w->evfd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero */
	}

	return 0;
}
