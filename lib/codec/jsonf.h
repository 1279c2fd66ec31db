/* SPDX-License-Identifier: Apache-2.0 */
/* Building JSON trees from a template: km_json_fmt(a, "{\"name\":%s,\"port\":%u}",
 * name, port). Conversions: %s C string and %S struct km_str * (both escaped
 * as JSON strings), %d int, %u unsigned, %D int64_t, %b bool, %J struct
 * km_json * (a copy is embedded; NULL becomes null), %T struct km_json *
 * (taken: the node itself is embedded, so it must be in <a> and referenced
 * nowhere else; for trees just built, on hot paths), %%. The result lives
 * in <a>; a template that does not parse is a programming error and
 * aborts. */
#ifndef KM_CODEC_JSONF_H
#define KM_CODEC_JSONF_H

#include "codec/json.h"

struct km_json *km_json_fmt(struct km_arena *a, const char *fmt, ...);
/* Frees the calling thread's copies of the compiled templates (a thread
 * other than the main one calls it before it exits; the templates stay,
 * shared by every thread for the life of the process). */
void km_json_fmt_thread_fini(void);

#endif
