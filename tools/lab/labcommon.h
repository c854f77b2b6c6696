/*
 * What the lab's two programs have in common: tools/lab/labload.c (the load
 * generator) and tools/lab/labsrv.c (the HTTP backend) read the clock, draw
 * random numbers, take "ADDR:PORT" addresses and flags, catch signals and
 * start threads the same way, and answer a bad command line with the same
 * messages. Header only, so that each program still builds from its one .c
 * file: the "Build:" line at the top of each is the whole build.
 *
 * Define LAB_PROG, the program's name that starts its messages, before
 * including this. What differs between the two (which numbers a flag takes,
 * which port an address may have, what a signal handler sets) stays in the
 * programs.
 */
#ifndef CANARY_TOOLS_LAB_LABCOMMON_H
#define CANARY_TOOLS_LAB_LABCOMMON_H

#ifndef LAB_PROG
#error "define LAB_PROG, the name that starts the program's messages, before labcommon.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* A bad command line, told apart from a run that failed (exit 1), as usual for usage errors. */
#define LAB_EXIT_USAGE 2

/*
 * The default 8 MiB a thread adds up over 1024 workers or 512 connections;
 * the deepest stack, labsrv's 8 KiB copy of a request head, fits with room.
 */
#define LAB_THREAD_STACK (256 * 1024)

/* CLOCK_MONOTONIC in nanoseconds: deadlines and latencies must not jump with the wall clock. */
static inline int64_t lab_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* splitmix64: tiny, seedable, good enough to pick a fraction of requests. */
static inline uint64_t lab_rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * The host of "A.B.C.D:PORT" or "[IPv6]:PORT", the text from s up to colon
 * (its last ':'), with port into *ss; numeric addresses only. The caller
 * checks the port, because the programs take different ones: labsrv may
 * listen on port 0 to get a free one, labload cannot connect there.
 */
static inline bool lab_addr_fill(const char *s, const char *colon, uint16_t port,
				 struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	size_t hlen = (size_t)(colon - s);
	char host[INET6_ADDRSTRLEN];

	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return false;
	memcpy(host, s, hlen);
	host[hlen] = '\0';

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return true;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return true;
	}
	return false;
}

/*
 * A decimal in [min, max]. strtoull() would take "-1" as a huge number, so a
 * leading '-' is refused outright.
 */
static inline bool lab_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Exits at once: flags are checked before anything starts, so nothing needs undoing. */
static inline void __attribute__((noreturn))
lab_bad_flag(const char *flag, const char *val, const char *expect)
{
	fprintf(stderr, LAB_PROG ": %s: invalid value '%s' (expected %s)\n", flag, val, expect);
	exit(LAB_EXIT_USAGE);
}

/*
 * getopt_long() over long flags only, with the answers both programs give:
 * --help (which must map to 'h') prints usage on stdout and exits 0; an
 * unknown flag or a missing value prints usage on stderr, and an operand
 * left over is named, both exiting LAB_EXIT_USAGE. Returns the next flag,
 * or -1 when argv is done.
 */
static inline int lab_next_flag(int argc, char **argv, const struct option *opts,
				void (*usage)(FILE *out))
{
	int o = getopt_long(argc, argv, "", opts, NULL);

	if (o == 'h') {
		usage(stdout);
		exit(0);
	}
	if (o == '?') {
		usage(stderr); /* getopt_long already named the flag */
		exit(LAB_EXIT_USAGE);
	}
	if (o == -1 && optind < argc) {
		fprintf(stderr, LAB_PROG ": unexpected argument '%s'\n", argv[optind]);
		exit(LAB_EXIT_USAGE);
	}
	return o;
}

/*
 * Both programs' handlers only set a flag that the main thread checks
 * between short waits, so the handler needs no sa_flags and no extra mask.
 */
static inline void lab_catch(int sig, void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/*
 * Starts fn(arg) with every signal blocked, so that signals reach only the
 * main thread, which is the one that watches the flags the handlers set.
 * Returns pthread_create()'s result.
 */
static inline int lab_thread_start(pthread_t *tid, bool detached, void *(*fn)(void *), void *arg)
{
	sigset_t block, old;
	pthread_attr_t attr;
	int err;

	sigfillset(&block);
	pthread_attr_init(&attr);
	if (detached)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, LAB_THREAD_STACK);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	err = pthread_create(tid, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return err;
}

#endif /* CANARY_TOOLS_LAB_LABCOMMON_H */
