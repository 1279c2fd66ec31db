#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark client for bench/run.sh, over one keep-alive HTTP/1.1 connection.

  load.py create PORT N        PUT Dataplanes dp-0..dp-N-1 into mesh default
  load.py list PORT SIZE       page through /meshes/default/dataplanes with ?size=SIZE
  load.py free-port            print a free loopback TCP port

Each timed command prints one line of key=value pairs; any non-2xx answer
exits 1 with the status and body."""

import http.client
import json
import socket
import sys
import time


def dataplane(i: int) -> bytes:
    return json.dumps({
        "type": "Dataplane",
        "mesh": "default",
        "name": f"dp-{i}",
        "labels": {"kuma.io/workload": f"svc-{i % 100}"},
        "networking": {
            "address": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
            "inbound": [{"port": 8080, "protocol": "http"}],
        },
    }).encode()


def fail(what: str, resp: http.client.HTTPResponse, body: bytes) -> None:
    sys.stderr.write(f"load.py: {what}: HTTP {resp.status}: {body[:500].decode(errors='replace')}\n")
    sys.exit(1)


def create(port: int, n: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdrs = {"Content-Type": "application/json"}
    t0 = time.perf_counter()
    for i in range(n):
        conn.request("PUT", f"/meshes/default/dataplanes/dp-{i}", body=dataplane(i), headers=hdrs)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status not in (200, 201):
            fail(f"PUT dp-{i}", resp, body)
    dt = time.perf_counter() - t0
    print(f"created={n} seconds={dt:.3f} per_second={n / dt:.0f}")


def list_all(port: int, size: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    path = f"/meshes/default/dataplanes?size={size}"
    items = pages = nbytes = 0
    t0 = time.perf_counter()
    while path:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            fail(f"GET {path}", resp, body)
        doc = json.loads(body)
        items += len(doc.get("items", []))
        nbytes += len(body)
        pages += 1
        nxt = doc.get("next")
        if nxt:
            # "next" is an absolute URL; keep the path and query only.
            path = nxt.split("://", 1)[-1]
            path = path[path.index("/"):] if "/" in path else None
        else:
            path = None
    dt = time.perf_counter() - t0
    print(f"size={size} pages={pages} items={items} bytes={nbytes} seconds={dt:.3f}")


def free_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def main() -> None:
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "create":
        create(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "list":
        list_all(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "free-port":
        free_port()
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
