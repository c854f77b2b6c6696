// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "hooks.h"
#include "httppost.h"

/* How long the worker rests when no call is due. */
#define IDLE_MS 100

static bool hooks_step(void *arg)
{
	struct agent *a = arg;
	struct hook_job job;
	char err[128] = "";
	long status = 0;
	int rc;

	if (!agent_hook_next(a, &job))
		return false;
	rc = http_post_json(job.url, job.body, job.timeout_ms, &status, err, sizeof(err));
	agent_hook_result(a, &job, rc == 0, status, err);
	return true;
}

int hooks_start(struct agent *a, struct worker **out)
{
	return worker_start(hooks_step, a, IDLE_MS, out);
}
