# SPDX-License-Identifier: Apache-2.0
"""Family C (overview): upstream dataplane_overview_endpoints_test.go as
transcribed in _extracted/pkg/api-server/dataplane_overview.cases.yaml.
The seed pins creationTime, so these goldens are compared WITHOUT time
masking. Plus the inline assertions (single overview, bad page sizes,
next link) and the workload-label filter case."""

import json
import re

import pytest

from harness import paths
from harness.cases import require_api_testdata
from harness.normalize import compare_json_text, normalize_body

yaml = pytest.importorskip("yaml")

TESTDATA = require_api_testdata()
CASES_FILE = paths.extracted("pkg", "api-server", "dataplane_overview.cases.yaml")
if not CASES_FILE.exists():
    pytest.skip(f"{CASES_FILE} not found", allow_module_level=True)
SPEC = yaml.safe_load(CASES_FILE.read_text())

# id -> reason; run as xfail(strict=True).
KNOWN_DIFFERENCES: dict[str, str] = {
}


def _seed_yaml(docs: list[dict]) -> str:
    """Upstream seeds with store.CreatedAt(t1), which sets creation AND
    modification time; the transcription only lists creationTime, so copy it
    to modificationTime when absent."""
    out = []
    for d in docs:
        d = dict(d)
        if "creationTime" in d and "modificationTime" not in d:
            d["modificationTime"] = d["creationTime"]
        out.append(d)
    return yaml.safe_dump_all(out, sort_keys=False)


SEED = _seed_yaml(SPEC["seed"])


def _case_id(url: str) -> str:
    return re.sub(r"[^a-zA-Z0-9 ]+", "_", url.lstrip("/"))


def _params(items, key):
    out = []
    for c in items:
        cid = _case_id(c["url"]) if key == "golden" else "inline:" + c["url"]
        marks = [pytest.mark.family("C")]
        if cid in KNOWN_DIFFERENCES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[cid]))
        out.append(pytest.param(c, id=cid, marks=marks))
    return out


@pytest.fixture
def overview_cp(fresh_cp):
    fresh_cp.seed(SEED)
    return fresh_cp


@pytest.mark.parametrize("case", _params(SPEC["cases"], "golden"))
def test_overview_golden(overview_cp, case):
    r = overview_cp.api.get(case["url"])
    assert r.status == 200, r.describe()
    golden = TESTDATA / case["golden"]
    body = normalize_body(r.text, overview_cp.address, times=False)
    ok, msg = compare_json_text(golden.read_text(), body)
    assert ok, f"GET {case['url']} vs {golden.name}: {msg}"


# dp-1 as upstream's "should return an existing resource" expects it.
DP1 = {
    "type": "DataplaneOverview", "name": "dp-1", "mesh": "mesh1",
    "creationTime": "2018-07-17T16:05:36.995Z", "modificationTime": "2018-07-17T16:05:36.995Z",
    "labels": {"service": "backend", "version": "v1", "tagcolumn": "tag:v"},
    "kri": "kri_dp_mesh1___dp-1_",
    "dataplane": {"networking": {"address": "127.0.0.1", "inbound": [{"port": 1234}]}},
    "dataplaneInsight": {"subscriptions": [{
        "id": "stream-id-1", "controlPlaneInstanceId": "cp-1", "connectTime": "2019-07-01T00:00:00Z",
        "status": {"total": {}, "cds": {}, "eds": {}, "lastUpdateTime": "2019-07-01T00:00:00Z",
                   "lds": {}, "rds": {}}}]},
}


@pytest.mark.parametrize("case", _params(SPEC["inline_assertions"], "inline"))
def test_overview_inline(overview_cp, case):
    r = overview_cp.api.get(case["url"])
    assert r.status == case["status"], r.describe()
    if case["url"].endswith("/dp-1"):
        ok, msg = compare_json_text(json.dumps(DP1), r.text)
        assert ok, msg
    if "next" in case:
        body = normalize_body(r.text, overview_cp.address, times=False)
        assert json.loads(body).get("next") == case["next"], r.describe()
    if case["status"] >= 400:
        err = r.json()
        assert err.get("type") == "/std-errors" and err.get("status") == case["status"], r.describe()


WORKLOAD_SEED = """\
type: Mesh
name: mesh1
creationTime: "2018-07-17T16:05:36.995Z"
modificationTime: "2018-07-17T16:05:36.995Z"
---
type: Dataplane
mesh: mesh1
name: dp-with-label
creationTime: "2018-07-17T16:05:36.995Z"
modificationTime: "2018-07-17T16:05:36.995Z"
labels:
  kuma.io/workload: test-workload
networking:
  address: 127.0.0.1
  inbound:
  - port: 1234
---
type: DataplaneInsight
mesh: mesh1
name: dp-with-label
subscriptions:
- id: stream-id-test
  controlPlaneInstanceId: cp-test
  connectTime: "2019-07-01T00:00:00Z"
  status:
    lastUpdateTime: "2019-07-01T00:00:00Z"
    total: {}
    cds: {}
    eds: {}
    lds: {}
    rds: {}
"""


@pytest.mark.family("C")
def test_overview_filter_by_workload_label(fresh_cp):
    """Upstream "should include insights when filtering by workload label"."""
    fresh_cp.seed(WORKLOAD_SEED)
    r = fresh_cp.api.get("/meshes/mesh1/dataplanes/_overview?filter[labels.kuma.io/workload]=test-workload")
    assert r.status == 200, r.describe()
    assert '"dataplaneInsight"' in r.text and '"stream-id-test"' in r.text and '"dp-with-label"' in r.text, \
        r.describe()
    assert len(r.json()["items"]) == 1, r.describe()


def test_known_differences_refer_to_existing_cases():
    ids = {_case_id(c["url"]) for c in SPEC["cases"]} | {"inline:" + c["url"] for c in SPEC["inline_assertions"]}
    stale = set(KNOWN_DIFFERENCES) - ids
    assert not stale, f"KNOWN_DIFFERENCES lists ids that are not cases: {sorted(stale)}"
