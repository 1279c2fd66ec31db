/* SPDX-License-Identifier: Apache-2.0 */
/* Template-driven JSON construction (see jsonf.h): renders text with escaped
 * arguments, then parses it into the arena. Generators favour readability;
 * caching above them keeps this off hot paths. */
#include "codec/jsonf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct km_json *km_json_fmt(struct km_arena *a, const char *fmt, ...)
{
	struct km_buf b = KM_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			km_buf_putc(&b, *p);
			continue;
		}
		switch (*++p) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			km_json_write_string(&b, km_str_c(s ? s : ""));
			break;
		}
		case 'S': {
			const struct km_str *s = va_arg(ap, const struct km_str *);
			km_json_write_string(&b, s ? *s : KM_STR(""));
			break;
		}
		case 'd': km_buf_printf(&b, "%d", va_arg(ap, int)); break;
		case 'u': km_buf_printf(&b, "%u", va_arg(ap, unsigned)); break;
		case 'D': km_buf_printf(&b, "%" PRId64, va_arg(ap, int64_t)); break;
		case 'b': km_buf_puts(&b, va_arg(ap, int) ? "true" : "false"); break;
		case 'J': km_json_write(&b, va_arg(ap, const struct km_json *), 0, 0); break;
		case '%': km_buf_putc(&b, '%'); break;
		default:
			fprintf(stderr, "km_json_fmt: bad conversion %%%c in %s\n", *p, fmt);
			abort();
		}
	}
	va_end(ap);
	struct km_json *v;
	struct km_buf err = KM_BUF_INIT;
	if (km_json_parse(a, km_buf_cstr(&b), b.len, &v, &err) != 0) {
		fprintf(stderr, "km_json_fmt: %s in %s\n", km_buf_cstr(&err), km_buf_cstr(&b));
		abort();
	}
	km_buf_fini(&err);
	km_buf_fini(&b);
	return v;
}
