# SPDX-License-Identifier: Apache-2.0
"""Shared pytest fixtures: a session-wide kuma-cp with test hooks (`cp`), a
per-test reset view of it (`fresh_cp`), a factory for extra CPs with their own
settings (`cp_factory`), a sanitizer watch after every test, and the
per-family pass / known-difference counts printed at the end of the run."""

import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.process import CPError, KumaCP, _running  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "family(name): conformance family the test is counted under")


# ----- kuma-cp fixtures -------------------------------------------------------

@pytest.fixture(scope="session")
def store_env():
    """KUMA_* variables selecting the store for the session CPs: the memory
    store by default; with KUMA_TEST_STORE=postgres a real PostgreSQL 15 is
    started for the session (and torn down after it), so the same suites run
    against both backends."""
    if os.environ.get("KUMA_TEST_STORE", "memory") != "postgres":
        yield {}
        return
    from harness import pg
    if not pg.available():
        pytest.skip("PostgreSQL 15 binaries not installed")
    srv = pg.Postgres().start()
    db = srv.new_database()
    srv.migrate(db)
    yield srv.env(db)
    srv.destroy()


@pytest.fixture(scope="session")
def cp(store_env):
    """One kuma-cp for the session: standalone zone "default", memory store
    (or PostgreSQL, see store_env), KUMA_TEST_HOOKS=true. Stopped (and checked
    for sanitizer reports and a clean SIGTERM exit) at the end of the session."""
    inst = KumaCP(name="session", test_hooks=True, env=store_env).start()
    yield inst
    inst.stop(check=True)


@pytest.fixture
def fresh_cp(cp):
    """The session CP with an empty store (POST /_test/reset). If an earlier
    test killed the CP it is restarted here, and that death is reported."""
    if not cp.alive():
        died = cp.log_tail(40)
        cp.restart()
        cp.reset()
        pytest.fail(f"kuma-cp had died before this test (restarted for the next ones)\n{died}",
                    pytrace=False)
    cp.reset()
    return cp


@pytest.fixture
def live_cp(cp):
    """The session CP, restarted first if an earlier test killed it (that
    death was already reported by the sanitizer watch of that test). The
    store is left as it is: the golden replays reset and seed themselves."""
    if not cp.alive():
        cp.restart()
    return cp


@pytest.fixture
def cp_factory():
    """Start extra CPs: cp_factory(name=..., env={...}, mode=..., test_hooks=...).
    All are stopped and checked at the end of the test."""
    started: list[KumaCP] = []

    def make(**kw) -> KumaCP:
        inst = KumaCP(**kw)
        started.append(inst)
        return inst.start()

    yield make
    errors = []
    for inst in started:
        try:
            inst.stop(check=True)
        except CPError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture(scope="session")
def global_cp():
    """A kuma-cp in global mode with test hooks, for the cases upstream runs
    against a global API server."""
    inst = KumaCP(name="global", mode="global", zone=None, test_hooks=True).start()
    yield inst
    inst.stop(check=True)


@pytest.fixture(autouse=True)
def _sanitizer_watch(request):
    """After each test, fail it if any running kuma-cp printed a sanitizer
    report or died while it ran."""
    before = {id(c): (c.alive(), c.starts) for c in list(_running)}
    yield
    problems = []
    for inst in list(_running):
        found = inst.sanitizer_findings()
        was_alive, starts = before.get(id(inst), (False, inst.starts))
        if found:
            problems.append(f"kuma-cp [{inst.name}] sanitizer report during this test:\n{found}")
        elif was_alive and starts == inst.starts and not inst.alive():
            problems.append(f"kuma-cp [{inst.name}] died during this test (exit "
                            f"{inst.proc.returncode if inst.proc else '?'})\n{inst.log_tail(40)}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# ----- per-family counts ------------------------------------------------------

_tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    mark = item.get_closest_marker("family")
    if mark is None or not mark.args:
        return
    fam = str(mark.args[0])
    if rep.when == "call" or (rep.when == "setup" and not rep.passed):
        if hasattr(rep, "wasxfail"):
            kind = "known differences" if rep.skipped else "unexpected passes"
        elif rep.passed:
            kind = "passed"
        elif rep.skipped:
            kind = "skipped"
        elif "XPASS(strict)" in str(rep.longrepr):
            kind = "known differences now passing (remove them)"
        else:
            kind = "failed" if rep.when == "call" else "errors"
        _tally[fam][kind] += 1
    elif rep.when == "teardown" and rep.failed:
        _tally[fam]["teardown errors"] += 1


def pytest_terminal_summary(terminalreporter):
    if not _tally:
        return
    tr = terminalreporter
    tr.section("conformance families")
    order = ["passed", "known differences", "failed", "errors", "skipped",
             "known differences now passing (remove them)", "unexpected passes", "teardown errors"]
    for fam in sorted(_tally):
        t = _tally[fam]
        parts = [f"{t.get('passed', 0)} passed", f"{t.get('known differences', 0)} known differences"]
        parts += [f"{t[k]} {k}" for k in order[2:] if t.get(k)]
        tr.write_line(f"family {fam}: " + ", ".join(parts))
