/* SPDX-License-Identifier: Apache-2.0 */
/* One line per event on stderr: time, level, subsystem, message, then
 * key=value pairs written by the caller. Disabled levels cost one compare. */
#ifndef KM_BASE_LOG_H
#define KM_BASE_LOG_H

enum km_log_level { KM_LOG_ERROR = 0, KM_LOG_WARN, KM_LOG_INFO, KM_LOG_DEBUG };

extern enum km_log_level km_log_threshold;

void km_log_write(enum km_log_level lvl, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parses "error|warn|info|debug" (and upstream's "off"); 0 or -EINVAL. */
int km_log_set_level(const char *name);

#define km_log(lvl, subsys, ...)                                                                   \
	do {                                                                                       \
		if ((lvl) <= km_log_threshold)                                                     \
			km_log_write((lvl), (subsys), __VA_ARGS__);                                \
	} while (0)
#define km_error(subsys, ...) km_log(KM_LOG_ERROR, subsys, __VA_ARGS__)
#define km_warn(subsys, ...) km_log(KM_LOG_WARN, subsys, __VA_ARGS__)
#define km_info(subsys, ...) km_log(KM_LOG_INFO, subsys, __VA_ARGS__)
#define km_debug(subsys, ...) km_log(KM_LOG_DEBUG, subsys, __VA_ARGS__)

#endif
