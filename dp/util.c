/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared by kuma-dp modules: base64 decoding of the bootstrap
 * response and Go-style errno texts. Results go to caller-owned buffers or
 * the caller's arena. */
#include <errno.h>
#include <string.h>

#include "dp/dp.h"

static int b64val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

int dp_util_base64_decode(struct km_str in, struct km_buf *out)
{
	unsigned acc = 0;
	int bits = 0;
	bool pad = false;
	for (size_t i = 0; i < in.len; i++) {
		char ch = in.ptr[i];
		if (ch == '\n' || ch == '\r' || ch == ' ' || ch == '\t')
			continue;
		if (ch == '=') {
			pad = true;
			continue;
		}
		int v = b64val(ch);
		if (v < 0 || pad)
			return -EINVAL;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			km_buf_putc(out, (char)((acc >> bits) & 0xff));
		}
	}
	if (bits >= 6)
		return -EINVAL;
	return 0;
}

const char *dp_util_strerror(struct km_arena *a, int e)
{
	char *s = km_arena_strdup(a, strerror(e));
	if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
		s[0] = (char)(s[0] - 'A' + 'a');
	return s;
}
