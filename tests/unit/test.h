/* SPDX-License-Identifier: Apache-2.0 */
/* Minimal unit-test harness: each check counts as one assertion; main() ends
 * with the line "N passed, N failed" that CI reads. */
#ifndef KM_TEST_H
#define KM_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (cond) {                                                                        \
			test_passed++;                                                             \
		} else {                                                                           \
			test_failed++;                                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

#define CHECK_STREQ(a, b)                                                                          \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (a_ && b_ && strcmp(a_, b_) == 0) {                                             \
			test_passed++;                                                             \
		} else {                                                                           \
			test_failed++;                                                             \
			fprintf(stderr, "%s:%d: expected\n---\n%s\n--- got\n%s\n---\n", __FILE__, \
				__LINE__, b_ ? b_ : "(null)", a_ ? a_ : "(null)");                 \
		}                                                                                  \
	} while (0)

static inline int test_summary(void)
{
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}

#endif
