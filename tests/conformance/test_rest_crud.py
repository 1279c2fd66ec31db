# SPDX-License-Identifier: Apache-2.0
"""Family A: upstream pkg/api-server/testdata/resources/crud replayed against a
real kuma-cp. One test per HTTP action, id = golden file stem (case or
case_NN). Each case: reset, raw seed of the whole input file, actions in
order; status must match, the body is address- and time-normalised and
compared semantically with the golden (no golden when the body is empty)."""

import os

import pytest

from harness.cases import all_ids, check_action, discover, params, require_api_testdata

TESTDATA = require_api_testdata()
FOLDER = TESTDATA / "resources" / "crud"
CASES = discover(FOLDER)

# Cases that cannot pass for a documented reason: id -> reason. Each is run
# as xfail(strict=True), so it fails loudly the day it starts passing.
# Keep tests/conformance/KNOWN_DIFFERENCES.md in step.
KNOWN_DIFFERENCES: dict[str, str] = {
}

# With KUMA_TEST_STORE=postgres only: upstream recorded these goldens on its
# memory store; its PostgreSQL store behaves like ours here.
_STATUS_PG = ("the policy is seeded straight into the store without a status; PostgreSQL's status "
              "column is NOT NULL DEFAULT '{}' (upstream's schema), so it reads back as status {} "
              "(upstream on PostgreSQL does the same)")
PG_DIFFERENCES: dict[str, str] = {
    "get_resource": _STATUS_PG,
    "get_resource_by_kri": _STATUS_PG,
    "list_mesh_doesnt_exist_not_found":
        "the seed writes a Dataplane into a mesh that does not exist straight into the store; "
        "our PostgreSQL rows of mesh-scoped types are owned by their Mesh (foreign key, cascade "
        "delete), so the raw write is refused (the API checks the mesh first on both stores)",
}
if os.environ.get("KUMA_TEST_STORE") == "postgres":
    KNOWN_DIFFERENCES.update(PG_DIFFERENCES)


@pytest.mark.parametrize("case,index", params(CASES, KNOWN_DIFFERENCES, "A"))
def test_crud(live_cp, case, index):
    check_action(live_cp, case, index)


def test_crud_cases_found():
    assert len(CASES) >= 31, f"expected the 31 upstream crud cases in {FOLDER}, found {len(CASES)}"


def test_known_differences_refer_to_existing_cases():
    stale = set(KNOWN_DIFFERENCES) - all_ids(CASES)
    assert not stale, f"KNOWN_DIFFERENCES lists ids that are not cases: {sorted(stale)}"
