/* SPDX-License-Identifier: Apache-2.0 */
/* Event bus fan-out (see events.h). */
#include "cp/events.h"

#include <errno.h>

static void dispatch(void *ctx, enum cp_store_op op, const struct km_rtype *t, struct km_str mesh,
		     struct km_str name)
{
	struct cp_events *bus = ctx;
	for (size_t i = 0; i < bus->n; i++)
		bus->subs[i].fn(bus->subs[i].ctx, op, t, mesh, name);
}

void cp_events_attach(struct cp_events *bus, struct cp_store *store)
{
	store->on_change = dispatch;
	store->on_change_ctx = bus;
}

int cp_events_subscribe(struct cp_events *bus, cp_store_change_fn fn, void *ctx)
{
	if (bus->n == CP_EVENTS_MAX)
		return -ENOSPC;
	bus->subs[bus->n].fn = fn;
	bus->subs[bus->n].ctx = ctx;
	bus->n++;
	return 0;
}

void cp_events_unsubscribe(struct cp_events *bus, cp_store_change_fn fn, void *ctx)
{
	for (size_t i = 0; bus && i < bus->n; i++)
		if (bus->subs[i].fn == fn && bus->subs[i].ctx == ctx) {
			for (size_t j = i + 1; j < bus->n; j++)
				bus->subs[j - 1] = bus->subs[j];
			bus->n--;
			return;
		}
}
