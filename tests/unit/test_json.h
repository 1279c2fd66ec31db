/* SPDX-License-Identifier: Apache-2.0 */
/* JSON fixtures for unit tests: a literal that must parse, or the test
 * binary stops with exit status 2 (a broken fixture is not a failed check). */
#ifndef KM_TEST_JSON_H
#define KM_TEST_JSON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"

static inline struct km_json *test_json(struct km_arena *a, const char *text)
{
	struct km_json *v = NULL;
	if (km_json_parse(a, text, strlen(text), &v, NULL) != 0) {
		fprintf(stderr, "test JSON does not parse: %s\n", text);
		exit(2);
	}
	return v;
}

#endif
