/* SPDX-License-Identifier: Apache-2.0 */
/* The control plane's event bus: the store reports each committed write once
 * and the bus fans it out to subscribers (insights, later xDS and caches) in
 * subscription order, synchronously on the loop thread. Subscribers must not
 * write to the store from the callback; they schedule work instead. */
#ifndef CP_EVENTS_H
#define CP_EVENTS_H

#include "cp/store/store.h"

#define CP_EVENTS_MAX 16

struct cp_events {
	struct {
		cp_store_change_fn fn;
		void *ctx;
	} subs[CP_EVENTS_MAX];
	size_t n;
};

/* Makes <bus> the change callback of <store>. */
void cp_events_attach(struct cp_events *bus, struct cp_store *store);
/* 0 or -ENOSPC. */
int cp_events_subscribe(struct cp_events *bus, cp_store_change_fn fn, void *ctx);
/* Removes the subscription of <fn> with <ctx> (none: nothing). */
void cp_events_unsubscribe(struct cp_events *bus, cp_store_change_fn fn, void *ctx);

#endif
