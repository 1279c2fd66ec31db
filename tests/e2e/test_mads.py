# SPDX-License-Identifier: Apache-2.0
"""MADS v1 (monitoring assignments for Prometheus's kuma_sd_configs) on the
monitoring port of a real kuma-cp: POST /v3/discovery:monitoringassignments
with a DiscoveryRequest, as Prometheus's xDS client sends it. Assignments
come from the MeshMetric Prometheus backends selecting each Dataplane,
grouped by client id; long polls wake on a change of the client's
assignments, not on writes that leave them alone; bad requests get 400."""

import json
import threading
import time

from harness.http import request
from harness.mesh import cp_metrics, wait_for

TYPE = "type.googleapis.com/kuma.observability.v1.MonitoringAssignment"
PATH = "/v3/discovery:monitoringassignments"


def dp(name, workload, address, mesh="default"):
    return {"type": "Dataplane", "mesh": mesh, "name": name, "labels": {"kuma.io/workload": workload},
            "networking": {"address": address, "inbound": [{"port": 8080, "tags": {"kuma.io/service": workload}}]}}


def meshmetric(name, spec, mesh="default"):
    return {"type": "MeshMetric", "mesh": mesh, "name": name, "spec": spec}


def fetch(cp, client="_kuma-default-client", version="", timeout=None, body=None):
    path = PATH + (f"?fetch-timeout={timeout}" if timeout is not None else "")
    if body is None:
        body = {"version_info": version, "node": {"id": client}, "type_url": TYPE}
    return request("127.0.0.1", cp.ports["monitoring"], "POST", path, body, timeout=30)


def mesh(cp, name="default"):
    r = cp.api.put(f"/meshes/{name}", {"type": "Mesh", "name": name})
    assert r.status in (200, 201), r.describe()


def put(cp, doc):
    plural = {"Dataplane": "dataplanes", "MeshMetric": "meshmetrics"}[doc["type"]]
    r = cp.api.put(f"/meshes/{doc['mesh']}/{plural}/{doc['name']}", doc)
    assert r.status in (200, 201), r.describe()


def test_assignments_by_client(fresh_cp):
    cp = fresh_cp
    r = fetch(cp, timeout="0s")
    assert r.status == 200, r.describe()
    empty = r.json()
    assert empty["resources"] == [] and empty["type_url"] == TYPE and empty["version_info"]
    mesh(cp)
    for d in (dp("web-1", "web", "10.0.0.1"), dp("web-2", "web", "10.0.0.2"), dp("db-1", "db", "fd00::7")):
        put(cp, d)
    put(cp, meshmetric("web-metrics", {
        "targetRef": {"kind": "Dataplane", "labels": {"kuma.io/workload": "web"}},
        "default": {"backends": [
            {"type": "Prometheus", "prometheus": {"port": 5670, "path": "/metrics"}},
            {"type": "Prometheus", "prometheus": {"clientId": "team-b", "port": 5671, "path": "/m",
                                                  "tls": {"mode": "ProvidedTLS"}}}]}}))
    put(cp, meshmetric("db-metrics", {
        "targetRef": {"kind": "Dataplane", "labels": {"kuma.io/workload": "db"}},
        "default": {"backends": [{"type": "Prometheus", "prometheus": {"port": 9102, "path": "/metrics"}}]}}))
    r = fetch(cp, timeout="0s")
    assert r.status == 200, r.describe()
    got = r.json()
    assert got["version_info"] != empty["version_info"]
    assert got["resources"] == [
        {"@type": TYPE, "mesh": "default", "service": "db",
         "targets": [{"name": "db-1", "scheme": "http", "address": "[fd00::7]:9102", "metrics_path": "/metrics"}]},
        {"@type": TYPE, "mesh": "default", "service": "web",
         "targets": [{"name": "web-1", "scheme": "http", "address": "10.0.0.1:5670", "metrics_path": "/metrics"}]},
        {"@type": TYPE, "mesh": "default", "service": "web",
         "targets": [{"name": "web-2", "scheme": "http", "address": "10.0.0.2:5670", "metrics_path": "/metrics"}]},
    ]
    b = fetch(cp, client="team-b", timeout="0s").json()
    assert [(x["targets"][0]["name"], x["targets"][0]["scheme"], x["targets"][0]["address"]) for x in b["resources"]] \
        == [("web-1", "https", "10.0.0.1:5671"), ("web-2", "https", "10.0.0.2:5671")]
    # a client nobody names: an empty list (upstream: a 500 for a missing snapshot)
    assert fetch(cp, client="nobody", timeout="0s").json()["resources"] == []
    # the version the client holds: 304 at once without a wait
    r = fetch(cp, version=got["version_info"], timeout="0s")
    assert r.status == 304 and r.body == b"", r.describe()


def test_long_poll_wakes_on_change_only(fresh_cp):
    cp = fresh_cp
    mesh(cp)
    put(cp, dp("web-1", "web", "10.0.0.1"))
    put(cp, meshmetric("mm", {"targetRef": {"kind": "Mesh"}, "default": {
        "backends": [{"type": "Prometheus", "prometheus": {"port": 5670, "path": "/metrics"}}]}}))
    v1 = fetch(cp, timeout="0s").json()["version_info"]
    m0 = cp_metrics(cp)
    assert m0["mads_responses_total"] >= 1 and m0["mads_assignment_builds_total"] >= 1, m0
    # writes that change no assignment of this client: the poll runs out
    t0 = time.monotonic()
    done = {}
    th = threading.Thread(target=lambda: done.setdefault("r", fetch(cp, version=v1, timeout="1500ms")))
    th.start()
    wait_for(lambda: cp_metrics(cp)["mads_long_polls_waiting"] == 1, 1, what="the poll waiting")
    put(cp, dp("web-1", "web", "10.0.0.1"))  # the same Dataplane again
    put(cp, meshmetric("other-client", {"targetRef": {"kind": "Mesh"}, "default": {
        "backends": [{"type": "Prometheus", "prometheus": {"clientId": "x", "port": 1, "path": "/"}}]}}))
    th.join(10)
    assert done["r"].status == 304, done["r"].describe()
    assert time.monotonic() - t0 >= 1.4
    # the writes were recomputed while the poll waited, and answered nobody
    m1 = cp_metrics(cp)
    assert m1["mads_assignment_builds_total"] > m0["mads_assignment_builds_total"], (m0, m1)
    assert m1["mads_assignment_build_seconds_total"] > 0, m1
    assert m1["mads_responses_total"] == m0["mads_responses_total"], (m0, m1)
    assert m1["mads_long_polls_waiting"] == 0, m1
    # a new Dataplane of the mesh: the waiting poll answers with it
    th = threading.Thread(target=lambda: done.__setitem__("r", fetch(cp, version=v1, timeout="20s")))
    t0 = time.monotonic()
    th.start()
    time.sleep(0.3)
    put(cp, dp("web-2", "web", "10.0.0.2"))
    th.join(10)
    r = done["r"]
    assert r.status == 200, r.describe()
    assert time.monotonic() - t0 < 5
    assert r.json()["version_info"] != v1
    assert [x["targets"][0]["name"] for x in r.json()["resources"]] == ["web-1", "web-2"]
    assert cp_metrics(cp)["mads_responses_total"] == m1["mads_responses_total"] + 1
    # deleting the policy: no assignment left
    assert cp.api.delete("/meshes/default/meshmetrics/mm").status == 200
    assert fetch(cp, timeout="0s").json()["resources"] == []


def test_recompute_matches_only_what_changed(fresh_cp):
    """A recomputation re-matches only the Dataplanes written since the last
    one; a MeshMetric write re-matches its mesh; a deleted Dataplane leaves."""
    cp = fresh_cp
    mesh(cp)
    for i in range(5):
        put(cp, dp(f"web-{i}", "web", f"10.0.0.{i}"))
    put(cp, meshmetric("mm", {"targetRef": {"kind": "Mesh"}, "default": {
        "backends": [{"type": "Prometheus", "prometheus": {"port": 5670, "path": "/metrics"}}]}}))

    def targets():
        return {x["targets"][0]["name"]: x["targets"][0]["address"]
                for x in fetch(cp, timeout="0s").json()["resources"]}

    def matched():
        return cp_metrics(cp)["mads_dataplanes_matched_total"]

    assert len(targets()) == 5
    m0 = matched()
    put(cp, dp("web-1", "web", "10.0.1.1"))  # a new address
    put(cp, dp("web-2", "web", "10.0.0.2"))  # unchanged
    assert targets()["web-1"] == "10.0.1.1:5670"
    assert matched() == m0 + 1
    put(cp, meshmetric("mm", {"targetRef": {"kind": "Mesh"}, "default": {
        "backends": [{"type": "Prometheus", "prometheus": {"port": 5671, "path": "/metrics"}}]}}))
    assert set(targets().values()) == {"10.0.0.0:5671", "10.0.1.1:5671", "10.0.0.2:5671", "10.0.0.3:5671",
                                       "10.0.0.4:5671"}
    assert matched() == m0 + 6
    assert cp.api.delete("/meshes/default/dataplanes/web-3").status == 200
    assert set(targets()) == {"web-0", "web-1", "web-2", "web-4"}
    assert matched() == m0 + 6


def test_bad_requests(fresh_cp):
    cp = fresh_cp
    port = cp.ports["monitoring"]
    r = request("127.0.0.1", port, "POST", PATH, "{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["title"] == "Could not parse request body", r.describe()
    r = fetch(cp, body={"version_info": "", "bogus": 1})
    assert r.status == 400 and "unknown field \"bogus\"" in r.json()["detail"], r.describe()
    r = fetch(cp, body=[1, 2])
    assert r.status == 400, r.describe()
    r = fetch(cp, timeout="soon")
    assert r.status == 400 and r.json()["title"] == "Could not parse fetch-timeout", r.describe()
    assert r.json()["detail"] == 'time: invalid duration "soon"'
    assert request("127.0.0.1", port, "GET", PATH).status == 405
    assert request("127.0.0.1", port, "POST", "/v3/discovery:clusters", {}).status == 404
    # oversized bodies are refused and the server keeps serving
    r = request("127.0.0.1", port, "POST", PATH, "x" * (2 << 20), headers={"Content-Type": "application/json"})
    assert r.status == 413, r.describe()
    assert fetch(cp, timeout="0s").status == 200
    # a JSON-name request (protojson accepts both)
    r = fetch(cp, body={"versionInfo": "", "node": {"id": "_kuma-default-client"}, "typeUrl": TYPE},
              timeout="0s")
    assert r.status == 200 and json.loads(r.body)["type_url"] == TYPE
