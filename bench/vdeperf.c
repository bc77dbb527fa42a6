/*
 * vdeperf: a tiny libvdeplug traffic generator / counter for benchmarking
 * vde_switch implementations.
 *
 *   vdeperf sink   VNL [-t MAXSEC] [-i IDLE_MS] [-e EXPECTED] [-R READYFILE] [-1]
 *   vdeperf source VNL -n FRAMES -s SIZE [-t MAXSEC] [-b BATCH]
 *   vdeperf hold   VNL [-t SEC]
 *   vdeperf pong   VNL [-t MAXSEC] [-R READYFILE]
 *   vdeperf ping   VNL -n COUNT -s SIZE [-W TIMEOUT_MS] [-w WARMUP] [-t MAXSEC]
 *
 * sink:   opens VNL, announces SINK_MAC with one broadcast frame (so the
 *         switch learns where it lives), creates READYFILE (if given), then
 *         counts the data frames it receives (src SRC_MAC, dst SINK_MAC,
 *         ethertype 0x88b5, magic "VPRF"). It stops at the first end marker,
 *         after EXPECTED data frames, after IDLE_MS without any frame once
 *         traffic has started, or after MAXSEC in total, whichever comes
 *         first. It reports the frames and bytes received and the time
 *         between the first and the last data frame received.
 *         Frames are read with recvmmsg() on vde_datafd() (up to 64 per
 *         call) so that the sink is cheap; -1 reads with vde_recv(), one
 *         frame per call, as most libvdeplug clients do.
 * source: opens VNL and sends FRAMES data frames of SIZE bytes (Ethernet
 *         header included, no FCS) to SINK_MAC from SRC_MAC, as fast as it
 *         can with vde_send() (blocking: the switch flow-controls it), then
 *         a few end markers. -b BATCH > 1 uses sendmmsg() on vde_datafd()
 *         instead. A send that blocks for more than 2 s aborts the run.
 * hold:   opens VNL and stays connected (draining anything received) for
 *         SEC seconds or until the switch closes the connection.
 *
 * pong:   opens VNL, announces PONG_MAC with one broadcast frame, creates
 *         READYFILE (if given), then sends every data frame addressed to
 *         PONG_MAC back with the source and destination MACs swapped (same
 *         length, same payload). It stops at the first end marker or after
 *         MAXSEC.
 * ping:   opens VNL, announces PING_MAC with one broadcast frame, then sends
 *         one data frame of SIZE bytes at a time to PONG_MAC and waits up to
 *         TIMEOUT_MS for its echo (matched by sequence number; late echoes
 *         of earlier frames are counted and ignored). WARMUP round trips
 *         (default 10; the first one may take up to 5 s in all, while the
 *         cable comes up) are not counted. Then COUNT round trips are
 *         measured; it reports how many were answered, how many were lost
 *         (no echo within TIMEOUT_MS) and the round-trip time p50, p90, p99,
 *         mean, min and max in microseconds, then sends end markers.
 *
 * Output is one line of key=value pairs on stdout. Exit status 0 on success.
 * Every loop is bounded by a wall-clock limit, so a run always terminates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <libvdeplug.h>

#define ETHERTYPE_PERF 0x88b5
#define MAGIC "VPRF"
#define T_DATA 0
#define T_END 1
#define T_ANNOUNCE 2
#define HDR 14
#define PAYLOAD_MIN 16 /* magic(4) type(4) seq(8) */
#define MAXFRAME 1514
#define RBATCH 64

static const unsigned char SINK_MAC[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x02};
static const unsigned char SRC_MAC[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x01};
static const unsigned char PING_MAC[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x03};
static const unsigned char PONG_MAC[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x04};
static const unsigned char BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
	fprintf(stderr, "vdeperf: %s: %s\n", msg, strerror(errno));
	exit(2);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vdeperf sink VNL [-t MAXSEC] [-i IDLE_MS] [-e EXPECTED] [-R READYFILE] [-1]\n"
		"       vdeperf source VNL -n FRAMES -s SIZE [-t MAXSEC] [-b BATCH]\n"
		"       vdeperf hold VNL [-t SEC]\n"
		"       vdeperf pong VNL [-t MAXSEC] [-R READYFILE]\n"
		"       vdeperf ping VNL -n COUNT -s SIZE [-W TIMEOUT_MS] [-w WARMUP] [-t MAXSEC]\n");
	exit(2);
}

static void build(unsigned char *f, size_t size, const unsigned char *dst,
		  const unsigned char *src, uint32_t type, uint64_t seq)
{
	memset(f, 0, size);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETHERTYPE_PERF >> 8;
	f[13] = ETHERTYPE_PERF & 0xff;
	memcpy(f + HDR, MAGIC, 4);
	memcpy(f + HDR + 4, &type, 4);
	memcpy(f + HDR + 8, &seq, 8);
}

static VDECONN *open_vnl(char *vnl, char *descr)
{
	VDECONN *c = vde_open(vnl, descr, NULL);
	if (c == NULL)
		die("vde_open");
	return c;
}

/* ---------------------------------------------------------------- sink */

struct sink_state {
	uint64_t frames, bytes, other, ooo, first_ns, last_ns, next_seq;
	int end;
};

/* Returns 1 once an end marker has been seen. */
static int account(struct sink_state *s, const unsigned char *f, ssize_t len, uint64_t t)
{
	uint32_t type;
	uint64_t seq;
	if (len < HDR + PAYLOAD_MIN || memcmp(f + 6, SRC_MAC, 6) != 0 ||
	    f[12] != (ETHERTYPE_PERF >> 8) || f[13] != (ETHERTYPE_PERF & 0xff) ||
	    memcmp(f + HDR, MAGIC, 4) != 0) {
		s->other++;
		return 0;
	}
	memcpy(&type, f + HDR + 4, 4);
	memcpy(&seq, f + HDR + 8, 8);
	if (type == T_END) {
		s->end = 1;
		return 1;
	}
	if (type != T_DATA) {
		s->other++;
		return 0;
	}
	if (s->frames == 0)
		s->first_ns = t;
	s->last_ns = t;
	s->frames++;
	s->bytes += (uint64_t)len;
	if (seq < s->next_seq)
		s->ooo++; /* duplicate or reordered */
	else
		s->next_seq = seq + 1;
	return 0;
}

static int do_sink(char *vnl, int argc, char **argv)
{
	double maxsec = 30;
	long idle_ms = 500;
	uint64_t expected = 0;
	const char *ready = NULL;
	int single = 0, opt;
	while ((opt = getopt(argc, argv, "t:i:e:R:1")) != -1) {
		switch (opt) {
		case 't': maxsec = atof(optarg); break;
		case 'i': idle_ms = atol(optarg); break;
		case 'e': expected = strtoull(optarg, NULL, 10); break;
		case 'R': ready = optarg; break;
		case '1': single = 1; break;
		default: usage();
		}
	}
	VDECONN *c = open_vnl(vnl, "vdeperf sink");
	int fd = vde_datafd(c);
	unsigned char ann[64];
	build(ann, sizeof ann, BCAST, SINK_MAC, T_ANNOUNCE, 0);
	if (vde_send(c, ann, sizeof ann, 0) < 0)
		die("vde_send (announce)");
	if (ready) {
		int rf = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (rf < 0)
			die("creating the ready file");
		close(rf);
	}

	static unsigned char bufs[RBATCH][MAXFRAME + 64];
	struct mmsghdr msgs[RBATCH];
	struct iovec iov[RBATCH];
	for (int i = 0; i < RBATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof bufs[i];
		memset(&msgs[i], 0, sizeof msgs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	struct sink_state s = {0};
	uint64_t start = now_ns(), deadline = start + (uint64_t)(maxsec * 1e9);
	const char *why = "timeout";
	for (;;) {
		uint64_t t = now_ns();
		if (t >= deadline)
			break;
		if (s.frames > 0 && t - s.last_ns >= (uint64_t)idle_ms * 1000000ull) {
			why = "idle";
			break;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, 50);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (r == 0)
			continue;
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) {
			why = "hangup";
			break;
		}
		/* Drain what is there without blocking, bounded per wakeup. */
		int done = 0;
		for (int round = 0; round < 256 && !done; round++) {
			int n;
			if (single) {
				/* One vde_recv per poll wakeup: the plugin may ignore
				 * MSG_DONTWAIT, so never call it without a poll first. */
				if (round > 0)
					break;
				ssize_t len = vde_recv(c, bufs[0], sizeof bufs[0], MSG_DONTWAIT);
				if (len < 0) {
					if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
						break;
					die("vde_recv");
				}
				msgs[0].msg_len = (unsigned)len;
				n = 1;
			} else {
				n = recvmmsg(fd, msgs, RBATCH, MSG_DONTWAIT, NULL);
				if (n < 0) {
					if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
						break;
					die("recvmmsg");
				}
			}
			uint64_t tn = now_ns();
			for (int i = 0; i < n; i++) {
				if (account(&s, bufs[i], msgs[i].msg_len, tn)) {
					why = "end";
					done = 1;
					break;
				}
				if (expected && s.frames >= expected) {
					why = "expected";
					done = 1;
					break;
				}
			}
			if (n < (single ? 1 : RBATCH))
				break;
		}
		if (done)
			break;
	}
	uint64_t el = s.frames > 1 ? s.last_ns - s.first_ns : 0;
	printf("sink frames=%llu bytes=%llu elapsed_ns=%llu fps=%.0f end=%d stop=%s ooo=%llu other=%llu\n",
	       (unsigned long long)s.frames, (unsigned long long)s.bytes,
	       (unsigned long long)el, el ? (double)(s.frames - 1) * 1e9 / (double)el : 0.0,
	       s.end, why, (unsigned long long)s.ooo, (unsigned long long)s.other);
	fflush(stdout);
	vde_close(c);
	return 0;
}

/* -------------------------------------------------------------- source */

static int do_source(char *vnl, int argc, char **argv)
{
	uint64_t n = 0;
	long size = 0;
	double maxsec = 60;
	int batch = 1, opt;
	while ((opt = getopt(argc, argv, "n:s:t:b:")) != -1) {
		switch (opt) {
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 's': size = atol(optarg); break;
		case 't': maxsec = atof(optarg); break;
		case 'b': batch = atoi(optarg); break;
		default: usage();
		}
	}
	if (size < HDR + PAYLOAD_MIN || size > MAXFRAME || batch < 1 || batch > RBATCH)
		usage();
	VDECONN *c = open_vnl(vnl, "vdeperf source");
	int fd = vde_datafd(c);
	/* A send blocked for 2 s means the switch has stalled: give up. */
	struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
		die("setsockopt SO_SNDTIMEO");

	static unsigned char frames[RBATCH][MAXFRAME];
	struct mmsghdr msgs[RBATCH];
	struct iovec iov[RBATCH];
	for (int i = 0; i < RBATCH; i++) {
		build(frames[i], (size_t)size, SINK_MAC, SRC_MAC, T_DATA, 0);
		iov[i].iov_base = frames[i];
		iov[i].iov_len = (size_t)size;
		memset(&msgs[i], 0, sizeof msgs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	uint64_t sent = 0, errors = 0;
	const char *why = "done";
	uint64_t start = now_ns(), deadline = start + (uint64_t)(maxsec * 1e9);
	while (sent < n) {
		if ((sent & 1023) == 0 && now_ns() >= deadline) {
			why = "timeout";
			break;
		}
		if (batch == 1) {
			memcpy(frames[0] + HDR + 8, &sent, 8);
			if (vde_send(c, frames[0], (size_t)size, 0) < 0) {
				if (errno == EINTR)
					continue;
				errors++;
				why = errno == EAGAIN ? "stalled" : "error";
				fprintf(stderr, "vdeperf source: vde_send: %s\n", strerror(errno));
				break;
			}
			sent++;
		} else {
			int k = (int)((n - sent) < (uint64_t)batch ? (n - sent) : (uint64_t)batch);
			for (int i = 0; i < k; i++) {
				uint64_t seq = sent + (uint64_t)i;
				memcpy(frames[i] + HDR + 8, &seq, 8);
			}
			int m = sendmmsg(fd, msgs, (unsigned)k, 0);
			if (m < 0) {
				if (errno == EINTR)
					continue;
				errors++;
				why = errno == EAGAIN ? "stalled" : "error";
				fprintf(stderr, "vdeperf source: sendmmsg: %s\n", strerror(errno));
				break;
			}
			sent += (uint64_t)m;
		}
	}
	uint64_t el = now_ns() - start;
	/* End markers: several, spaced out, in case the sink's queue is full. */
	unsigned char end[64];
	build(end, sizeof end, SINK_MAC, SRC_MAC, T_END, sent);
	for (int i = 0; i < 10; i++) {
		usleep(20000);
		if (vde_send(c, end, sizeof end, MSG_DONTWAIT) < 0 && errno != EAGAIN)
			break;
	}
	printf("source sent=%llu elapsed_ns=%llu fps=%.0f errors=%llu stop=%s\n",
	       (unsigned long long)sent, (unsigned long long)el,
	       el ? (double)sent * 1e9 / (double)el : 0.0, (unsigned long long)errors, why);
	fflush(stdout);
	vde_close(c);
	return sent == n ? 0 : 1;
}

/* ---------------------------------------------------------------- hold */

static int do_hold(char *vnl, int argc, char **argv)
{
	double sec = 5;
	int opt;
	while ((opt = getopt(argc, argv, "t:")) != -1) {
		switch (opt) {
		case 't': sec = atof(optarg); break;
		default: usage();
		}
	}
	VDECONN *c = open_vnl(vnl, "vdeperf hold");
	struct pollfd p[2] = {{.fd = vde_datafd(c), .events = POLLIN},
			      {.fd = vde_ctlfd(c), .events = POLLIN}};
	uint64_t deadline = now_ns() + (uint64_t)(sec * 1e9);
	unsigned char buf[MAXFRAME + 64];
	while (now_ns() < deadline) {
		int r = poll(p, 2, 100);
		if (r < 0 && errno != EINTR)
			die("poll");
		if (r <= 0)
			continue;
		if (p[0].revents & POLLIN)
			(void)vde_recv(c, buf, sizeof buf, MSG_DONTWAIT);
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
			break; /* the switch closed the connection */
	}
	printf("hold ok\n");
	vde_close(c);
	return 0;
}

/* ---------------------------------------------------------------- pong */

static int is_perf(const unsigned char *f, ssize_t len)
{
	return len >= HDR + PAYLOAD_MIN && f[12] == (ETHERTYPE_PERF >> 8) &&
	       f[13] == (ETHERTYPE_PERF & 0xff) && memcmp(f + HDR, MAGIC, 4) == 0;
}

static uint32_t perf_type(const unsigned char *f)
{
	uint32_t type;
	memcpy(&type, f + HDR + 4, 4);
	return type;
}

static void set_sndtimeo(VDECONN *c, int sec)
{
	struct timeval tv = {.tv_sec = sec, .tv_usec = 0};
	if (setsockopt(vde_datafd(c), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
		die("setsockopt SO_SNDTIMEO");
}

static void touch(const char *path)
{
	int rf = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (rf < 0)
		die("creating the ready file");
	close(rf);
}

static int do_pong(char *vnl, int argc, char **argv)
{
	double maxsec = 30;
	const char *ready = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "t:R:")) != -1) {
		switch (opt) {
		case 't': maxsec = atof(optarg); break;
		case 'R': ready = optarg; break;
		default: usage();
		}
	}
	VDECONN *c = open_vnl(vnl, "vdeperf pong");
	set_sndtimeo(c, 2);
	int fd = vde_datafd(c);
	unsigned char ann[64];
	build(ann, sizeof ann, BCAST, PONG_MAC, T_ANNOUNCE, 0);
	if (vde_send(c, ann, sizeof ann, 0) < 0)
		die("vde_send (announce)");
	if (ready)
		touch(ready);

	static unsigned char buf[MAXFRAME + 64];
	uint64_t echoed = 0, other = 0, errors = 0;
	uint64_t deadline = now_ns() + (uint64_t)(maxsec * 1e9);
	const char *why = "timeout";
	while (now_ns() < deadline) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, 50);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (r == 0)
			continue;
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) {
			why = "hangup";
			break;
		}
		ssize_t len = vde_recv(c, buf, sizeof buf, MSG_DONTWAIT);
		if (len < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			die("vde_recv");
		}
		if (!is_perf(buf, len) || memcmp(buf, PONG_MAC, 6) != 0) {
			other++;
			continue;
		}
		uint32_t type = perf_type(buf);
		if (type == T_END) {
			why = "end";
			break;
		}
		if (type != T_DATA) {
			other++;
			continue;
		}
		unsigned char tmp[6];
		memcpy(tmp, buf, 6);
		memcpy(buf, buf + 6, 6);
		memcpy(buf + 6, tmp, 6);
		if (vde_send(c, buf, (size_t)len, 0) < 0) {
			if (errno == EINTR)
				continue;
			errors++;
			fprintf(stderr, "vdeperf pong: vde_send: %s\n", strerror(errno));
			if (errors > 100) {
				why = "error";
				break;
			}
			continue;
		}
		echoed++;
	}
	printf("pong echoed=%llu other=%llu errors=%llu stop=%s\n", (unsigned long long)echoed,
	       (unsigned long long)other, (unsigned long long)errors, why);
	fflush(stdout);
	vde_close(c);
	return 0;
}

/* ---------------------------------------------------------------- ping */

struct ping_conn {
	VDECONN *c;
	int fd;
	unsigned char *tx;
	size_t size;
	uint64_t late, other;
};

/* Sends frame `seq` and waits until its echo arrives or `timeout_ns` have
 * passed. Returns the round-trip time in ns, or 0 if no echo came back. */
static uint64_t ping_once(struct ping_conn *p, uint64_t seq, uint64_t timeout_ns)
{
	static unsigned char rx[MAXFRAME + 64];
	memcpy(p->tx + HDR + 8, &seq, 8);
	uint64_t t0 = now_ns();
	if (vde_send(p->c, p->tx, p->size, 0) < 0) {
		if (errno != EINTR && errno != EAGAIN && errno != ENOBUFS)
			die("vde_send");
		return 0;
	}
	uint64_t end = t0 + timeout_ns;
	for (;;) {
		uint64_t t = now_ns();
		if (t >= end)
			return 0;
		uint64_t left_ms = (end - t + 999999) / 1000000;
		struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)left_ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (r == 0)
			continue; /* re-checks the deadline */
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) {
			fprintf(stderr, "vdeperf ping: connection closed\n");
			return 0;
		}
		ssize_t len = vde_recv(p->c, rx, sizeof rx, MSG_DONTWAIT);
		uint64_t t1 = now_ns();
		if (len < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			die("vde_recv");
		}
		if (!is_perf(rx, len) || memcmp(rx, PING_MAC, 6) != 0 ||
		    memcmp(rx + 6, PONG_MAC, 6) != 0 || perf_type(rx) != T_DATA) {
			p->other++;
			continue;
		}
		uint64_t rseq;
		memcpy(&rseq, rx + HDR + 8, 8);
		if (rseq != seq) {
			p->late++;
			continue;
		}
		return t1 > t0 ? t1 - t0 : 1;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double pct_us(const uint64_t *v, uint64_t n, double p)
{
	if (n == 0)
		return 0.0;
	uint64_t k = (uint64_t)(p * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

static int do_ping(char *vnl, int argc, char **argv)
{
	uint64_t n = 0;
	long size = 0, timeout_ms = 200, warmup = 10;
	double maxsec = 30;
	int opt;
	while ((opt = getopt(argc, argv, "n:s:W:w:t:")) != -1) {
		switch (opt) {
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 's': size = atol(optarg); break;
		case 'W': timeout_ms = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
		case 't': maxsec = atof(optarg); break;
		default: usage();
		}
	}
	if (n < 1 || n > 10000000 || size < HDR + PAYLOAD_MIN || size > MAXFRAME ||
	    timeout_ms < 1 || warmup < 0)
		usage();
	VDECONN *c = open_vnl(vnl, "vdeperf ping");
	set_sndtimeo(c, 2);
	static unsigned char tx[MAXFRAME];
	struct ping_conn p = {.c = c, .fd = vde_datafd(c), .tx = tx, .size = (size_t)size};
	unsigned char ann[64];
	build(ann, sizeof ann, BCAST, PING_MAC, T_ANNOUNCE, 0);
	if (vde_send(c, ann, sizeof ann, 0) < 0)
		die("vde_send (announce)");
	build(tx, (size_t)size, PONG_MAC, PING_MAC, T_DATA, 0);

	uint64_t start = now_ns(), deadline = start + (uint64_t)(maxsec * 1e9);
	uint64_t tmo = (uint64_t)timeout_ms * 1000000ull;
	uint64_t seq = 1ull << 62; /* warm-up sequence numbers */
	/* Warm-up: the first echo may take a while (cable still connecting,
	 * addresses not learnt yet): retry for up to 5 s. */
	long warm_ok = 0, warm_tries = 0;
	uint64_t warm_end = start + 5000000000ull;
	while (warm_ok == 0 && now_ns() < warm_end && now_ns() < deadline) {
		warm_tries++;
		if (ping_once(&p, seq++, tmo < 100000000ull ? tmo : 100000000ull))
			warm_ok++;
	}
	if (warm_ok == 0) {
		printf("ping sent=0 received=0 lost=0 late=%llu other=%llu stop=nopath warmup_tries=%ld\n",
		       (unsigned long long)p.late, (unsigned long long)p.other, warm_tries);
		fflush(stdout);
		vde_close(c);
		return 1;
	}
	for (long i = 1; i < warmup && now_ns() < deadline; i++) {
		warm_tries++;
		if (ping_once(&p, seq++, tmo))
			warm_ok++;
	}
	uint64_t warm_late = p.late;

	uint64_t *rtt = malloc(n * sizeof *rtt);
	if (rtt == NULL)
		die("malloc");
	uint64_t sent = 0, got = 0, lost = 0;
	const char *why = "done";
	uint64_t t_meas = now_ns();
	for (seq = 0; seq < n; seq++) {
		if (now_ns() >= deadline) {
			why = "timeout";
			break;
		}
		uint64_t r = ping_once(&p, seq, tmo);
		sent++;
		if (r)
			rtt[got++] = r;
		else
			lost++;
	}
	uint64_t el = now_ns() - t_meas;
	/* End markers for the pong. */
	unsigned char end[64];
	build(end, sizeof end, PONG_MAC, PING_MAC, T_END, sent);
	for (int i = 0; i < 3; i++) {
		if (vde_send(c, end, sizeof end, MSG_DONTWAIT) < 0 && errno != EAGAIN)
			break;
		usleep(10000);
	}
	qsort(rtt, got, sizeof *rtt, cmp_u64);
	double sum = 0;
	for (uint64_t i = 0; i < got; i++)
		sum += (double)rtt[i];
	printf("ping sent=%llu received=%llu lost=%llu late=%llu other=%llu "
	       "p50_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f min_us=%.1f max_us=%.1f "
	       "elapsed_ns=%llu stop=%s warmup=%ld/%ld\n",
	       (unsigned long long)sent, (unsigned long long)got, (unsigned long long)lost,
	       (unsigned long long)(p.late - warm_late), (unsigned long long)p.other,
	       pct_us(rtt, got, 0.50), pct_us(rtt, got, 0.90), pct_us(rtt, got, 0.99),
	       got ? sum / (double)got / 1000.0 : 0.0, got ? (double)rtt[0] / 1000.0 : 0.0,
	       got ? (double)rtt[got - 1] / 1000.0 : 0.0, (unsigned long long)el, why,
	       warm_ok, warm_tries);
	fflush(stdout);
	free(rtt);
	vde_close(c);
	return sent == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	char *mode = argv[1], *vnl = argv[2];
	/* getopt starts after "MODE VNL" */
	argc -= 2;
	argv += 2;
	if (strcmp(mode, "sink") == 0)
		return do_sink(vnl, argc, argv);
	if (strcmp(mode, "source") == 0)
		return do_source(vnl, argc, argv);
	if (strcmp(mode, "hold") == 0)
		return do_hold(vnl, argc, argv);
	if (strcmp(mode, "pong") == 0)
		return do_pong(vnl, argc, argv);
	if (strcmp(mode, "ping") == 0)
		return do_ping(vnl, argc, argv);
	usage();
	return 2;
}
