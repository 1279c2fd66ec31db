# SPDX-License-Identifier: Apache-2.0
"""End-to-end: everyday REST API use through a real kuma-cp. CRUD for several
resource types, pagination `next` links, label/name/tag filters, Mesh
deletion (owned resources go with it; dataplanes block it unless
store.unsafeDelete), admin-only Secret access for non-loopback callers, and
the user-token flow (admin token from the admin-user-token global secret,
POST /tokens/user, bearer authentication)."""

import base64
import json

import pytest

from harness.api import assert_std_error, wait_for
from harness.normalize import compare_json_text
from harness import paths

MTP_SPEC = {"targetRef": {"kind": "Mesh"},
            "rules": [{"default": {"allow": [{"spiffeID": {"type": "Prefix", "value": "spiffe://default"}}]}}]}
MT_SPEC = {"targetRef": {"kind": "Mesh"},
           "to": [{"targetRef": {"kind": "Mesh"}, "default": {"idleTimeout": "20s"}}]}
MS_SPEC = {"selector": {"dataplaneLabels": {"matchLabels": {"app": "redis"}}},
           "ports": [{"port": 6379, "targetPort": 6379, "appProtocol": "tcp"}]}


def dp_body(name, mesh="default", address="10.0.0.1", labels=None, port=8080):
    b = {"type": "Dataplane", "mesh": mesh, "name": name,
         "networking": {"address": address, "inbound": [{"port": port}]}}
    if labels:
        b["labels"] = labels
    return b


@pytest.fixture
def api(fresh_cp):
    a = fresh_cp.api
    r = a.put("/meshes/default", {"type": "Mesh", "name": "default"})
    assert r.status == 201, r.describe()
    return a


# ----- CRUD ----------------------------------------------------------------------

CRUD_TYPES = [
    # id, item path, list path, create body, update patch (merged into the body)
    ("mesh", "/meshes/m-crud", "/meshes", {"type": "Mesh", "name": "m-crud"},
     {"labels": {"team": "a"}}),
    ("dataplane", "/meshes/default/dataplanes/dp-crud", "/meshes/default/dataplanes",
     dp_body("dp-crud"), {"networking": {"address": "10.0.0.9", "inbound": [{"port": 9090}]}}),
    ("meshtrafficpermission", "/meshes/default/meshtrafficpermissions/mtp-crud", "/meshes/default/meshtrafficpermissions",
     {"type": "MeshTrafficPermission", "mesh": "default", "name": "mtp-crud", "spec": MTP_SPEC},
     {"labels": {"team": "b"}}),
    ("meshtimeout", "/meshes/default/meshtimeouts/mt-crud", "/meshes/default/meshtimeouts",
     {"type": "MeshTimeout", "mesh": "default", "name": "mt-crud", "spec": MT_SPEC},
     {"spec": {"targetRef": {"kind": "Mesh"},
               "to": [{"targetRef": {"kind": "Mesh"}, "default": {"idleTimeout": "30s"}}]}}),
    ("meshservice", "/meshes/default/meshservices/redis", "/meshes/default/meshservices",
     {"type": "MeshService", "mesh": "default", "name": "redis", "spec": MS_SPEC}, {"labels": {"team": "c"}}),
    ("secret", "/meshes/default/secrets/sec-crud", "/meshes/default/secrets",
     {"type": "Secret", "mesh": "default", "name": "sec-crud", "data": "dGVzdA=="}, {"data": "dGVzdDI="}),
    ("globalsecret", "/global-secrets/gs-crud", "/global-secrets",
     {"type": "GlobalSecret", "name": "gs-crud", "data": "dGVzdA=="}, {"data": "dGVzdDI="}),
    ("zone", "/zones/zone-crud", "/zones", {"type": "Zone", "name": "zone-crud"}, {"labels": {"team": "d"}}),
]


@pytest.mark.parametrize("item,listp,body,patch", [pytest.param(*t[1:], id=t[0]) for t in CRUD_TYPES])
def test_crud_roundtrip(api, item, listp, body, patch):
    r = api.put(item, body)
    assert r.status == 201, r.describe()
    assert r.json() in ({}, {"warnings": []}) or "warnings" in r.json(), r.describe()

    got = api.get(item)
    assert got.status == 200, got.describe()
    g = got.json()
    assert g["type"] == body["type"] and g["name"] == body["name"], got.describe()
    assert g.get("mesh", "") == body.get("mesh", ""), got.describe()
    for k in ("creationTime", "modificationTime"):
        assert k in g, f"{k} missing: {got.describe()}"
    labels = g.get("labels") or {}
    # computed labels on a REST write (standalone zone "default")
    assert labels.get("kuma.io/origin") == "zone", got.describe()
    assert labels.get("kuma.io/display-name") == body["name"], got.describe()
    if body["type"] not in ("Mesh", "Zone"):   # only types a zone provides get kuma.io/zone and kuma.io/env
        assert labels.get("kuma.io/zone") == "default", got.describe()
        assert labels.get("kuma.io/env") == "universal", got.describe()
    for k, v in body.items():
        if k in ("type", "name", "mesh", "labels"):
            continue
        if k == "spec":
            continue  # specs may be defaulted (e.g. MeshService)
        assert g.get(k) == v, f"{k}: {g.get(k)!r} != {v!r}"

    lst = api.get(listp)
    assert lst.status == 200, lst.describe()
    names = [i["name"] for i in lst.json()["items"]]
    assert body["name"] in names, lst.describe()

    updated = {**body, **patch}
    if "labels" in patch:
        updated["labels"] = patch["labels"]
    r = api.put(item, updated)
    assert r.status == 200, r.describe()
    g2 = api.get(item).json()
    assert g2["creationTime"] == g["creationTime"], "creationTime changed on update"
    for k, v in patch.items():
        if k == "labels":
            for lk, lv in v.items():
                assert g2["labels"].get(lk) == lv, g2
        elif k != "spec":
            assert g2[k] == v, g2
    if "spec" in patch:
        assert g2["spec"]["to"][0]["default"] == patch["spec"]["to"][0]["default"], g2

    r = api.delete(item)
    assert r.status == 200 and r.json() == {}, r.describe()
    assert_std_error(api.get(item), 404, detail_prefix="Not found")
    assert_std_error(api.delete(item), 404)
    assert body["name"] not in [i["name"] for i in api.get(listp).json()["items"]]


def test_put_response_body(api):
    r = api.put("/meshes/default/dataplanes/dp-1", dp_body("dp-1"))
    assert r.status == 201, r.describe()
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    r2 = api.put("/meshes/default/dataplanes/dp-1", dp_body("dp-1", address="10.0.0.2"))
    assert r2.status == 200, r2.describe()
    assert api.get("/meshes/default/dataplanes/dp-1").json()["networking"]["address"] == "10.0.0.2"


def test_get_by_kri(api):
    assert api.put("/meshes/default/meshtrafficpermissions/mtp-1",
                   {"type": "MeshTrafficPermission", "mesh": "default", "name": "mtp-1", "spec": MTP_SPEC}).status == 201
    g = api.get("/meshes/default/meshtrafficpermissions/mtp-1").json()
    kri = g.get("kri")
    assert kri == "kri_mtp_default_default__mtp-1_", g
    r = api.get(f"/_kri/{kri}")
    assert r.status == 200, r.describe()
    assert r.json()["name"] == "mtp-1"
    assert api.get("/_kri/kri_mtp_default_default__nope_").status == 404


def test_cross_mesh_list(api):
    assert api.put("/meshes/other", {"type": "Mesh", "name": "other"}).status == 201
    assert api.put("/meshes/default/dataplanes/dp-a", dp_body("dp-a")).status == 201
    assert api.put("/meshes/other/dataplanes/dp-b", dp_body("dp-b", mesh="other")).status == 201
    body = api.get("/dataplanes").json()
    assert body["total"] == 2, body
    assert sorted((i["mesh"], i["name"]) for i in body["items"]) == [("default", "dp-a"), ("other", "dp-b")]
    assert api.get("/meshes/other/dataplanes").json()["total"] == 1


# ----- pagination ------------------------------------------------------------------

def test_pagination_next_links(api):
    names = [f"m-{i:02d}" for i in range(7)]
    for n in names:
        assert api.put(f"/meshes/{n}", {"type": "Mesh", "name": n}).status == 201
    all_names = sorted(names + ["default"])
    seen = []
    url = "/meshes?size=3"
    pages = 0
    while url:
        r = api.get(url)
        assert r.status == 200, r.describe()
        body = r.json()
        assert body["total"] == len(all_names), body
        assert len(body["items"]) <= 3
        seen += [i["name"] for i in body["items"]]
        nxt = body["next"]
        pages += 1
        if nxt is None:
            break
        prefix = f"http://{api.address}/meshes?"
        assert nxt.startswith(prefix), nxt
        assert nxt == f"{prefix}offset={len(seen)}&size=3", nxt
        url = nxt[len(f"http://{api.address}"):]
    assert pages == 3
    assert seen == all_names, seen


def test_pagination_keeps_filters(api):
    for i in range(4):
        assert api.put(f"/meshes/default/dataplanes/dp-{i}",
                       dp_body(f"dp-{i}", address=f"10.0.0.{i + 1}", labels={"app": "web"})).status == 201
    r = api.get("/meshes/default/dataplanes?size=2&filter[labels.app]=web")
    body = r.json()
    assert body["total"] == 4 and len(body["items"]) == 2, body
    assert body["next"] == (f"http://{api.address}/meshes/default/dataplanes?"
                            f"filter%5Blabels.app%5D=web&offset=2&size=2"), body["next"]


def test_offset_past_end(api):
    r = api.get("/meshes?size=2&offset=50")
    assert r.status == 200, r.describe()
    body = r.json()
    assert body["items"] == [] and body["next"] is None and body["total"] == 1, body


# ----- filters ---------------------------------------------------------------------

def test_label_filters(api):
    assert api.put("/meshes/default/dataplanes/dp-1", dp_body("dp-1", labels={"app": "web", "team": "a"})).status == 201
    assert api.put("/meshes/default/dataplanes/dp-2",
                   dp_body("dp-2", address="10.0.0.2", labels={"app": "web", "team": "b"})).status == 201
    assert api.put("/meshes/default/dataplanes/dp-3",
                   dp_body("dp-3", address="10.0.0.3", labels={"app": "db"})).status == 201

    def names(q):
        r = api.get("/meshes/default/dataplanes?" + q)
        assert r.status == 200, r.describe()
        body = r.json()
        assert body["total"] == len(body["items"]), body
        return [i["name"] for i in body["items"]]

    assert names("filter[labels.app]=web") == ["dp-1", "dp-2"]
    assert names("filter[labels.app]=web&filter[labels.team]=b") == ["dp-2"]
    assert names("filter[labels.app]=nope") == []
    assert names("filter[labels.kuma.io/zone]=default") == ["dp-1", "dp-2", "dp-3"]
    assert names("filter[labels.kuma.io/mesh]=default&filter[labels.app]=db") == ["dp-3"]
    assert names("name=p-2") == ["dp-2"]
    assert names("tag=app:we") == ["dp-1", "dp-2"]          # tag= is a substring match on labels
    assert names("tag=app:web&tag=team:a") == ["dp-1"]
    # cross-mesh list honours filters too
    r = api.get("/dataplanes?filter[labels.app]=db").json()
    assert [i["name"] for i in r["items"]] == ["dp-3"]


# ----- mesh deletion ------------------------------------------------------------------

def test_delete_mesh_removes_owned_resources(api):
    a = api
    assert a.put("/meshes/casc", {"type": "Mesh", "name": "casc"}).status == 201
    assert a.put("/meshes/casc/meshtrafficpermissions/mtp-1",
                 {"type": "MeshTrafficPermission", "mesh": "casc", "name": "mtp-1", "spec": MTP_SPEC}).status == 201
    assert a.put("/meshes/casc/meshtimeouts/mt-1",
                 {"type": "MeshTimeout", "mesh": "casc", "name": "mt-1", "spec": MT_SPEC}).status == 201
    assert a.put("/meshes/casc/secrets/s-1",
                 {"type": "Secret", "mesh": "casc", "name": "s-1", "data": "dGVzdA=="}).status == 201
    # a same-named policy in another mesh must survive
    assert a.put("/meshes/default/meshtrafficpermissions/mtp-1",
                 {"type": "MeshTrafficPermission", "mesh": "default", "name": "mtp-1", "spec": MTP_SPEC}).status == 201

    r = a.delete("/meshes/casc")
    assert r.status == 200 and r.json() == {}, r.describe()
    assert a.get("/meshes/casc").status == 404
    for path in ("/meshtrafficpermissions", "/meshtimeouts", "/secrets"):
        items = a.get(path).json()["items"]
        assert all(i["mesh"] != "casc" for i in items), (path, items)
    assert a.get("/meshes/default/meshtrafficpermissions/mtp-1").status == 200
    # re-creating the mesh does not bring anything back
    assert a.put("/meshes/casc", {"type": "Mesh", "name": "casc"}).status == 201
    for path in ("meshtrafficpermissions", "meshtimeouts", "secrets"):
        assert a.get(f"/meshes/casc/{path}").json()["total"] == 0, path


@pytest.fixture(scope="module")
def plain_cp():
    """A CP without test hooks (so no reset, and the mesh manager behaves as
    in production), shared by the tests of this module that need one."""
    from harness.process import KumaCP
    inst = KumaCP(name="plain", test_hooks=False).start()
    yield inst
    inst.stop(check=True)


def test_delete_mesh_with_dataplanes_is_refused(plain_cp):
    """Upstream mesh manager: ValidateNoActiveDP unless store.unsafeDelete
    (upstream's crud table test uses a plain manager, hence the hooks-free CP)."""
    api = plain_cp.api
    assert api.put("/meshes/dpm", {"type": "Mesh", "name": "dpm"}).status == 201
    assert api.put("/meshes/dpm/dataplanes/dp-1", dp_body("dp-1", mesh="dpm")).status == 201
    r = api.delete("/meshes/dpm")
    err = assert_std_error(r, 400)
    assert {"field": "mesh", "reason": "unable to delete mesh, there are still some dataplanes attached"} \
        in (err.get("invalid_parameters") or []), r.describe()
    assert api.get("/meshes/dpm").status == 200
    assert api.delete("/meshes/dpm/dataplanes/dp-1").status == 200
    assert api.delete("/meshes/dpm").status == 200


def test_delete_mesh_cascades_dataplanes_with_unsafe_delete(cp_factory):
    cp = cp_factory(name="unsafe-delete", env={"KUMA_STORE_UNSAFE_DELETE": "true"}, test_hooks=False)
    a = cp.api
    assert a.put("/meshes/dpm", {"type": "Mesh", "name": "dpm"}).status == 201
    for i in range(3):
        assert a.put(f"/meshes/dpm/dataplanes/dp-{i}",
                     dp_body(f"dp-{i}", mesh="dpm", address=f"10.0.0.{i + 1}")).status == 201
    r = a.delete("/meshes/dpm")
    assert r.status == 200, r.describe()
    assert all(i["mesh"] != "dpm" for i in a.get("/dataplanes").json()["items"])
    assert a.put("/meshes/dpm", {"type": "Mesh", "name": "dpm"}).status == 201
    assert a.get("/meshes/dpm/dataplanes").json()["total"] == 0
    assert a.delete("/meshes/dpm").status == 200


# ----- admin-only resources and non-loopback callers ----------------------------------------

def _golden(name):
    p = paths.api_testdata() / name
    return p.read_text() if p.exists() else None


@pytest.mark.parametrize("headers", [
    pytest.param({"X-Forwarded-For": "203.0.113.7"}, id="x-forwarded-for"),
    pytest.param({"X-Real-IP": "203.0.113.7"}, id="x-real-ip"),
    pytest.param({"Forwarded": "for=203.0.113.7"}, id="forwarded"),
    pytest.param({"Host": "example.com"}, id="non-loopback-host"),
    pytest.param({"Origin": "http://evil.example.com"}, id="foreign-origin"),
    pytest.param({"Sec-Fetch-Site": "cross-site"}, id="sec-fetch-cross-site"),
])
def test_non_loopback_callers_are_anonymous(api, headers):
    r = api.get("/who-am-i", headers=headers)
    assert r.status == 200, r.describe()
    assert r.json() == {"name": "mesh-system:anonymous", "groups": ["mesh-system:unauthenticated"]}, r.describe()


def test_loopback_equivalents_stay_admin(api):
    port = api.port
    for headers in ({"Host": f"localhost:{port}"}, {"Origin": f"http://127.0.0.1:{port}"},
                    {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}):
        r = api.get("/who-am-i", headers=headers)
        assert r.status == 200 and r.json()["name"] == "mesh-system:admin", (headers, r.describe())


def test_secrets_need_admin(api):
    assert api.put("/meshes/default/secrets/sec-1",
                   {"type": "Secret", "mesh": "default", "name": "sec-1", "data": "dGVzdA=="}).status == 201
    assert api.put("/global-secrets/gs-1", {"type": "GlobalSecret", "name": "gs-1", "data": "dGVzdA=="}).status == 201
    anon = api.as_anonymous()

    r = anon.get("/meshes/default/secrets/sec-1")
    assert_std_error(r, 403, title="Access Denied")
    golden = _golden("auth-admin-non-localhost.golden.json")
    if golden:
        ok, msg = compare_json_text(golden, r.text)
        assert ok, msg
    assert_std_error(anon.get("/meshes/default/secrets"), 403)
    assert_std_error(anon.get("/secrets"), 403)
    r = anon.get("/global-secrets/gs-1")
    err = assert_std_error(r, 403, title="Access Denied")
    assert "GlobalSecret" in err["detail"], r.describe()
    assert_std_error(anon.get("/global-secrets"), 403)
    assert_std_error(anon.put("/meshes/default/secrets/sec-2",
                              {"type": "Secret", "mesh": "default", "name": "sec-2", "data": "dGVzdA=="}), 403)
    assert_std_error(anon.delete("/meshes/default/secrets/sec-1"), 403)
    assert api.get("/meshes/default/secrets/sec-2").status == 404
    assert api.get("/meshes/default/secrets/sec-1").json()["data"] == "dGVzdA=="

    # /config: upstream's default access.static.controlPlaneMetadata lets every
    # user (authenticated or not) read it
    assert anon.get("/config").status == 200
    # ordinary resources stay readable
    assert anon.get("/meshes").status == 200
    assert anon.get("/meshes/default").status == 200


def test_config_restricted_to_admins(cp_factory):
    """With controlPlaneMetadata limited to admins, an anonymous caller gets
    upstream's 403 (golden auth-config-non-localhost)."""
    cp = cp_factory(name="cfg-admin-only",
                    env={"KUMA_ACCESS_STATIC_CONTROL_PLANE_METADATA_GROUPS": "mesh-system:admin"})
    r = cp.api.as_anonymous().get("/config")
    assert_std_error(r, 403)
    golden = _golden("auth-config-non-localhost.golden.json")
    if golden:
        ok, msg = compare_json_text(golden, r.text)
        assert ok, msg
    assert cp.api.get("/config").status == 200


# ----- user tokens ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def token_cp():
    """A CP without test hooks: its admin-user-token survives (no resets)."""
    from harness.process import KumaCP
    inst = KumaCP(name="tokens", test_hooks=False).start()
    yield inst
    inst.stop(check=True)


def _admin_token(cp) -> str:
    def fetch():
        r = cp.api.get("/global-secrets/admin-user-token")
        return r if r.status == 200 else None
    r = wait_for(fetch, timeout=20, what="global secret admin-user-token")
    body = r.json()
    assert body["type"] == "GlobalSecret" and body["name"] == "admin-user-token", r.describe()
    token = base64.b64decode(body["data"]).decode()
    assert token.count(".") == 2, f"not a JWT: {token[:40]}"
    return token


def _jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_admin_token(token_cp):
    token = _admin_token(token_cp)
    claims = _jwt_claims(token)
    assert claims.get("Name") == "mesh-system:admin" and claims.get("Groups") == ["mesh-system:admin"], claims
    hdr = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert hdr.get("alg") == "RS256", hdr
    admin = token_cp.api.with_token(token, anonymous=True)
    r = admin.get("/who-am-i")
    assert r.status == 200, r.describe()
    assert r.json() == {"name": "mesh-system:admin",
                        "groups": ["mesh-system:admin", "mesh-system:authenticated"]}, r.describe()
    assert admin.get("/global-secrets").status == 200


def test_user_token_flow(token_cp):
    admin = token_cp.api.with_token(_admin_token(token_cp), anonymous=True)
    r = admin.post("/tokens/user", {"name": "john.doe@example.com", "groups": ["users"], "validFor": "24h"})
    assert r.status == 200, r.describe()
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers
    user_token = r.text.strip()
    assert user_token.count(".") == 2, user_token[:60]
    claims = _jwt_claims(user_token)
    assert claims.get("Name") == "john.doe@example.com" and claims.get("Groups") == ["users"], claims
    assert 0 < claims["exp"] - claims["iat"] <= 24 * 3600 + 60, claims

    john = token_cp.api.with_token(user_token, anonymous=True)
    r = john.get("/who-am-i")
    assert r.status == 200, r.describe()
    assert r.json() == {"name": "john.doe@example.com", "groups": ["users", "mesh-system:authenticated"]}
    assert john.get("/meshes").status == 200
    assert_std_error(john.get("/global-secrets"), 403, title="Access Denied")
    assert_std_error(john.post("/tokens/user", {"name": "x", "groups": [], "validFor": "1h"}), 403)

    tampered = user_token[:-2] + ("AA" if user_token[-2:] != "AA" else "BB")
    assert_std_error(token_cp.api.with_token(tampered, anonymous=True).get("/meshes"), 401)


@pytest.mark.parametrize("body,field", [
    ({"groups": ["users"], "validFor": "24h"}, "name"),
    ({"name": "x", "groups": []}, "validFor"),
    ({"name": "x", "validFor": "soon"}, "validFor"),
    ({"name": "x", "validFor": "0s"}, "validFor"),
])
def test_user_token_request_validation(token_cp, body, field):
    admin = token_cp.api.with_token(_admin_token(token_cp), anonymous=True)
    r = admin.post("/tokens/user", body)
    err = assert_std_error(r, 400)
    assert field in [p["field"] for p in err.get("invalid_parameters") or []], r.describe()


def test_user_token_needs_admin(token_cp):
    assert_std_error(token_cp.api.as_anonymous().post("/tokens/user",
                                                      {"name": "x", "groups": [], "validFor": "1h"}), 403)


def test_generator_not_held_back_by_a_pending_grace_period():
    """A generated MeshService whose last Dataplane left waits out its
    deletion grace period (1h by default); meanwhile the generator still
    answers every other write at once. Its wake-up for the grace period used
    to be the pass timer itself, so nothing was generated for the hour."""
    from harness.process import KumaCP
    cp = KumaCP(name="grace").start()
    try:
        def service(name):
            r = cp.api.get(f"/meshes/default/meshservices/{name}")
            return r.json() if r.status == 200 else None

        r = cp.api.put("/meshes/default/dataplanes/gone-1", dp_body("gone-1", labels={"kuma.io/workload": "gone"}))
        assert r.status == 201, r.describe()
        wait_for(lambda: service("gone"), 10, what="MeshService gone generated")
        assert cp.api.delete("/meshes/default/dataplanes/gone-1").status == 200
        wait_for(lambda: "kuma.io/deletion-grace-period-started-at" in (service("gone") or {}).get("labels", {}), 10,
                 what="MeshService gone in its grace period")
        r = cp.api.put("/meshes/default/dataplanes/next-1",
                       dp_body("next-1", address="10.0.0.2", labels={"kuma.io/workload": "next"}))
        assert r.status == 201, r.describe()
        ms = wait_for(lambda: service("next"), 10, what="MeshService next generated during gone's grace period")
        assert ms["spec"]["ports"][0]["port"] == 8080, ms
        assert service("gone") is not None  # still in its grace period
        # the passes and their writes are counted (GET :5680/metrics)
        from harness.mesh import cp_metrics
        m = wait_for(lambda: (x := cp_metrics(cp)) and x["meshservice_generator_writes_total"] >= 5 and x, 10,
                     what="generator metrics")
        # gone and next: a MeshService and a Workload each, and gone's grace label
        assert m["meshservice_generator_passes_total"] >= 3, m
        assert m["meshservice_generator_pass_seconds_total"] > 0, m
        # upstream's histogram of the same passes, in milliseconds
        assert m["component_meshservice_generator_count"] == m["meshservice_generator_passes_total"], m
        assert abs(m["component_meshservice_generator_sum"] -
                   1000 * m["meshservice_generator_pass_seconds_total"]) < 1, m
        assert m["mesh_insight_resyncs_total"] >= 1, m
        assert "mesh_insight_resync_seconds_total" in m, m
        # upstream's resyncer histograms: every recount after an event, the
        # MeshInsight written (changed) at least once
        recounts = sum(v for k, v in m.items() if k.startswith("insights_resyncer_event_time_processing_count{"))
        assert m["insights_resyncer_event_time_to_process_count"] == recounts >= m["mesh_insight_resyncs_total"], m
        assert m['insights_resyncer_event_time_processing_count{reason="force",result="changed"}'] >= 1, m
        assert m["insights_resyncer_processor_idle_time_count"] == m["mesh_insight_resyncs_total"] - 1, m
    finally:
        cp.stop()


# ----- HTTPS (apiServer.https, port 5682) ------------------------------------------

def _https_get(port: int, path: str, ca: str, *, max_version=None, cert=None):
    """GET over TLS: (status, body) or the SSLError of the handshake."""
    import http.client
    import ssl
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    if max_version:
        ctx.maximum_version = max_version
    if cert:
        ctx.load_cert_chain(*cert)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    except ssl.SSLError as e:
        return e
    finally:
        conn.close()


def test_https_api(cp_factory, tmp_path):
    """The API on apiServer.https with the generated certificate (as
    upstream autoconfigures it), kumactl over https with --ca-cert-file, the
    TLS versions, client certificates, and an unsupported setting refused."""
    import os
    import ssl
    import subprocess
    from harness.mesh import cp_ca_file
    from harness.process import CPError
    cp = cp_factory(name="https", test_hooks=False)
    ca, port = cp_ca_file(cp), cp.ports["api_https"]
    status, body = _https_get(port, "/", ca)
    assert status == 200 and json.loads(body)["product"] == "Kuma", body
    # kumactl over https: loopback is admin there too
    kumactl = paths.build_dir() / "kumactl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA")}
    env["HOME"] = str(tmp_path)
    subprocess.run([str(kumactl), "config", "control-planes", "add", "--name", "s", "--address",
                    f"https://127.0.0.1:{port}", "--ca-cert-file", ca, "--overwrite"],
                   env=env, check=True, capture_output=True, timeout=30)
    p = subprocess.run([str(kumactl), "get", "meshes"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "default" in p.stdout, p.stdout + p.stderr

    only13 = cp_factory(name="https13", test_hooks=False, env={"KUMA_API_SERVER_HTTPS_TLS_MIN_VERSION": "TLSv1_3"})
    ca13, port13 = cp_ca_file(only13), only13.ports["api_https"]
    assert _https_get(port13, "/", ca13)[0] == 200
    assert isinstance(_https_get(port13, "/", ca13, max_version=ssl.TLSVersion.TLSv1_2), ssl.SSLError)

    # client certificates: a CA of the test's, one client signed by it
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path, timeout=30)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=clients", "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=me",
            "-keyout", "me.key", "-out", "me.csr")
    openssl("x509", "-req", "-in", "me.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-out", "me.crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=stranger", "-keyout", "other.key", "-out", "other.crt")
    strict = cp_factory(name="httpsmtls", test_hooks=False, env={
        "KUMA_API_SERVER_HTTPS_REQUIRE_CLIENT_CERT": "true",
        "KUMA_API_SERVER_HTTPS_TLS_CA_FILE": str(tmp_path / "ca.crt")})
    cas, ports = cp_ca_file(strict), strict.ports["api_https"]
    status, body = _https_get(ports, "/meshes", cas)
    assert status == 401 and "client certificate" in body, body
    status, body = _https_get(ports, "/meshes", cas, cert=(str(tmp_path / "other.crt"), str(tmp_path / "other.key")))
    assert status == 401, body
    status, body = _https_get(ports, "/meshes", cas, cert=(str(tmp_path / "me.crt"), str(tmp_path / "me.key")))
    assert status == 200 and "default" in body, body

    with pytest.raises(CPError, match="apiServer.https.tlsCipherSuites is not supported"):
        cp_factory(name="httpsciph", test_hooks=False,
                   env={"KUMA_API_SERVER_HTTPS_TLS_CIPHER_SUITES": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"})


def test_cors(cp_factory):
    """apiServer.corsAllowedDomains as upstream's go-restful filter: an
    allowed Origin (exact, case-insensitive, or ".*") gets
    Access-Control-Allow-Origin on every answer; a preflight is answered
    200 with the path's methods when it asks for a method the path has and
    no request headers; other origins and servers without the setting get
    no CORS headers."""
    from harness.http import request
    cp = cp_factory(name="cors", test_hooks=False, env={
        "KUMA_API_SERVER_CORS_ALLOWED_DOMAINS": "https://GUI.example.com,http://other.test"})
    port = cp.ports["api_http"]
    r = request("127.0.0.1", port, "GET", "/meshes", headers={"Origin": "https://gui.example.com"})
    assert r.status == 200
    assert r.headers.get("access-control-allow-origin") == "https://gui.example.com"
    assert r.headers.get("access-control-expose-headers") == "Access-Control-Allow-Origin"
    r = request("127.0.0.1", port, "GET", "/meshes", headers={"Origin": "https://evil.example.com"})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    pre = {"Origin": "http://other.test", "Access-Control-Request-Method": "PUT"}
    r = request("127.0.0.1", port, "OPTIONS", "/meshes/default/meshtimeouts/t1", headers=pre)
    assert r.status == 200 and r.body == b"", r.describe()
    assert r.headers.get("access-control-allow-methods") == "GET,PUT,DELETE"
    assert r.headers.get("access-control-allow-origin") == "http://other.test"
    # a method the path does not have, or request headers (none allowed): no grant
    r = request("127.0.0.1", port, "OPTIONS", "/meshes", headers=pre)
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    r = request("127.0.0.1", port, "OPTIONS", "/meshes/default/meshtimeouts/t1",
                headers={**pre, "Access-Control-Request-Headers": "content-type"})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    # the request itself goes on as usual, headers added
    r = request("127.0.0.1", port, "GET", "/meshes/nope", headers={"Origin": "http://other.test"})
    assert r.status == 404 and r.headers.get("access-control-allow-origin") == "http://other.test"

    plain = cp_factory(name="no-cors", test_hooks=False)
    r = request("127.0.0.1", plain.ports["api_http"], "GET", "/meshes", headers={"Origin": "http://other.test"})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    anyone = cp_factory(name="cors-any", test_hooks=False, env={"KUMA_API_SERVER_CORS_ALLOWED_DOMAINS": ".*"})
    r = request("127.0.0.1", anyone.ports["api_http"], "GET", "/", headers={"Origin": "http://x.y"})
    assert r.headers.get("access-control-allow-origin") == "http://x.y"


def test_api_server_metrics(cp):
    """The REST API's requests as upstream's go-http-metrics families count
    them: handler is the route's template (variables by name), method and
    code as answered, duration and size histograms, nothing in flight."""
    from harness.mesh import cp_metrics
    assert cp.api.get("/meshes").status == 200
    assert cp.api.get("/meshes/default").status == 200
    assert cp.api.get("/meshes/default/dataplanes/no-such-dp").status == 404
    assert cp.api.get("/meshes/default/meshtimeouts?size=1").status == 200
    assert cp.api.get("/no-such-route-xyz").status == 404  # no route: not counted, as upstream
    m = cp_metrics(cp)

    def count(handler, method, code):
        return m.get(f'api_server_http_request_duration_seconds_count{{code="{code}",handler="{handler}",'
                     f'method="{method}",service=""}}', 0)
    assert count("/meshes", "GET", 200) >= 1, m
    assert count("/meshes/{name}", "GET", 200) >= 1, m
    assert count("/meshes/{mesh}/dataplanes/{name}", "GET", 404) >= 1, m
    assert count("/meshes/{mesh}/meshtimeouts", "GET", 200) >= 1, m
    assert not [k for k in m if "no-such-dp" in k or "size=1" in k or "no-such-route" in k], \
        "a variable or an unrouted path in a label"
    size = 'code="200",handler="/meshes",method="GET",service=""'
    assert m[f"api_server_http_response_size_bytes_sum{{{size}}}"] > 0, m
    assert m['api_server_http_requests_inflight{handler="/meshes",service=""}'] == 0, m


def test_process_metrics(cp):
    """GET :5680/metrics carries the process metrics Prometheus clients
    export by default, with values that agree with /proc."""
    import os
    import time
    from harness.mesh import cp_metrics
    m = cp_metrics(cp)
    pid = cp.proc.pid
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(x.split()[1]) * 1024 for x in f if x.startswith("VmRSS:"))
    assert abs(m["process_resident_memory_bytes"] - rss) < max(rss * 0.5, 64 << 20), (m, rss)
    assert m["process_virtual_memory_bytes"] >= m["process_resident_memory_bytes"]
    assert 0 < m["process_open_fds"] <= len(os.listdir(f"/proc/{pid}/fd")) + 2
    assert m["process_max_fds"] >= m["process_open_fds"]
    assert m["process_cpu_seconds_total"] > 0
    assert time.time() - 24 * 3600 < m["process_start_time_seconds"] <= time.time() + 1
