# SPDX-License-Identifier: Apache-2.0
"""Family C: upstream base endpoint goldens (`base_endpoints/{_resources,
policies,who-am-i}.golden.json`, plain GETs on an empty store) and the
table cases under `insights/` and `service-insights/` (same format as the
crud family)."""

import pytest

from harness.cases import all_ids, check_action, discover, params, require_api_testdata
from harness.normalize import compare_json_text

TESTDATA = require_api_testdata()
BASE = TESTDATA / "base_endpoints"
BASE_PATHS = ["/_resources", "/policies", "/who-am-i"]
TABLE_CASES = discover(TESTDATA / "insights") + discover(TESTDATA / "service-insights")

# id -> reason; run as xfail(strict=True). Ids: "base:/who-am-i" style for the
# plain GETs, golden stems for the table cases.
KNOWN_DIFFERENCES: dict[str, str] = {
}


def _base_params():
    out = []
    for p in BASE_PATHS:
        pid = "base:" + p
        marks = [pytest.mark.family("C")]
        if pid in KNOWN_DIFFERENCES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[pid]))
        out.append(pytest.param(p, id=pid, marks=marks))
    return out


@pytest.mark.parametrize("path", _base_params())
def test_base_endpoint(fresh_cp, path):
    r = fresh_cp.api.get(path)
    assert r.status == 200, r.describe()
    golden = BASE / (path.replace("/", "") + ".golden.json")
    ok, msg = compare_json_text(golden.read_text(), r.text)
    assert ok, f"GET {path}: {msg}"


@pytest.mark.parametrize("case,index", params(TABLE_CASES, KNOWN_DIFFERENCES, "C"))
def test_insights_table(live_cp, case, index):
    check_action(live_cp, case, index)


def test_known_differences_refer_to_existing_cases():
    ids = all_ids(TABLE_CASES) | {"base:" + p for p in BASE_PATHS}
    stale = set(KNOWN_DIFFERENCES) - ids
    assert not stale, f"KNOWN_DIFFERENCES lists ids that are not cases: {sorted(stale)}"
