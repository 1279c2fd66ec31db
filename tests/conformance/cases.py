# SPDX-License-Identifier: Apache-2.0
"""Loader of upstream Kuma's resource-validation cases (conformance family F).

Turns every extracted validator case (_extracted/**/*.cases.yaml) and the
file-based ones (api/**/testdata) into a Case:
    (type, resource-as-dict, expected violations or None for valid,
     ordered flag, case id)
plus `mode` ("validator": upstream called Validate() on a Go struct, so no
schema errors/defaults; "meta": upstream's meta validator) and `unreplayable`
(a reason when the case cannot be expressed as a resource, e.g. its input is
built in Go code). The resource is a universal document ready for
build/tools/validate. Data lives at <repo>/../shared/conformance/kuma.
"""
import glob
import os
from collections import namedtuple

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# KUMA_CONFORMANCE_DIR overrides, as for the other suites (tests/harness/paths.py)
KUMA = os.path.abspath(os.environ.get("KUMA_CONFORMANCE_DIR")
                       or os.path.join(REPO, "..", "shared", "conformance", "kuma"))
EXTRACTED = os.path.join(KUMA, "_extracted")

Case = namedtuple("Case", "type resource expected ordered id mode unreplayable")

FLAT_TYPES = {"Dataplane", "Mesh", "Zone", "Secret", "GlobalSecret"}

# upstream package directory -> resource type
PKG_TYPES = {
    "hostnamegenerator": "HostnameGenerator", "meshexternalservice": "MeshExternalService",
    "meshmultizoneservice": "MeshMultiZoneService",
    "meshopentelemetrybackend": "MeshOpenTelemetryBackend", "meshservice": "MeshService",
    "meshzoneaddress": "MeshZoneAddress", "workload": "Workload", "meshidentity": "MeshIdentity",
    "meshtrust": "MeshTrust", "meshaccesslog": "MeshAccessLog",
    "meshcircuitbreaker": "MeshCircuitBreaker", "meshfaultinjection": "MeshFaultInjection",
    "meshhealthcheck": "MeshHealthCheck", "meshhttproute": "MeshHTTPRoute",
    "meshloadbalancingstrategy": "MeshLoadBalancingStrategy", "meshmetric": "MeshMetric",
    "meshpassthrough": "MeshPassthrough", "meshproxypatch": "MeshProxyPatch",
    "meshratelimit": "MeshRateLimit", "meshretry": "MeshRetry", "meshtcproute": "MeshTCPRoute",
    "meshtls": "MeshTLS", "meshtimeout": "MeshTimeout", "meshtrace": "MeshTrace",
    "meshtrafficpermission": "MeshTrafficPermission",
}

# mesh_validator_test.go passes the name positionally in Go code.
MESH_NAMES = {
    "valid name": "mesh-1", "name with a dot": "mesh.1", "name starting with a digit": "1mesh",
    "name with an underscore": "mesh_1", "name of 63 characters": "m" * 63,
    "name of 64 characters": "m" * 64,
}

# Tables that test helpers rather than resources.
NOT_RESOURCE = {
    "pkg/core/resources/apis/mesh/validators_test.go":
        "unit test of ValidateTargetRef/AllowedValuesHint with Go-only options",
    "pkg/plugins/policies/core/jsonpatch/validators/validator_test.go":
        "unit test of the JSON patch helper, not a resource",
    "pkg/xds/server/callbacks/workload_label_validator_test.go":
        "xDS connection callback, not resource validation",
}


def _load_yaml(text):
    return yaml.safe_load(text) if text else None


def _violations(text):
    d = _load_yaml(text)
    if not d:
        return None
    if isinstance(d, dict):
        d = d.get("violations")
    return [{"field": v.get("field", ""), "message": v.get("message", "")} for v in (d or [])] or None


def _resource(rtype, body, name=None, mesh="default"):
    """Universal document for <body>: the spec for new-style types, the flat
    doc (type/name/mesh ignored, as upstream's test does) for proto types."""
    body = dict(body or {}) if isinstance(body, dict) else {}
    doc = {"type": rtype, "name": name or "test-resource"}
    if rtype not in ("Mesh", "Zone", "GlobalSecret"):
        doc["mesh"] = mesh
    if rtype in FLAT_TYPES:
        for k in ("type", "name", "mesh"):
            body.pop(k, None)
        doc.update(body)
    else:
        doc["spec"] = body
    return doc


def _type_for(source):
    parts = source.split("/")
    if "mesh" in parts and "dataplane_validator" in source:
        return "Dataplane"
    if source.endswith("mesh/mesh_validator_test.go"):
        return "Mesh"
    if source.endswith("mesh/meta_validator_test.go"):
        return "meta"
    for p in parts:
        if p in PKG_TYPES:
            return PKG_TYPES[p]
    return None


def _testdata_dir(source):
    return os.path.join(KUMA, os.path.dirname(source), "testdata")


def _table_cases(path, d):
    source = d["source"]
    rtype = _type_for(source)
    rel = os.path.relpath(path, EXTRACTED)
    for t in d.get("tables") or []:
        title = t["table"]
        valid_table = "pass validation" in title
        for n, e in enumerate(t["entries"]):
            cid = "%s::%s::%d:%s" % (rel.replace(".cases.yaml", ""), title[:40], n, e["entry"])
            f = e.get("fields") or {}
            if source in NOT_RESOURCE:
                yield Case(rtype or "-", None, None, True, cid, "validator", NOT_RESOURCE[source])
                continue
            if e.get("extractable") is False and rtype != "Mesh":
                yield Case(rtype, None, None, True, cid, "validator", "input is Go code (not extractable)")
                continue
            if rtype == "meta":
                # the Go table passes the scope in code: global only for the valid, mesh-less rows
                glob_scope = valid_table and not f.get("Mesh")
                doc = {"type": "Mesh" if glob_scope else "Dataplane", "name": f.get("Name", "")}
                if not glob_scope:
                    doc["mesh"] = f.get("Mesh", "")
                yield Case(doc["type"], doc, _violations(f.get("expected")), False, cid, "meta", None)
                continue
            if rtype == "Mesh":
                name = MESH_NAMES.get(e["entry"])
                exp = _violations(e["raw"][0]) if e.get("raw") else None
                yield Case("Mesh", {"type": "Mesh", "name": name}, exp, True, cid, "validator", None)
                continue
            if "file" in f:
                inp = os.path.join(_testdata_dir(source), f["file"] + ".input.yaml")
                outp = os.path.join(_testdata_dir(source), f["file"] + ".output.yaml")
                body = _load_yaml(open(inp).read()) if os.path.exists(inp) else None
                exp = _violations(open(outp).read()) if os.path.exists(outp) else None
                yield Case(rtype, _resource(rtype, body, f.get("name")), exp, True, cid, "validator",
                           None if os.path.exists(inp) else "testdata file missing")
                continue
            if valid_table and e.get("raw"):
                body = _load_yaml(e["raw"][0])
                yield Case(rtype, _resource(rtype, body), None, True, cid, "validator", None)
                continue
            inputs = [k for k in f if k not in ("expected", "name", "Name", "Mesh")]
            if not inputs:
                yield Case(rtype, None, None, True, cid, "validator", "input is built in Go code")
                continue
            body = _load_yaml(f[inputs[0]])
            exp = _violations(f.get("expected"))
            if exp is None and e.get("raw") and not valid_table:
                # expectation built with fmt.Sprintf around a Go constant: keep the
                # fields, leave the message blank (a wildcard for the replay)
                exp = [dict(v, message="" if "%s" in v["message"] else v["message"])
                       for v in _violations(e["raw"][0].replace("%s", "'%s'")) or []]
            yield Case(rtype, _resource(rtype, body, f.get("name")), exp, True, cid, "validator", None)


def _group_cases(path, d):
    rel = os.path.relpath(path, EXTRACTED)
    for g in d.get("groups") or []:
        rtype = g["resourceType"]
        for n, c in enumerate(g.get("cases") or []):
            cid = "%s::%s::%d:%s" % (rel.replace(".cases.yaml", ""), g["helper"], n, c["entry"])
            body = _load_yaml(c.get("resource") or "")
            exp = None
            if g.get("expect") == "invalid" or g["helper"] == "DescribeErrorCases":
                exp = [{"field": v["field"], "message": v["message"]} for v in c.get("violations") or []]
            yield Case(rtype, _resource(rtype, body, c.get("name")), exp, False, cid, "validator", None)


def _golden_dir_cases():
    """meshidentity/meshtrust: testdata/spec/*.input.yaml with *.golden.yaml."""
    for rtype, pkg in (("MeshIdentity", "meshidentity"), ("MeshTrust", "meshtrust")):
        d = os.path.join(KUMA, "pkg/core/resources/apis", pkg, "api/v1alpha1/testdata/spec")
        for inp in sorted(glob.glob(os.path.join(d, "*.input.yaml"))):
            gold = inp.replace(".input.yaml", ".golden.yaml")
            body = _load_yaml(open(inp).read())
            exp = _violations(open(gold).read()) if os.path.exists(gold) else None
            cid = "%s/testdata/spec/%s" % (pkg, os.path.basename(inp))
            yield Case(rtype, _resource(rtype, body, "test-resource"), exp, True, cid, "validator", None)


def load_cases():
    """Every case, in a stable order. Empty when the conformance data is absent."""
    if not os.path.isdir(EXTRACTED):
        return []
    out = []
    for path in sorted(glob.glob(os.path.join(EXTRACTED, "**", "*.cases.yaml"), recursive=True)):
        d = yaml.safe_load(open(path))
        if not isinstance(d, dict) or "source" not in d:
            continue  # seeds/inline assertions of other families
        out.extend(_table_cases(path, d))
        out.extend(_group_cases(path, d))
    out.extend(_golden_dir_cases())
    return out


if __name__ == "__main__":
    cs = load_cases()
    print(len(cs), "cases;", sum(1 for c in cs if c.unreplayable), "unreplayable")
