#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A Prometheus kuma_sd client for bench/xds.sh (XDS_MADS=1): long-polls
kuma-cp's MADS endpoint as Prometheus's xDS discovery does (POST
/v3/discovery:monitoringassignments with the last version_info and a
fetch timeout), over one keep-alive connection, until SIGTERM; then prints
one line: responses (200 answers), timeouts (304), the assignments of the
last answer and the bytes received.

  mads_poll.py PORT"""

import http.client
import json
import signal
import sys

TYPE = "type.googleapis.com/kuma.observability.v1.MonitoringAssignment"


def main() -> None:
    port = int(sys.argv[1])
    stats = {"responses": 0, "timeouts": 0, "assignments": 0, "bytes": 0}

    def report(*_):
        print(" ".join(f"{k}={v}" for k, v in stats.items()), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, report)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    version = ""
    while True:
        body = json.dumps({"version_info": version, "node": {"id": "_kuma-default-client"},
                           "type_url": TYPE}).encode()
        conn.request("POST", "/v3/discovery:monitoringassignments?fetch-timeout=60s", body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status == 304:
            stats["timeouts"] += 1
            continue
        if resp.status != 200:
            sys.stderr.write(f"mads_poll.py: HTTP {resp.status}: {data[:300]!r}\n")
            sys.exit(1)
        doc = json.loads(data)
        version = doc["version_info"]
        stats["responses"] += 1
        stats["assignments"] = len(doc.get("resources", []))
        stats["bytes"] += len(data)


if __name__ == "__main__":
    main()
