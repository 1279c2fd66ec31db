/* SPDX-License-Identifier: Apache-2.0 */
/* Logger: formats one line into a stack buffer and writes it with one call so
 * lines from different processes sharing stderr do not interleave. */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum km_log_level km_log_threshold = KM_LOG_INFO;

static const char *const names[] = {"error", "warn", "info", "debug"};

void km_log_write(enum km_log_level lvl, const char *subsys, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, names[lvl], subsys);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

int km_log_set_level(const char *name)
{
	if (strcmp(name, "off") == 0) {
		km_log_threshold = KM_LOG_ERROR;
		return 0;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0) {
			km_log_threshold = (enum km_log_level)i;
			return 0;
		}
	if (strcmp(name, "warning") == 0) {
		km_log_threshold = KM_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}
