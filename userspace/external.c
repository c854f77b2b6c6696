// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "external.h"
#include "promquery.h"

/* How long the worker rests when no query is due. */
#define IDLE_MS 100

/* Run the next due query, if any, and hand its result to the rollout. */
static bool external_step(void *arg)
{
	struct agent *a = arg;
	struct external_job job;
	char err[256] = "";
	double value = 0;
	int rc;

	if (!agent_external_next(a, &job))
		return false;
	rc = promquery(job.address, job.query, &value, err, sizeof(err));
	agent_external_result(a, &job, rc == 0, value, err);
	return true;
}

int external_start(struct agent *a, struct worker **out)
{
	return worker_start(external_step, a, IDLE_MS, out);
}
