# SPDX-License-Identifier: Apache-2.0
"""Policy engine replays, black box through the REST API:

- family E: upstream pkg/core/xds/inspect config_test.go (the proxy-config
  inspector with and without shadow policies, and the diff), transcribed in
  _extracted/pkg/core/xds/inspect/config.cases.yaml, against a CP of zone
  "zone-1" through GET .../_config;
- family H: pkg/plugins/policies/core/rules/outbound/testdata/resourcerules
  (variant zone-uni: every non-Mesh resource labelled kuma.io/origin: zone,
  kuma.io/zone: zone-uni and its display name, CP zone "zone-uni") and
  rules/inbound/testdata/inboundrules (policies named matched-for-rules-*),
  mapped from GET .../dataplanes/{dp}/_rules: toResourceRules keyed by KRI
  and inboundRules compared on conf, match and origin (name, rule index).
"""

import json

import pytest
import yaml

from harness import paths
from harness.api import resource_types
from harness.process import KumaCP

ROOT = paths.conformance_root()
RULES = ROOT / "pkg" / "plugins" / "policies" / "core" / "rules"
INSPECT_CASES = paths.extracted("pkg", "core", "xds", "inspect", "config.cases.yaml")
INSPECT_GOLDEN = ROOT / "pkg" / "core" / "xds" / "inspect" / "testdata"

if not ROOT.is_dir():
    pytest.skip(f"conformance data not found at {ROOT}", allow_module_level=True)

# KRI short names of the types the goldens use.
SHORT = {"Mesh": "m", "MeshService": "msvc", "MeshExternalService": "extsvc",
         "MeshMultiZoneService": "mzsvc", "MeshHTTPRoute": "mhttpr"}

# id -> reason; xfail(strict=True).
KNOWN_DIFFERENCES: dict[str, str] = {
}


def _mark(case_id):
    if case_id in KNOWN_DIFFERENCES:
        return [pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[case_id])]
    return []


def _cp(name, zone):
    inst = KumaCP(name=name, zone=zone, test_hooks=True).start()
    return inst


@pytest.fixture(scope="module")
def zone1_cp():
    inst = _cp("policy-e", "zone-1")
    yield inst
    inst.stop(check=True)


@pytest.fixture(scope="module")
def zone_uni_cp():
    inst = _cp("policy-h", "zone-uni")
    yield inst
    inst.stop(check=True)


def _get(cp, path):
    r = cp.api.request("GET", path, None, headers={})
    assert r.status == 200, f"GET {path}: {r.status} {r.text[:2000]}"
    return json.loads(r.text)


def _seed(cp, docs):
    cp.reset()
    cp.seed(yaml.safe_dump_all(docs, sort_keys=False))


# ----- family E ---------------------------------------------------------------

def _inspect_cases():
    data = yaml.safe_load(INSPECT_CASES.read_text())
    return data, [pytest.param(c, id="inspect:" + c["name"], marks=_mark("inspect:" + c["name"]))
                  for c in data["cases"]]


_INSPECT, _INSPECT_PARAMS = _inspect_cases() if INSPECT_CASES.exists() else ({}, [])


def _invert(ops):
    """upstream's unit test diffs shadow -> current; the REST handler diffs
    current -> shadow: swap the old (test/remove) and new (add) values."""
    by_path = {}
    for op in ops:
        slot = by_path.setdefault(op["path"], {})
        slot["old" if op["op"] in ("test", "remove") else "new"] = op.get("value")
    out = []
    for path, v in by_path.items():
        if "new" in v:
            out.append({"op": "test", "path": path, "value": v["new"]})
            out.append({"op": "remove", "path": path, "value": v["new"]})
        if "old" in v:
            out.append({"op": "add", "path": path, "value": v["old"]})
    return out


@pytest.mark.family("E")
@pytest.mark.parametrize("case", _INSPECT_PARAMS)
def test_proxy_config_inspector(zone1_cp, case):
    docs = [dict(d) for d in _INSPECT["seed"]]
    for d in docs:
        if d["type"] == "MeshTimeout" and case["name"] == "no-shadow-policies":
            d.pop("labels", None)
    docs.append({"type": "DataplaneInsight", "mesh": "mesh-1", "name": "test-dpp"})
    _seed(zone1_cp, docs)
    q = f"?shadow={'true' if case.get('shadow') else 'false'}"
    if case.get("include"):
        q += "&include=" + case["include"]
    got = _get(zone1_cp, "/meshes/mesh-1/dataplanes/test-dpp/_config" + q)
    golden = json.loads((INSPECT_GOLDEN / case["golden"]).read_text())
    if case.get("include") == "diff":
        assert got["diff"] == _invert(golden)
    else:
        assert got["xds"] == golden


# ----- family H: outbound resource rules ------------------------------------

def _zone_uni(docs):
    out = []
    for d in docs:
        d = dict(d)
        if d.get("type") != "Mesh":
            labels = {"kuma.io/origin": "zone", "kuma.io/zone": "zone-uni", "kuma.io/display-name": d["name"]}
            labels.update(d.get("labels") or {})  # the document's own labels win (maps.Copy)
            d["labels"] = labels
        out.append(d)
    return out


def _kri(meta, section):
    labels = meta.get("labels") or {}
    mesh = "" if meta["type"] == "Mesh" else meta["mesh"]
    name = labels.get("kuma.io/display-name", meta["name"])
    return (f"kri_{SHORT[meta['type']]}_{mesh}_{labels.get('kuma.io/zone', '')}_"
            f"{labels.get('k8s.kuma.io/namespace', '')}_{name}_{section}")


def _dataplane(mesh):
    return {"type": "Dataplane", "mesh": mesh, "name": "dp-rules",
            "networking": {"address": "127.0.0.1", "inbound": [{"port": 8080}]}}


def _resourcerule_cases():
    folder = RULES / "outbound" / "testdata" / "resourcerules"
    out = []
    for inp in sorted(folder.glob("*.input.yaml")):
        name = inp.name[: -len(".input.yaml")]
        golden = folder / name / "zone-uni.golden.yaml"
        if golden.exists():
            cid = "resourcerules:" + name
            out.append(pytest.param(inp, golden, id=cid, marks=_mark(cid)))
    return out


def _type_entry(rules, rtype):
    for r in rules["rules"]:
        if r["type"] == rtype:
            return r
    return None


@pytest.mark.family("H")
@pytest.mark.parametrize("inp,golden", _resourcerule_cases())
def test_resource_rules(zone_uni_cp, inp, golden):
    docs = [d for d in yaml.safe_load_all(inp.read_text()) if d]
    policy = next(d for d in docs if d["name"].startswith("matched-for-rules"))
    policy_type, mesh = policy["type"], policy["mesh"]
    if not any(d["type"] == "Mesh" for d in docs):
        docs.insert(0, {"type": "Mesh", "name": mesh})
    _seed(zone_uni_cp, _zone_uni(docs) + [_dataplane(mesh)])
    rules = _get(zone_uni_cp, f"/meshes/{mesh}/dataplanes/dp-rules/_rules")
    entry = _type_entry(rules, policy_type) or {"toResourceRules": []}
    got = {}
    for rr in entry["toResourceRules"]:
        got[_kri(rr["resourceMeta"], rr["resourceSectionName"])] = {
            "Conf": rr["conf"],
            "Origin": [(o["resourceMeta"]["name"], o["ruleIndex"]) for o in rr["origin"]],
        }
    want = {}
    for k, v in (yaml.safe_load(golden.read_text()) or {}).items():
        want[k] = {"Conf": v["Conf"],
                   "Origin": [(o["Resource"].get("Name") or o["Resource"].get("name"), o["RuleIndex"])
                              for o in v["Origin"]]}
    assert got == want


# ----- family H: inbound rules ----------------------------------------------

def _inboundrule_cases():
    folder = RULES / "inbound" / "testdata" / "inboundrules"
    out = []
    for inp in sorted(folder.glob("*.input.yaml")):
        name = inp.name[: -len(".input.yaml")]
        cid = "inboundrules:" + name
        out.append(pytest.param(inp, folder / f"{name}.golden.yaml", id=cid, marks=_mark(cid)))
    return out


@pytest.mark.family("H")
@pytest.mark.parametrize("inp,golden", _inboundrule_cases())
def test_inbound_rules(zone_uni_cp, inp, golden):
    docs = [d for d in yaml.safe_load_all(inp.read_text()) if d]
    policies = [d for d in docs if d["name"].startswith("matched-for-rules")]
    mesh = policies[0]["mesh"]
    policy_type = policies[0]["type"]
    _seed(zone_uni_cp, [{"type": "Mesh", "name": mesh}] + policies + [_dataplane(mesh)])
    rules = _get(zone_uni_cp, f"/meshes/{mesh}/dataplanes/dp-rules/_rules")
    entry = _type_entry(rules, policy_type) or {"inboundRules": []}
    got = []
    for ib in entry["inboundRules"]:
        for r in ib["rules"]:
            got.append({"conf": r["conf"][0], "match": r.get("match"),
                        "origin": (r["origin"][0]["resourceMeta"]["name"], r["origin"][0]["ruleIndex"])})
    want = [{"conf": r["conf"], "match": r.get("match"),
             "origin": (r["origin"]["Resource"]["name"], r["origin"]["RuleIndex"])}
            for r in (yaml.safe_load(golden.read_text()) or {}).get("rules") or []]
    assert got == want


# ----- family H: outbound to-entry sort order --------------------------------

SORT_BACKEND = {"type": "MeshService", "name": "backend", "mesh": "mesh-1",
                "labels": {"kuma.io/display-name": "backend"},
                "spec": {"ports": [{"port": 80, "targetPort": 80, "appProtocol": "http", "name": "http-port"}]}}


def _sort_cases():
    folder = RULES / "outbound" / "testdata" / "sort"
    out = []
    for inp in sorted(folder.glob("*.input.yaml")):
        name = inp.name[: -len(".input.yaml")]
        cid = "sort:" + name
        out.append(pytest.param(inp, folder / f"{name}.golden.yaml", id=cid, marks=_mark(cid)))
    return out


KNOWN_DIFFERENCES["sort:by-role"] = ("the input holds two policies with the same name (differing in role "
                                     "only), which one store cannot hold")


@pytest.mark.family("H")
@pytest.mark.parametrize("inp,golden", _sort_cases())
def test_to_entry_sort(zone_uni_cp, inp, golden):
    """The sorted to[] entries are observable as the origin order of the
    most specific destination rule (every entry is relevant to it)."""
    docs = [d for d in yaml.safe_load_all(inp.read_text()) if d]
    dp = dict(_dataplane("mesh-1"), labels={"app": "backend-dp"})  # by-top-level selects it by label
    _seed(zone_uni_cp, [{"type": "Mesh", "name": "mesh-1"}, SORT_BACKEND, dp] + docs)
    rules = _get(zone_uni_cp, "/meshes/mesh-1/dataplanes/dp-rules/_rules")
    entry = _type_entry(rules, docs[0]["type"]) or {"toResourceRules": []}
    want = [(e["Meta"]["name"], e["RuleIndex"]) for e in yaml.safe_load(golden.read_text())]
    got = max(([(o["resourceMeta"]["name"], o["ruleIndex"]) for o in rr["origin"]]
               for rr in entry["toResourceRules"]), key=len, default=[])
    assert got == want


# ----- family H: proxy-wide confs of single-item policies (rules/single) -----

def _single_cases():
    folder = RULES / "testdata" / "rules" / "single"
    out = []
    for inp in sorted(folder.glob("*.input.yaml")):
        name = inp.name[: -len(".input.yaml")]
        cid = "single:" + name
        out.append(pytest.param(inp, folder / f"{name}.golden.yaml", id=cid, marks=_mark(cid)))
    return out


@pytest.mark.family("H")
@pytest.mark.parametrize("inp,golden", _single_cases())
def test_proxy_conf(zone_uni_cp, inp, golden):
    docs = [d for d in yaml.safe_load_all(inp.read_text()) if d]
    mesh = docs[0]["mesh"]
    dp = dict(_dataplane(mesh), labels={"app": "backend"})  # upstream merges every policy given
    _seed(zone_uni_cp, [{"type": "Mesh", "name": mesh}, dp] + docs)
    rules = _get(zone_uni_cp, f"/meshes/{mesh}/dataplanes/dp-rules/_rules")
    entry = _type_entry(rules, docs[0]["type"]) or {}
    g = yaml.safe_load(golden.read_text())
    proxy = entry.get("proxyRule") or {}
    assert proxy.get("conf") == g["Conf"]
    assert [o["name"] for o in proxy.get("origin") or []] == [o["name"] for o in g["Origin"]]


# ----- family H: matchers fromrules (inbound rules keyed address:port) -------

MATCHERS = ROOT / "pkg" / "plugins" / "policies" / "core" / "matchers" / "testdata" / "matchedpolicies"


def _fromrules_cases():
    folder = MATCHERS / "fromrules"
    out = []
    for g in sorted(folder.glob("*.golden.yaml")):
        name = g.name[: -len(".golden.yaml")]
        cid = "fromrules:" + name
        out.append(pytest.param(folder / name, g, id=cid, marks=_mark(cid)))
    return out


@pytest.mark.family("H")
@pytest.mark.parametrize("base,golden", _fromrules_cases())
def test_from_rules(zone_uni_cp, base, golden):
    dp = yaml.safe_load(base.with_name(base.name + ".dataplane.yaml").read_text())
    policies = [d for d in yaml.safe_load_all(base.with_name(base.name + ".policies.yaml").read_text()) if d]
    mesh = dp["mesh"]
    _seed(zone_uni_cp, [{"type": "Mesh", "name": mesh}, dp] + policies)
    rules = _get(zone_uni_cp, f"/meshes/{mesh}/dataplanes/{dp['name']}/_rules")
    entry = _type_entry(rules, policies[0]["type"]) or {"inboundRules": []}
    address = dp["networking"]["address"]
    got = {}
    for ib in entry["inboundRules"]:
        got[f"{address}:{ib['inbound']['port']}"] = [
            {"conf": r["conf"][0], "match": r.get("match"),
             "origin": (r["origin"][0]["resourceMeta"]["name"], r["origin"][0]["ruleIndex"])}
            for r in ib["rules"]]
    want = {}
    for key, rs in ((yaml.safe_load(golden.read_text()) or {}).get("InboundRules") or {}).items():
        want[key] = [{"conf": r["conf"], "match": r.get("match"),
                      "origin": (r["origin"]["Resource"]["name"], r["origin"]["RuleIndex"])} for r in rs]
    assert got == want


def test_known_differences_refer_to_existing_cases():
    ids = {p.id for p in _resourcerule_cases() + _inboundrule_cases() + _INSPECT_PARAMS + _envoyconfig_cases() +
           _fromrules_cases() + _sort_cases() + _single_cases()}
    stale = set(KNOWN_DIFFERENCES) - ids
    assert not stale, f"KNOWN_DIFFERENCES lists ids that are not cases: {sorted(stale)}"


# ----- family D (diff only): envoyconfig sidecars for the policies with plugins

ENVOYCONFIG = ROOT / "test" / "e2e_env" / "universal" / "envoyconfig" / "testdata" / "sidecars"
D_POLICIES = ["meshtimeout", "meshretry", "meshcircuitbreaker", "meshtls", "meshtrafficpermission", "meshloadbalancingstrategy", "meshaccesslog", "meshfaultinjection", "meshratelimit", "meshmetric"]

# The sidecars setup (_extracted/.../envoyconfig/setup/sidecars.setup.yaml)
# raw-seeded: the Dataplanes kuma-dp would register (with the labels the
# zone CP stamps on them: MeshMetric's extraLabels read kuma.io/zone), the MeshServices the CP
# would generate, explicit outbounds standing in for transparent-proxy VIP
# outbounds, and DataplaneInsights with the metadata of the setup's kuma-dp
# that generation reads (KUMA_DATAPLANE_RUNTIME_WORK_DIR=/tmp, SO_REUSEPORT).
D_SETUP = """
type: Mesh
name: envoyconfig
---
type: MeshIdentity
name: envoyconfig-identity
mesh: envoyconfig
labels: {kuma.io/zone: kuma-3, kuma.io/origin: zone, kuma.io/env: universal, kuma.io/mesh: envoyconfig,
         kuma.io/display-name: envoyconfig-identity}
spec:
  selector: {dataplane: {matchLabels: {}}}
  spiffeID: {trustDomain: "{{ .Mesh }}.{{ .Zone }}.mesh.local"}
  provider:
    type: Bundled
    bundled:
      meshTrustCreation: Enabled
      insecureAllowSelfSigned: true
      certificateParameters: {expiry: 24h}
      autogenerate: {enabled: true}
---
type: MeshTrafficPermission
name: allow-all-envoyconfig-0
mesh: envoyconfig
labels: {kuma.io/zone: kuma-3, kuma.io/origin: zone, kuma.io/env: universal, kuma.io/mesh: envoyconfig,
         kuma.io/display-name: allow-all-envoyconfig-0}
spec:
  targetRef: {kind: Mesh}
  rules:
  - default:
      allow: [{spiffeID: {type: Prefix, value: "spiffe://envoyconfig.kuma-3.mesh.local"}}]
---
type: MeshService
name: demo-client
mesh: envoyconfig
labels: {kuma.io/display-name: demo-client, kuma.io/zone: kuma-3, kuma.io/origin: zone, kuma.io/env: universal,
         kuma.io/mesh: envoyconfig}
spec:
  selector: {dataplaneLabels: {matchLabels: {kuma.io/workload: demo-client}}}
  ports: [{port: 3000, targetPort: 3000, appProtocol: tcp}]
---
type: MeshService
name: test-server
mesh: envoyconfig
labels: {kuma.io/display-name: test-server, kuma.io/zone: kuma-3, kuma.io/origin: zone, kuma.io/env: universal,
         kuma.io/mesh: envoyconfig}
spec:
  selector: {dataplaneLabels: {matchLabels: {kuma.io/workload: test-server}}}
  ports: [{port: 80, targetPort: 80, appProtocol: http}]
---
type: Dataplane
mesh: envoyconfig
name: demo-client
labels: {kuma.io/service: demo-client, kuma.io/workload: demo-client, team: client-owners,
         kuma.io/zone: kuma-3, kuma.io/origin: zone, kuma.io/env: universal, kuma.io/mesh: envoyconfig,
         kuma.io/display-name: demo-client}
networking:
  address: 172.17.0.2
  inbound: [{port: 3000}]
  outbound:
  - {address: 241.0.0.1, port: 3000, backendRef: {kind: MeshService, name: demo-client, port: 3000}}
  - {address: 241.0.0.2, port: 80, backendRef: {kind: MeshService, name: test-server, port: 80}}
  transparentProxying: {redirectPortInbound: 15006, redirectPortOutbound: 15001}
---
type: Dataplane
mesh: envoyconfig
name: test-server
labels: {instance: "1", kuma.io/service: test-server, kuma.io/workload: test-server, team: server-owners,
         version: v1, kuma.io/zone: kuma-3, kuma.io/origin: zone, kuma.io/env: universal,
         kuma.io/mesh: envoyconfig, kuma.io/display-name: test-server}
networking:
  address: 172.17.0.3
  inbound: [{port: 80, servicePort: 8080, protocol: http}]
  outbound:
  - {address: 241.0.0.1, port: 3000, backendRef: {kind: MeshService, name: demo-client, port: 3000}}
  - {address: 241.0.0.2, port: 80, backendRef: {kind: MeshService, name: test-server, port: 80}}
  transparentProxying: {redirectPortInbound: 15006, redirectPortOutbound: 15001}
---
type: DataplaneInsight
mesh: envoyconfig
name: demo-client
metadata: {workdir: /tmp, features: [feature-reuse-port]}
---
type: DataplaneInsight
mesh: envoyconfig
name: test-server
metadata: {workdir: /tmp, features: [feature-reuse-port]}
"""

D_KNOWN_DIFFERENCES: dict[str, str] = {
    "envoyconfig:meshtls/inbound-permissive.demo-client":
        "the transparent-proxy inbound passthrough listeners (self_transparentproxy_passthrough_inbound_*) "
        "are not generated",
    "envoyconfig:meshtls/inbound-permissive.test-server":
        "the transparent-proxy inbound passthrough listeners (self_transparentproxy_passthrough_inbound_*) "
        "are not generated",
    "envoyconfig:meshaccesslog/outbound-mix.demo-client":
        "a Mesh-wide access log goes on the transparent-proxy outbound passthrough listeners too "
        "(self_transparentproxy_passthrough_outbound_*), which are not generated; the rest of the diff applies",
    "envoyconfig:meshaccesslog/outbound-mix.test-server":
        "a Mesh-wide access log goes on the transparent-proxy outbound passthrough listeners too "
        "(self_transparentproxy_passthrough_outbound_*), which are not generated; the rest of the diff applies",
}
for _dp in ("demo-client", "test-server"):
    D_KNOWN_DIFFERENCES[f"envoyconfig:meshmetric/otel.{_dp}"] = (
        "OpenTelemetry backends: upstream's kuma-dp relays them (the /otel dynamic-config route and its "
        "pipe); ours has no OTel exporter, so a MeshOpenTelemetryBackend reference is left out as an "
        "unresolved one is (the /meshmetric route of the same case matches)")
# Policy types with no plugin yet (docs/compatibility.md): each case with a
# non-empty diff is a known difference.
D_NO_PLUGIN: list[str] = []
KNOWN_DIFFERENCES.update(D_KNOWN_DIFFERENCES)

_IP = r"(?:\d{1,3}\.){3}\d{1,3}"


def _normalize_diff(ops):
    """The e2e harness's normalisation (conformance guide, family D step 5)."""
    import re
    out = []
    for op in ops:
        p = op["path"]
        if op["op"] == "test" or p.endswith("maxDirectResponseBodySizeBytes") or \
                p.endswith("Listener/_kuma:dynamicconfig") or p.endswith("Listener/system_dynamicconfig"):
            continue
        v = json.loads(re.sub(_IP, "IP_REDACTED", json.dumps(op.get("value"))))
        out.append({"op": op["op"], "path": p, "value": v})

    def key(i_op):
        i, op = i_op
        index_path = re.search(r"/(\d+|-)$", op["path"]) is not None
        tie = i if (op["op"] == "add" and index_path) else json.dumps(op["value"], sort_keys=True)
        return (op["path"], 0 if op["op"] == "remove" else 1, str(tie) if not isinstance(tie, int) else "",
                tie if isinstance(tie, int) else 0)
    return [op for _, op in sorted(enumerate(out), key=key)]


_TYPE_PATHS = {name: path for name, path, _scope in resource_types()}


def _apply(cp, text):
    """The case's policies through the REST API, as upstream's e2e applies
    them with kumactl: the zone CP labels them (kuma.io/origin, kuma.io/zone),
    which their KRIs (and so route names) carry."""
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        plural = _TYPE_PATHS[doc["type"]]
        r = cp.api.request("PUT", f"/meshes/{doc['mesh']}/{plural}/{doc['name']}", json.dumps(doc),
                           headers={"Content-Type": "application/json"})
        assert r.status in (200, 201), f"PUT {doc['type']} {doc['name']}: {r.status} {r.text[:500]}"


def _wait_identity_ready(cp, timeout=15.0):
    import time
    deadline = time.monotonic() + timeout
    while True:
        r = cp.api.get("/meshes/envoyconfig/meshidentities/envoyconfig-identity")
        conds = (r.json().get("status") or {}).get("conditions") or [] if r.status == 200 else []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            return
        assert time.monotonic() < deadline, f"MeshIdentity not Ready: {r.status} {conds}"
        time.sleep(0.05)


def _envoyconfig_cases():
    out = []
    for pol in D_POLICIES:
        for inp in sorted((ENVOYCONFIG / pol).glob("*.input.yaml")):
            case = inp.name[: -len(".input.yaml")]
            for dp in ("demo-client", "test-server"):
                golden = inp.parent / f"{case}.{dp}.golden.json"
                if golden.exists():
                    cid = f"envoyconfig:{pol}/{case}.{dp}"
                    if pol in D_NO_PLUGIN and json.loads(golden.read_text())["diff"]:
                        KNOWN_DIFFERENCES[cid] = f"no {pol} plugin yet: the policy is stored and matched, " \
                                                 "not applied to Envoy"
                    out.append(pytest.param(inp, dp, golden, id=cid, marks=_mark(cid)))
    return out


@pytest.fixture(scope="module")
def kuma3_cp():
    inst = _cp("policy-d", "kuma-3")
    yield inst
    inst.stop(check=True)


def _redact(xds):
    """Our _config's "xds" normalised as upstream's getConfig normalises the
    goldens (conformance guide, family D steps 1, 3 and 4, and the zeroed
    maxDirectResponseBodySizeBytes of step 5)."""
    import re
    listeners = xds.get("type.googleapis.com/envoy.config.listener.v3.Listener", {})
    for name in ("_kuma:dynamicconfig", "system_dynamicconfig"):
        listeners.pop(name, None)
    text = json.dumps(xds)
    text = re.sub(r'"statPrefix": "[^"]*"', '"statPrefix": "STAT_PREFIX_REDACTED"', text)
    text = re.sub(r', "dnsLookupFamily": "[^"]*"', "", text)
    out = json.loads(re.sub(_IP, "IP_REDACTED", text))

    def zero(v):
        if isinstance(v, dict):
            for k in v:
                if k == "maxDirectResponseBodySizeBytes":
                    v[k] = 0
                else:
                    zero(v[k])
        elif isinstance(v, list):
            for x in v:
                zero(x)
    zero(out)
    return out


def _patch(doc, ops):
    """RFC 6902 add/remove of <ops> applied in order to <doc> (a copy);
    a remove must find the value it names, as jd's patches state it."""
    import copy
    doc = copy.deepcopy(doc)
    for op in ops:
        keys = [k.replace("~1", "/").replace("~0", "~") for k in op["path"].split("/")[1:]]
        parent = doc
        for k in keys[:-1]:
            parent = parent[int(k)] if isinstance(parent, list) else parent[k]
        last = keys[-1]
        if op["op"] == "remove":
            have = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            assert have == op["value"], f"remove {op['path']}: our base holds {have!r}, not {op['value']!r}"
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        elif op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), op["value"])
            else:
                parent[last] = op["value"]
    return doc


@pytest.mark.family("D")
@pytest.mark.parametrize("inp,dp,golden", _envoyconfig_cases())
def test_envoyconfig_diff(kuma3_cp, inp, dp, golden):
    """Upstream's diff, applied to our configuration without the shadow
    policies, gives our configuration with them. (The diffs are not compared
    op by op: upstream renders list changes with jd's LCS hunks, we render
    them index by index; both are RFC 6902 patches of the same change.)"""
    kuma3_cp.reset()
    kuma3_cp.seed(D_SETUP)
    _apply(kuma3_cp, inp.read_text())
    # the goldens come from proxies with mesh TLS: wait for the identity's CA
    _wait_identity_ready(kuma3_cp)
    path = f"/meshes/envoyconfig/dataplanes/{dp}/_config"
    base_raw = _get(kuma3_cp, path)["xds"]
    got = _get(kuma3_cp, path + "?shadow=true&include=diff")
    dyn_base, dyn_shadow = _dyn_routes(base_raw), _dyn_routes(got["xds"])
    base = _redact(base_raw)
    shadow = _redact(got["xds"])
    want = [op for op in json.loads(golden.read_text())["diff"]
            if op["op"] != "test" and not op["path"].endswith("maxDirectResponseBodySizeBytes")
            and not op["path"].endswith("Listener/_kuma:dynamicconfig")
            and not op["path"].endswith("Listener/system_dynamicconfig")]
    # Routes added to the dynamic-config listener (MeshMetric's /meshmetric):
    # upstream's proxies hold two DNS routes there before them (kuma-dp's
    # embedded DNS under transparent proxy, which we do not run), so its
    # ops say routes/2 where ours start at 0. Compared as the set of routes
    # the policy adds, by value; the listener itself is left out above.
    dyn_prefix = "/type.googleapis.com~1envoy.config.listener.v3.Listener/system_dynamicconfig/"
    dyn_want = [op for op in want if op["path"].startswith(dyn_prefix)]
    want = [op for op in want if not op["path"].startswith(dyn_prefix)]
    assert all(op["op"] == "add" and "/routes/" in op["path"] for op in dyn_want), dyn_want
    assert sorted(json.dumps(op["value"], sort_keys=True) for op in dyn_want) == \
        sorted(json.dumps(r, sort_keys=True) for r in set_minus(dyn_shadow, dyn_base))
    assert json.dumps(_patch(base, want), sort_keys=True) == json.dumps(shadow, sort_keys=True)
    # and our own diff says the same
    ours = [op for op in got["diff"] if op["op"] != "test" and not op["path"].startswith(dyn_prefix[:-1])]
    assert _patch(_redact(_get(kuma3_cp, path)["xds"]), _redact_ops(ours)) == shadow


def _dyn_routes(xds):
    l = xds.get("type.googleapis.com/envoy.config.listener.v3.Listener", {}).get("system_dynamicconfig")
    if not l:
        return []
    hcm = l["filterChains"][0]["filters"][0]["typedConfig"]
    return hcm["routeConfig"]["virtualHosts"][0]["routes"]


def set_minus(a, b):
    return [x for x in a if x not in b]


def _redact_ops(ops):
    out = []
    for op in ops:
        v = _redact({"v": op.get("value")})["v"]
        if op["path"].endswith("/statPrefix") and isinstance(v, str):
            v = "STAT_PREFIX_REDACTED"
        out.append(dict(op, value=v))
    return out
