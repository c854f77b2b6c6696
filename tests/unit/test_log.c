// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * log.c: lines from threads logging at once stay whole. A reader (the lab's
 * "msg=ready" wait, a log shipper) needs every line to be one event.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

#define THREADS		 4
#define LINES_PER_THREAD 2000

static void *log_lines(void *arg)
{
	const char *who = arg;
	int i;

	for (i = 0; i < LINES_PER_THREAD; i++)
		log_event(CLOG_INFO, "concurrent line", "thread", who, "value", "a b c");
	return NULL;
}

/* Every line: one "ts=" at its start, one msg, the thread's fields whole. */
static int count_whole_lines(FILE *f)
{
	char line[512];
	int whole = 0;

	rewind(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "ts=", 3) && !strstr(line + 3, "ts=") &&
		    strstr(line, " level=info msg=\"concurrent line\" thread=t") &&
		    strstr(line, " value=\"a b c\"\n"))
			whole++;
	return whole;
}

static void test_threads_keep_lines_whole(void **state)
{
	static const char *const names[THREADS] = { "t0", "t1", "t2", "t3" };
	pthread_t t[THREADS];
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO), i;

	(void)state;
	assert_non_null(f);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
	log_setup(CLOG_FMT_LOGFMT, CLOG_INFO);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, log_lines, (void *)names[i]), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	assert_int_equal(count_whole_lines(f), THREADS * LINES_PER_THREAD);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_keep_lines_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
