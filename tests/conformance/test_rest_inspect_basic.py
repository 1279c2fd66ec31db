# SPDX-License-Identifier: Apache-2.0
"""Family B (basic): upstream pkg/api-server/testdata/resources/inspect table
cases that need no policy engine: dataplane `_layout`, MeshService
`_dataplanes`, a policy's `_resources/dataplanes`, and service `_hostnames`
(the `global` folder runs against a global-mode CP, as upstream does).
and the policy-engine folders (`_rules`, `_policies/**`, `_routes`). Same
runner and format as family A."""

import os

import pytest

from harness.cases import all_ids, check_action, discover, params, require_api_testdata

TESTDATA = require_api_testdata()
INSPECT = TESTDATA / "resources" / "inspect"

BASIC_FOLDERS = [
    "dataplanes/_layout",
    "meshservices/_dataplanes",
    "policies/_resources/dataplanes",
    "services/_resources/hostnames/zone",
]
GLOBAL_FOLDERS = ["services/_resources/hostnames/global"]
POLICY_FOLDERS = [
    "dataplanes/_rules",
    "dataplanes/_policies",
    "dataplanes/_policies/inbounds",
    "dataplanes/_policies/outbounds",
    "dataplanes/_policies/routes",
    "dataplanes/_routes",
]

def _discover(folders):
    cases = []
    for f in folders:
        cases += discover(INSPECT / f)
    return cases


GLOBAL_CASES = _discover(GLOBAL_FOLDERS)

# id (golden stem; global cases prefixed "global:") -> reason; xfail(strict=True).
KNOWN_DIFFERENCES: dict[str, str] = {
    "global:meshexternalservice_hostnames_global": "multi-zone (global CP hostnames of synced services) is not implemented yet",
    "global:meshservice_hostnames_global": "multi-zone (global CP hostnames of synced services) is not implemented yet",
    "global:meshservice_hostnames_noncompliant": "multi-zone (global CP hostnames of synced services) is not implemented yet",
}
if os.environ.get("KUMA_TEST_STORE") == "postgres":
    KNOWN_DIFFERENCES["mesh_doesnt_exist_not_found"] = (
        "the seed writes resources into a mesh that does not exist straight into the store; our "
        "PostgreSQL rows of mesh-scoped types are owned by their Mesh (foreign key), so the raw "
        "write is refused (the API checks the mesh first on both stores)")


def _global_params():
    out = []
    for p in params(GLOBAL_CASES, {}, "B"):
        case, index = p.values
        gid = "global:" + case.action_id(index)
        marks = list(p.marks)
        if gid in KNOWN_DIFFERENCES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[gid]))
        out.append(pytest.param(case, index, id=gid, marks=marks))
    return out


def _zone_params():
    """The basic folders' cases by golden stem; the policy folders' by
    "<folder>:<stem>" (two folders have a case of the same name)."""
    out = params(_discover(BASIC_FOLDERS), KNOWN_DIFFERENCES, "B")
    for f in POLICY_FOLDERS:
        for p in params(_discover([f]), {}, "B"):
            case, index = p.values
            pid = f"{f}:{case.action_id(index)}"
            marks = list(p.marks)
            if pid in KNOWN_DIFFERENCES:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[pid]))
            out.append(pytest.param(case, index, id=pid, marks=marks))
    return out


@pytest.mark.parametrize("case,index", _zone_params())
def test_inspect(live_cp, case, index):
    check_action(live_cp, case, index)


@pytest.mark.parametrize("case,index", _global_params())
def test_inspect_global(global_cp, case, index):
    check_action(global_cp, case, index)


def test_known_differences_refer_to_existing_cases():
    ids = (all_ids(_discover(BASIC_FOLDERS)) | {"global:" + i for i in all_ids(GLOBAL_CASES)} |
           {f"{f}:{i}" for f in POLICY_FOLDERS for i in all_ids(_discover([f]))})
    stale = set(KNOWN_DIFFERENCES) - ids
    assert not stale, f"KNOWN_DIFFERENCES lists ids that are not cases: {sorted(stale)}"
