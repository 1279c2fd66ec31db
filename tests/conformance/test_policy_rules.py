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
    "resourcerules:mretry_with_mes": "MeshExternalService destinations are not in the mesh context yet",
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
            labels = dict(d.get("labels") or {})
            labels.update({"kuma.io/origin": "zone", "kuma.io/zone": "zone-uni",
                           "kuma.io/display-name": d["name"]})
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


def test_known_differences_refer_to_existing_cases():
    ids = {p.id for p in _resourcerule_cases() + _inboundrule_cases() + _INSPECT_PARAMS}
    stale = set(KNOWN_DIFFERENCES) - ids
    assert not stale, f"KNOWN_DIFFERENCES lists ids that are not cases: {sorted(stale)}"
