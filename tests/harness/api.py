# SPDX-License-Identifier: Apache-2.0
"""Helpers for end-to-end API tests: the resource type paths (from upstream's
`/_resources` golden when present, a built-in list otherwise), a snapshot of
everything the API lists (to prove a rejected request stored nothing),
std-errors assertions, and polling."""

import json
import time
from typing import Callable, Optional

from . import paths
from .http import ApiClient, Response

# (name, path, scope) used when the conformance data is absent.
_FALLBACK_TYPES = [
    ("Dataplane", "dataplanes", "Mesh"), ("DataplaneInsight", "dataplane-insights", "Mesh"),
    ("GlobalSecret", "globalsecrets", "Global"), ("HostnameGenerator", "hostnamegenerators", "Global"),
    ("Mesh", "meshes", "Global"), ("MeshAccessLog", "meshaccesslogs", "Mesh"),
    ("MeshExternalService", "meshexternalservices", "Mesh"), ("MeshService", "meshservices", "Mesh"),
    ("MeshTimeout", "meshtimeouts", "Mesh"), ("MeshTrafficPermission", "meshtrafficpermissions", "Mesh"),
    ("Secret", "secrets", "Mesh"), ("ServiceInsight", "service-insights", "Mesh"),
    ("Workload", "workloads", "Mesh"), ("Zone", "zones", "Global"),
]


def resource_types(writable_only: bool = False) -> list[tuple[str, str, str]]:
    """[(name, path, scope)] for every REST resource type; with writable_only,
    without the read-only (CP-computed insight) types."""
    golden = paths.api_testdata() / "base_endpoints" / "_resources.golden.json"
    if golden.exists():
        data = json.loads(golden.read_text())
        return [(r["name"], r["path"], r["scope"]) for r in data["resources"]
                if not (writable_only and r["readOnly"])]
    return [t for t in _FALLBACK_TYPES if not (writable_only and t[0].endswith("Insight"))]


def snapshot(api: ApiClient) -> dict[str, object]:
    """{path: (status, sorted [(mesh, name, modificationTime)])} for the list
    endpoint of every writable type (cross-mesh lists for mesh-scoped types).
    Insights are left out: the CP recomputes them in the background."""
    out: dict[str, object] = {}
    for _name, path, _scope in resource_types(writable_only=True):
        items: list = []
        url: Optional[str] = f"/{path}?size=1000"
        status = None
        while url:
            r = api.get(url)
            status = r.status
            if r.status != 200:
                break
            try:
                body = r.json()
            except ValueError:
                items.append(("unparsable", r.text[:200]))
                break
            for it in body.get("items") or []:
                items.append((it.get("mesh", ""), it.get("name", ""), it.get("modificationTime", "")))
            nxt = body.get("next")
            url = None
            if nxt:
                url = nxt.split(api.address, 1)[-1] if api.address in nxt else None
        out[path] = (status, sorted(items))
    return out


def snapshot_diff(before: dict, after: dict) -> list[str]:
    diffs = []
    for k in sorted(set(before) | set(after)):
        if before.get(k) != after.get(k):
            diffs.append(f"/{k}: before={before.get(k)} after={after.get(k)}")
    return diffs


def assert_std_error(r: Response, status: int, title: Optional[str] = None,
                     detail_prefix: Optional[str] = None) -> dict:
    """The response is `status` with an upstream std-errors body."""
    assert r.status == status, f"expected {status}: {r.describe()}"
    body = r.json()
    assert body.get("type") == "/std-errors", f"not a std-errors body: {r.describe()}"
    assert body.get("status") == status, r.describe()
    assert body.get("detail") == body.get("details"), f"detail and details differ: {r.describe()}"
    if title is not None:
        assert body.get("title") == title, f"title {body.get('title')!r} != {title!r}: {r.describe()}"
    if detail_prefix is not None:
        assert str(body.get("detail", "")).startswith(detail_prefix), \
            f"detail should start with {detail_prefix!r}: {r.describe()}"
    ip = body.get("invalid_parameters")
    if ip is not None:
        causes = [{"field": p.get("field"), "message": p.get("reason")} for p in ip]
        assert body.get("causes") == causes, f"causes do not mirror invalid_parameters: {r.describe()}"
    return body


def wait_for(fn: Callable[[], object], timeout: float = 15.0, interval: float = 0.2, what: str = "condition"):
    """Poll fn until it returns a truthy value; return it or raise AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
