/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for the REST API's HTTP path: raw bytes go through a
 * socketpair into the real server (libmicrohttpd parsing, our routing, body
 * decoding, validation and the memory store) as a loopback admin client. The
 * store persists across inputs, like a long-running control plane. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include "base/log.h"
#include "cp/api/api.h"
#include "cp/config/config.h"
#include "cp/manager.h"

static struct cp_runtime rt;
static struct cp_config cfg;
static struct cp_api *api;

static void init(void)
{
	km_log_threshold = KM_LOG_ERROR;
	cp_config_init_defaults(&cfg);
	rt.cfg = &cfg;
	rt.loop = km_loop_new();
	rt.store = cp_store_memory_new();
	rt.zone = "default";
	rt.localhost_is_admin = true;
	rt.side_effects = false;
	rt.test_hooks = true;
	rt.hostname = rt.instance_id = rt.cluster_id = "fuzz";
	rt.version = KM_VERSION;
	api = cp_api_start(&rt, "127.0.0.1", 0);
	if (!api)
		abort();
	/* a mesh so that mesh-scoped writes get past the mesh check */
	struct km_arena *a = km_arena_new(0);
	struct km_resource_doc d = {0};
	d.type = km_rtype_by_name(KM_STR("Mesh"));
	d.name = KM_STR("default");
	d.spec = km_json_object(a);
	struct km_violations v;
	km_violations_init(&v, a);
	cp_manager_create(&rt, a, &d, &v);
	km_arena_free(a);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (!api)
		init();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 0;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	if (cp_http_add_connection(cp_api_http(api), sv[1]) != 0) {
		close(sv[0]);
		return 0;
	}
	size_t off = 0;
	char buf[65536];
	for (int round = 0; round < 200; round++) {
		if (off < size) {
			ssize_t w = write(sv[0], data + off, size - off);
			if (w > 0)
				off += (size_t)w;
			if (off == size)
				shutdown(sv[0], SHUT_WR);
		} else if (size == 0) {
			shutdown(sv[0], SHUT_WR);
		}
		cp_http_run(cp_api_http(api));
		ssize_t r = read(sv[0], buf, sizeof(buf));
		if (r == 0)
			break;
	}
	close(sv[0]);
	cp_http_run(cp_api_http(api));
	return 0;
}
