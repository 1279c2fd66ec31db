/* SPDX-License-Identifier: Apache-2.0 */
/* The loop's timer heap: timers fire in deadline order (arming order on
 * ties), stopped ones never fire, re-arming moves a timer, and a callback may
 * arm and stop timers. */
#include <stdint.h>
#include <stdlib.h>

#include "../test.h"
#include "ev/loop.h"

#define N 2000

static struct km_timer timers[N];
static uint64_t deadline[N];
static int fired[N], order[N], nfired;
static uint64_t last_deadline;
static int out_of_order;

static void on_fire(struct km_loop *l, void *ctx)
{
	int i = (int)(intptr_t)ctx;
	fired[i]++;
	if (deadline[i] < last_deadline)
		out_of_order++;
	last_deadline = deadline[i];
	order[nfired++] = i;
	if (nfired == N / 2 + N / 4)
		km_loop_stop(l);
}

static int tie_seen[3], ntie;
static void on_tie(struct km_loop *l, void *ctx)
{
	tie_seen[ntie++] = (int)(intptr_t)ctx;
	if (ntie == 3)
		km_loop_stop(l);
}

static struct km_timer chain;
static int chain_left = 5;
static void on_chain(struct km_loop *l, void *ctx)
{
	if (--chain_left > 0)
		km_loop_timer_start(l, &chain, 0, on_chain, NULL); /* re-arm from its callback */
	else
		km_loop_stop(l);
}

int main(void)
{
	struct km_loop *l = km_loop_new();
	srand(7);
	for (int i = 0; i < N; i++) {
		/* arm twice: the second deadline counts */
		km_loop_timer_start(l, &timers[i], (uint64_t)(rand() % 50), on_fire, (void *)(intptr_t)i);
		uint64_t ms = (uint64_t)(rand() % 40);
		km_loop_timer_start(l, &timers[i], ms, on_fire, (void *)(intptr_t)i);
		deadline[i] = timers[i].deadline_ms;
	}
	/* stop every fourth */
	for (int i = 0; i < N; i += 4)
		km_loop_timer_stop(l, &timers[i]);
	km_loop_run(l);
	CHECK(nfired == N / 2 + N / 4);
	CHECK(out_of_order == 0);
	int twice = 0, stopped_fired = 0;
	for (int i = 0; i < N; i++) {
		twice += fired[i] > 1;
		stopped_fired += (i % 4 == 0) && fired[i];
		CHECK(!timers[i].armed);
	}
	CHECK(twice == 0);
	CHECK(stopped_fired == 0);

	/* equal deadlines fire in arming order */
	struct km_timer t[3];
	for (int i = 0; i < 3; i++)
		t[i] = (struct km_timer){0};
	for (int i = 0; i < 3; i++)
		km_loop_timer_start(l, &t[i], 0, on_tie, (void *)(intptr_t)i);
	km_loop_run(l);
	CHECK(ntie == 3 && tie_seen[0] == 0 && tie_seen[1] == 1 && tie_seen[2] == 2);

	km_loop_timer_start(l, &chain, 1, on_chain, NULL);
	km_loop_run(l);
	CHECK(chain_left == 0 && !chain.armed);

	km_loop_free(l);
	return test_summary();
}
