/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl version [-a]`: the client build, then what the control plane's
 * index (GET /) reports, or a note on stderr when it cannot be reached. */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

int ctl_version_run(struct ctl_ctx *c)
{
	bool detailed = ctl_args_bool(c, "detailed");
	if (detailed)
		printf("Product:       %s\nVersion:       %s\nGit Tag:       unknown\nGit Commit:    unknown\nBuild Date:    unknown\n",
		       CTL_PRODUCT, KM_VERSION);
	else
		printf("Client: %s %s\n", CTL_PRODUCT, KM_VERSION);
	fflush(stdout);
	struct ctl_resp r = {0};
	struct km_buf err = KM_BUF_INIT;
	struct km_json *v = NULL;
	const struct ctl_cp *cp = ctl_client_cp_quiet(c, &err);
	if (!cp) {
		fprintf(stderr, "Unable to connect to control plane: %s\n", km_buf_cstr(&err));
	} else if (ctl_client_do(c, cp, "GET", "/", NULL, &r, &err) < 0) {
		fprintf(stderr,
			"Unable to connect to control plane: Unable to retrieve server version: %s\n",
			km_buf_cstr(&err));
	} else if (r.status != 200) {
		fprintf(stderr,
			"Unable to connect to control plane: Unable to retrieve server version: (%ld): %.*s\n",
			r.status, KM_STR_FMT(r.body));
	} else if (km_json_parse(c->a, r.body.ptr, r.body.len, &v, &err) < 0 ||
		   v->kind != KM_JSON_OBJECT) {
		fprintf(stderr,
			"Unable to connect to control plane: Unable to retrieve server version: %s\n",
			km_buf_cstr(&err));
	} else if (detailed) {
		struct km_buf out = KM_BUF_INIT;
		km_buf_puts(&out, "Server: ");
		km_json_write(&out, v, 3, 0);
		km_buf_putc(&out, '\n');
		ctl_args_out(&out);
		km_buf_fini(&out);
	} else {
		printf("Server: %.*s %.*s\n", KM_STR_FMT(km_json_get_string(v, "product")),
		       KM_STR_FMT(km_json_get_string(v, "version")));
	}
	km_buf_fini(&err);
	return 0;
}
