# SPDX-License-Identifier: Apache-2.0
"""Upstream api-server table cases (`<case>.input.yaml` with `#/path status
[method=X]` header lines, a multi-document seed, `<case>[_NN].request.json`
and `<case>[_NN].golden.json`), discovered from a folder, replayed against a
KumaCP (reset, raw seed, actions in order) and checked one action at a time."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from .normalize import compare_json_text, mask_times, normalize_body
from .process import CPError, KumaCP, SeedError


@dataclass
class Action:
    index: int
    path: str
    status: int
    method: str = "GET"

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


@dataclass
class GoldenCase:
    name: str
    input_path: Path
    actions: list[Action]
    seed_text: str
    folder: Path = field(init=False)

    def __post_init__(self) -> None:
        self.folder = self.input_path.parent

    def action_id(self, i: int) -> str:
        """Test id of action i: the golden file stem (case or case_NN)."""
        return self.name if len(self.actions) == 1 else f"{self.name}_{i:02d}"

    def request_file(self, i: int) -> Path:
        return self.folder / f"{self.action_id(i)}.request.json"

    def golden_file(self, i: int) -> Path:
        return self.folder / f"{self.action_id(i)}.golden.json"


def parse_action_line(line: str, index: int) -> Action:
    """`#/path status [method=PUT]` (upstream parseAction: trim '#' and ' ',
    split on single spaces)."""
    parts = line.strip("# \t\r").split(" ")
    if len(parts) < 2:
        raise ValueError(f"bad action line {line!r}")
    act = Action(index=index, path=parts[0], status=int(parts[1]))
    for opt in parts[2:]:
        key, _, val = opt.partition("=")
        if key != "method" or not val:
            raise ValueError(f"unknown option {opt!r} in {line!r}")
        act.method = val
    return act


def parse_input(path: Path) -> GoldenCase:
    """Header: leading lines starting with '#'; those starting with '#/' are
    actions, the others comments. The whole file is the seed."""
    text = path.read_text()
    actions: list[Action] = []
    for line in text.split("\n"):
        if not line.startswith("#"):
            break
        if line.startswith("#/"):
            actions.append(parse_action_line(line, len(actions)))
    if not actions:
        raise ValueError(f"{path}: no '#/path status' action line")
    name = path.name[: -len(".input.yaml")]
    return GoldenCase(name=name, input_path=path, actions=actions, seed_text=text)


def has_documents(yaml_text: str) -> bool:
    """True when the text holds anything besides comments, blanks and '---'."""
    for line in yaml_text.splitlines():
        s = line.strip()
        if s and not s.startswith("#") and s != "---":
            return True
    return False


def discover(folder: Path) -> list[GoldenCase]:
    """All `*.input.yaml` directly in `folder` (not recursive, like upstream
    EntriesForFolder); `P*` (pending) files are left out."""
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.glob("*.input.yaml")):
        if p.name.startswith("P"):
            continue
        out.append(parse_input(p))
    return out


# ----- replay ---------------------------------------------------------------

@dataclass
class ActionResult:
    action: Action
    status: Optional[int] = None
    body: str = ""
    error: Optional[str] = None


@dataclass
class CaseRun:
    results: list[ActionResult]
    setup_error: Optional[str] = None
    address: str = ""


_cache: dict[tuple, CaseRun] = {}


def run_case(cp: KumaCP, case: GoldenCase, reset: bool = True) -> CaseRun:
    """Replay a whole case once per CP incarnation and remember the result, so
    that every action's test sees the state its predecessors left."""
    key = (id(cp), cp.starts, str(case.input_path))
    if key in _cache:
        return _cache[key]
    run = CaseRun(results=[], address=cp.address)
    try:
        if reset:
            cp.reset()
        if has_documents(case.seed_text):
            cp.seed(case.seed_text)
    except (SeedError, CPError, OSError) as e:
        run.setup_error = f"{type(e).__name__}: {e}"
    if run.setup_error is None:
        for act in case.actions:
            res = ActionResult(action=act)
            body = None
            headers = {}
            if act.method in ("PUT", "POST"):
                rf = case.request_file(act.index)
                if not rf.exists():
                    res.error = f"request file {rf.name} is missing"
                    run.results.append(res)
                    continue
                body = rf.read_bytes()
                headers["Content-Type"] = "application/json"
            try:
                r = cp.api.request(act.method, act.path, body, headers=headers)
                res.status, res.body = r.status, r.text
            except OSError as e:
                res.error = f"{type(e).__name__}: {e}"
            run.results.append(res)
    _cache[key] = run
    return run


def check_action(cp: KumaCP, case: GoldenCase, i: int, times: bool = True) -> str:
    """Assert action i of the case; returns a note ('' or a loose-match remark)."""
    run = run_case(cp, case)
    where = f"{case.input_path.name} action {i} ({case.actions[i]})"
    if run.setup_error:
        pytest.fail(f"{where}: setup failed: {run.setup_error}", pytrace=False)
    res = run.results[i]
    if res.error:
        alive = "" if cp.alive() else "\n(kuma-cp is not running)\n" + cp.log_tail(40)
        pytest.fail(f"{where}: request failed: {res.error}{alive}", pytrace=False)
    body = normalize_body(res.body, run.address, times=times)
    golden = case.golden_file(i)
    if res.status != res.action.status:
        exp = golden.read_text() if golden.exists() else "(no golden)"
        pytest.fail(f"{where}: expected status {res.action.status}, got {res.status}\n"
                    f"--- body ---\n{body[:4000]}\n--- golden ---\n{exp[:4000]}", pytrace=False)
    if body == "":
        if golden.exists():
            pytest.fail(f"{where}: empty body but golden {golden.name} exists:\n{golden.read_text()[:3000]}",
                        pytrace=False)
        return ""
    if not golden.exists():
        pytest.fail(f"{where}: golden {golden.name} does not exist; body was:\n{body[:3000]}", pytrace=False)
    golden_text = golden.read_text()
    if times:
        golden_text = mask_times(golden_text)
    ok, msg = compare_json_text(golden_text, body)
    if not ok:
        pytest.fail(f"{where}: {msg}", pytrace=False)
    return msg


def params(cases: list[GoldenCase], known: dict[str, str], family: str) -> list:
    """pytest params (case, action index) with id = golden stem; ids listed
    in `known` are marked xfail(strict=True) with their reason."""
    out = []
    for c in cases:
        for i in range(len(c.actions)):
            aid = c.action_id(i)
            marks = [pytest.mark.family(family)]
            if aid in known:
                marks.append(pytest.mark.xfail(strict=True, reason=known[aid]))
            out.append(pytest.param(c, i, id=aid, marks=marks))
    return out


def all_ids(cases: list[GoldenCase]) -> set[str]:
    return {c.action_id(i) for c in cases for i in range(len(c.actions))}


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def require_api_testdata() -> Path:
    """Skip the calling module cleanly when the conformance data is absent;
    otherwise return upstream's pkg/api-server/testdata directory."""
    from . import paths
    root = paths.api_testdata()
    if not root.is_dir():
        pytest.skip(f"conformance data not found at {root} (set KUMA_CONFORMANCE_DIR)",
                    allow_module_level=True)
    return root
