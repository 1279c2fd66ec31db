#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generates lib/resource/schema_gen.c, the compact schema table used by
lib/resource/schema.c to normalise resources (drop unknown fields, apply
defaults, check types/enums/required/limits) before the per-type validators.

Source: upstream Kuma's published API contract, docs/generated/openapi.yaml
(components.schemas.<Type>Item, produced from the kubebuilder markers of each
new-style type). The proto-based flat types (Mesh, Dataplane, Secret,
GlobalSecret, Zone and the insights) are not described there in wire form, so
their schemas are written by hand below with proto field names (camelCase).

Re-run after bumping the upstream contract:
    python3 scripts/gen-schema.py \
        [../shared/conformance/kuma/docs/generated/openapi.yaml] > lib/resource/schema_gen.c
The output is deterministic (properties in schema order, nodes deduplicated)
and is committed, so the build does not need Python or the upstream tree.
"""
import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SRC = os.path.join(HERE, "..", "..", "shared", "conformance", "kuma", "docs",
                           "generated", "openapi.yaml")

# Go RE2 patterns used by upstream -> POSIX ERE (regcomp) with the same language.
PATTERN_ERE = {
    r"^[a-z0-9!#$%&'*+\-.^_\x60|~]+$": "^[a-z0-9!#$%&'*+.^_`|~-]+$",
}

S = {"type": "string"}
I = {"type": "integer"}
B = {"type": "boolean"}
DUR = {"type": "string", "x-km-duration": True}
STRMAP = {"type": "object", "additionalProperties": S}


def obj(**props):
    return {"type": "object", "properties": props}


# Hand-written wire schemas of the proto-based types (what protojson accepts).
DATAPLANE_BACKEND_REF = obj(kind=S, name=S, port=I, labels=STRMAP)
REACHABLE_REF = obj(kind=S, name=S, namespace=S, port=I, labels=STRMAP)
FLAT = {
    "Mesh": obj(skipCreatingInitialPolicies={"type": "array", "items": S}),
    "Dataplane": obj(networking=obj(
        address=S,
        inbound={"type": "array", "items": obj(
            port=I, servicePort=I, serviceAddress=S, address=S,
            health=obj(ready=B),
            serviceProbe=obj(interval=DUR, timeout=DUR, unhealthyThreshold=I,
                             healthyThreshold=I, tcp={"type": "object", "properties": {}}),
            state={"type": "string", "enum": ["Ready", "NotReady", "Ignored"]},
            name=S, protocol=S)},
        outbound={"type": "array", "items": obj(address=S, port=I,
                                                 backendRef=DATAPLANE_BACKEND_REF)},
        gateway=obj(tags=STRMAP, type={"type": "string", "enum": ["DELEGATED"]}),
        transparentProxying=obj(
            redirectPortInbound=I, redirectPortOutbound=I,
            directAccessServices={"type": "array", "items": S},
            ipFamilyMode={"type": "string",
                          "enum": ["UnSpecified", "DualStack", "IPv4", "IPv6"]},
            reachableBackends=obj(refs={"type": "array", "items": REACHABLE_REF})),
        admin=obj(port=I),
        listeners={"type": "array", "items": obj(
            type={"type": "string", "enum": ["Unspecified", "ZoneIngress", "ZoneEgress"]},
            address=S, port=I, name=S,
            state={"type": "string", "enum": ["Ready", "NotReady"]})})),
    "Secret": obj(data={"type": "string", "format": "byte"}),
    "GlobalSecret": obj(data={"type": "string", "format": "byte"}),
    "Zone": obj(enabled=B),
    "DataplaneInsight": {"type": "object", "x-km-any": True},
    "MeshInsight": {"type": "object", "x-km-any": True},
    "ServiceInsight": {"type": "object", "x-km-any": True},
    "ZoneInsight": {"type": "object", "x-km-any": True},
}

KINDS = ["any", "object", "map", "array", "string", "int", "number", "bool", "int_or_string"]


class Gen:
    def __init__(self):
        self.nodes = []       # rendered C initialisers
        self.index = {}       # initialiser -> node index (dedup)
        self.props = []       # (name, node, required)
        self.enums = []       # C string literals
        self.enum_index = {}

    def enum_range(self, values):
        lits = tuple(json.dumps(v) for v in values)  # JSON text of each value
        if lits in self.enum_index:
            return self.enum_index[lits]
        start = len(self.enums)
        self.enums.extend(lits)
        self.enum_index[lits] = start
        return start

    def node(self, sch):
        if sch.get("x-km-any"):
            return self.add("KM_SK_ANY", {})
        if sch.get("x-kubernetes-int-or-string"):
            kind = "KM_SK_INT_OR_STRING"
        else:
            t = sch.get("type")
            if t == "object":
                if "properties" in sch:
                    kind = "KM_SK_OBJECT"
                elif "additionalProperties" in sch:
                    kind = "KM_SK_MAP"
                else:
                    kind = "KM_SK_ANY"
            else:
                kind = {"array": "KM_SK_ARRAY", "string": "KM_SK_STRING",
                        "integer": "KM_SK_INT", "number": "KM_SK_NUMBER",
                        "boolean": "KM_SK_BOOL", None: "KM_SK_ANY"}[t]
        f = {}
        flags = []
        if kind == "KM_SK_OBJECT":
            req = set(sch.get("required", []))
            # children first, so the property block is contiguous
            kids = [(k, self.node(v), k in req) for k, v in sch["properties"].items()]
            f["props"] = len(self.props)
            f["nprops"] = len(kids)
            self.props.extend(kids)
        elif kind == "KM_SK_MAP":
            ap = sch["additionalProperties"]
            f["child"] = self.node(ap if isinstance(ap, dict) else {})
        elif kind == "KM_SK_ARRAY":
            f["child"] = self.node(sch.get("items", {}))
        if "enum" in sch:
            f["enums"] = self.enum_range(sch["enum"])
            f["nenums"] = len(sch["enum"])
        if "default" in sch:
            f["def"] = json.dumps(json.dumps(sch["default"], separators=(",", ":")))
        if "pattern" in sch:
            p = sch["pattern"]
            f["pattern"] = json.dumps(p)
            f["pattern_ere"] = json.dumps(PATTERN_ERE.get(p, p))
        if sch.get("format") in ("byte", "date-time"):
            f["format"] = json.dumps(sch["format"])
        for k in ("minimum", "maximum"):
            if k in sch:
                f["min" if k == "minimum" else "max"] = str(int(sch[k])) + "LL"
                flags.append("KM_SF_HAS_MIN" if k == "minimum" else "KM_SF_HAS_MAX")
        for k, c in (("minLength", "min_len"), ("maxLength", "max_len"),
                     ("minItems", "min_items"), ("maxItems", "max_items")):
            f[c] = str(sch[k]) if k in sch else "-1"
        if sch.get("x-km-duration"):
            flags.append("KM_SF_DURATION")
        if flags:
            f["flags"] = " | ".join(flags)
        return self.add(kind, f)

    def add(self, kind, f):
        f = dict(f)
        for c in ("min_len", "max_len", "min_items", "max_items"):
            f.setdefault(c, "-1")
        body = ", ".join(["." + "kind = " + kind] + ["." + k + " = " + str(v)
                                                     for k, v in sorted(f.items())])
        if body in self.index:
            return self.index[body]
        self.index[body] = len(self.nodes)
        self.nodes.append(body)
        return self.index[body]


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SRC
    with open(src) as fh:
        doc = yaml.safe_load(fh)
    schemas = doc["components"]["schemas"]
    g = Gen()
    roots = []
    for name in sorted(k[:-4] for k in schemas if k.endswith("Item") and k != "JsonPatchItem"):
        if name in FLAT:
            continue
        item = schemas[name + "Item"]["properties"]
        spec = g.node(item["spec"]) if "spec" in item else g.node({"type": "object"})
        status = g.node(item["status"]) if "status" in item else -1
        roots.append((name, spec, status))
    for name in sorted(FLAT):
        roots.append((name, g.node(FLAT[name]), -1))
    roots.sort()

    out = sys.stdout
    out.write("/* SPDX-License-Identifier: Apache-2.0 */\n")
    out.write("/* GENERATED by scripts/gen-schema.py from upstream Kuma's docs/generated/openapi.yaml\n"
              " * (plus hand-written schemas of the proto-based types). DO NOT EDIT: re-run the\n"
              " * script. Static tables; see schema.h for the format. */\n")
    out.write('#include "resource/schema.h"\n\n/* clang-format off */\n')
    out.write("const char *const km_schema_enums[] = {\n")
    for e in g.enums:
        out.write("\t%s,\n" % json.dumps(e))
    out.write("\tNULL,\n};\n\n")
    out.write("const struct km_schema_prop km_schema_props[] = {\n")
    for n, node, req in g.props:
        out.write('\t{"%s", %d, %d},\n' % (n, node, 1 if req else 0))
    out.write("\t{NULL, 0, 0},\n};\n\n")
    out.write("const struct km_schema_node km_schema_nodes[] = {\n")
    for i, b in enumerate(g.nodes):
        out.write("\t/* %d */ {%s},\n" % (i, b))
    out.write("};\n\n")
    out.write("const struct km_schema_root km_schema_roots[] = {\n")
    for name, spec, status in roots:
        out.write('\t{"%s", %d, %d},\n' % (name, spec, status))
    out.write("};\n\nconst size_t km_schema_roots_len = sizeof(km_schema_roots) / sizeof(km_schema_roots[0]);\n")
    out.write("/* clang-format on */\n")


if __name__ == "__main__":
    main()
