/*
 * vdeperf: a tiny libvdeplug traffic generator / counter for benchmarking
 * vde_switch implementations.
 *
 *   vdeperf sink   VNL [-t MAXSEC] [-i IDLE_MS] [-e EXPECTED] [-R READYFILE] [-1]
 *   vdeperf source VNL -n FRAMES -s SIZE [-t MAXSEC] [-b BATCH]
 *   vdeperf hold   VNL [-t SEC]
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
		"       vdeperf hold VNL [-t SEC]\n");
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
	usage();
	return 2;
}
