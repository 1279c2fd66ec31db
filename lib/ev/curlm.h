/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl's multi interface driven by a km_loop: the loop watches the
 * sockets and the one timer curl asks for, and every transfer that ends is
 * handed to a callback on the loop thread. Nothing blocks, nothing starts a
 * thread (but the threaded resolver curl may use for host names). */
#ifndef KM_EV_CURLM_H
#define KM_EV_CURLM_H

#include <curl/curl.h>

#include "ev/loop.h"

struct km_curlm;

/* A transfer <easy> ended with <res>. It is still in the multi handle: the
 * callback removes it (km_curlm_remove) and may start others. */
typedef void (*km_curlm_done_fn)(void *ctx, CURL *easy, CURLcode res);

/* NULL when curl cannot make a multi handle. */
struct km_curlm *km_curlm_new(struct km_loop *loop, km_curlm_done_fn done, void *ctx);
/* Starts <easy> (its close-socket callback is taken: the loop must forget a
 * socket before curl closes it, a new one may get the same number). 0 or
 * -ENOMEM. */
int km_curlm_add(struct km_curlm *cm, CURL *easy);
/* Takes <easy> out (ended or not); the caller cleans it up. */
void km_curlm_remove(struct km_curlm *cm, CURL *easy);
/* Frees the multi handle; every transfer must have been removed. */
void km_curlm_free(struct km_curlm *cm);

#endif
