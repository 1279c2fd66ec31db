# SPDX-License-Identifier: Apache-2.0
"""Self-checks of the harness that need no kuma-cp: normalisers, JSON
comparison, case-file parsing, and KumaCP process handling against a tiny
fake control plane written in Python."""

import json
import os
import stat
import sys
import textwrap

import pytest

from harness import paths
from harness.cases import discover, parse_action_line, parse_input
from harness.http import raw_exchange, status_of_raw
from harness.normalize import (compare_json_text, json_diff, loosen_go_errors, mask_times,
                               normalize_body, parse_json)
from harness.process import CPError, KumaCP


# ----- normalisers ------------------------------------------------------------

@pytest.mark.parametrize("raw,masked", [
    ('"creationTime": "2024-03-01T10:11:12.123456789Z"', '"creationTime": "0001-01-01T00:00:00Z"'),
    ('"t":"2018-07-17T16:05:36.995Z"', '"t":"0001-01-01T00:00:00Z"'),
    ('"t":"2018-07-17T16:05:36+02:00"', '"t":"0001-01-01T00:00:00Z"'),
    ('"t":"0001-01-01T00:00:00Z"', '"t":"0001-01-01T00:00:00Z"'),
    ('"name":"2018-07-17"', '"name":"2018-07-17"'),
])
def test_mask_times(raw, masked):
    assert mask_times(raw) == masked


def test_address_substitution():
    body = '{"next":"http://127.0.0.1:40123/meshes?offset=2&size=2"}'
    assert normalize_body(body, "127.0.0.1:40123") == '{"next":"http://{{address}}/meshes?offset=2&size=2"}'


def test_json_semantics():
    assert compare_json_text('{"a":1,"b":[1,2]}', '{"b":[1,2],"a":1.0}')[0]
    assert not compare_json_text('{"b":[1,2]}', '{"b":[2,1]}')[0]
    assert json_diff({"a": True}, {"a": 1})           # bool is not a number
    assert json_diff({"a": None}, {})                 # missing key
    assert json_diff({}, {"a": None})                 # extra key
    ok, msg = compare_json_text('{"a":1}', '{"a":1,"a":2}')
    assert not ok and "duplicate" in msg
    with pytest.raises(ValueError):
        parse_json('{"x":1,"x":1}')


def test_loose_go_errors():
    golden = {"type": "/std-errors", "status": 400, "title": "Bad Request",
              "detail": "invalid Dataplane object: \"invalid character ',' looking for beginning of object key string\"",
              "details": "invalid Dataplane object: \"invalid character ',' looking for beginning of object key string\""}
    actual = dict(golden, detail="invalid Dataplane object: \"unexpected ','\"",
                  details="invalid Dataplane object: \"unexpected ','\"")
    ok, note = compare_json_text(json.dumps(golden), json.dumps(actual))
    assert ok and "loosely" in note
    wrong_prefix = dict(actual, detail="invalid Mesh object: x")
    assert not compare_json_text(json.dumps(golden), json.dumps(wrong_prefix))[0]
    wrong_status = dict(actual, status=500)
    assert not compare_json_text(json.dumps(golden), json.dumps(wrong_status))[0]
    plain = {"type": "/std-errors", "detail": "Resource is not valid"}
    assert loosen_go_errors(plain, dict(plain, detail="x"))[1] is False


# ----- case files ---------------------------------------------------------------

def test_parse_action_line():
    a = parse_action_line("#/meshes/default/dataplanes/dp-2 201 method=PUT", 0)
    assert (a.path, a.status, a.method) == ("/meshes/default/dataplanes/dp-2", 201, "PUT")
    b = parse_action_line("#/meshes?size=2 200", 1)
    assert (b.path, b.status, b.method) == ("/meshes?size=2", 200, "GET")
    with pytest.raises(ValueError):
        parse_action_line("#/x 200 foo=bar", 0)


def test_parse_input(tmp_path):
    p = tmp_path / "my_case.input.yaml"
    p.write_text("# comment\n#/a 200\n# more\n#/b 201 method=PUT\ntype: Mesh\nname: m\n#/not-an-action 200\n")
    c = parse_input(p)
    assert [a.path for a in c.actions] == ["/a", "/b"]
    assert c.action_id(1) == "my_case_01"
    assert c.golden_file(0).name == "my_case_00.golden.json"
    assert c.request_file(1).name == "my_case_01.request.json"
    single = tmp_path / "one.input.yaml"
    single.write_text("#/a 200\n")
    assert parse_input(single).golden_file(0).name == "one.golden.json"


def test_upstream_crud_cases_reference_every_golden():
    folder = paths.api_testdata() / "resources" / "crud"
    if not folder.is_dir():
        pytest.skip("conformance data absent")
    cases = discover(folder)
    referenced = set()
    for c in cases:
        for i in range(len(c.actions)):
            referenced |= {c.golden_file(i).name, c.request_file(i).name}
    orphans = {p.name for p in folder.glob("*.json")} - referenced
    assert not orphans, f"goldens no action refers to (parser bug?): {sorted(orphans)}"


# ----- process handling with a fake control plane ----------------------------------

FAKE_CP = textwrap.dedent('''\
    #!{python}
    import os, signal, sys, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    mode = os.environ.get("FAKE_MODE", "ok")
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            body = b'{{"ok":true}}'
            self.send_response(200); self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
    if mode == "crash":
        print("boom", file=sys.stderr); sys.exit(3)
    servers = [ThreadingHTTPServer(("127.0.0.1", int(os.environ[v])), H)
               for v in ("KUMA_API_SERVER_HTTP_PORT", "KUMA_DIAGNOSTICS_SERVER_PORT")]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("started hooks=" + os.environ.get("KUMA_TEST_HOOKS", ""), flush=True)
    done = threading.Event()
    def term(*a):
        if mode == "asan":
            print("==1==ERROR: AddressSanitizer: heap-use-after-free", file=sys.stderr, flush=True)
        if mode != "stubborn":
            done.set()
    signal.signal(signal.SIGTERM, term)
    done.wait()
''')


@pytest.fixture
def fake_bin(tmp_path):
    p = tmp_path / "fake-kuma-cp"
    p.write_text(FAKE_CP.format(python=sys.executable))
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return p


def test_fake_cp_lifecycle(fake_bin, tmp_path, monkeypatch):
    monkeypatch.setenv("KUMA_TEST_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("KUMA_SHOULD_NOT_LEAK", "1")
    cp = KumaCP(name="fake", binary=fake_bin, startup_timeout=10, env={"FAKE_MODE": "ok"})
    cp.start()
    try:
        assert cp.alive()
        r = cp.api.get("/")
        assert r.status == 200 and r.json() == {"ok": True}
        assert "KUMA_SHOULD_NOT_LEAK" not in cp.build_env()
        assert cp.build_env()["KUMA_TEST_HOOKS"] == "true"
        raw = raw_exchange(cp.host, cp.ports["api_http"], b"GET / HTTP/1.0\r\n\r\n")
        assert status_of_raw(raw) == 200
    finally:
        assert cp.stop(check=True) == 0
    assert "started hooks=true" in cp.log_text()


def test_fake_cp_crash_on_start(fake_bin, tmp_path, monkeypatch):
    monkeypatch.setenv("KUMA_TEST_LOG_DIR", str(tmp_path / "logs"))
    cp = KumaCP(name="crash", binary=fake_bin, startup_timeout=10, env={"FAKE_MODE": "crash"})
    with pytest.raises(CPError, match="exited with 3"):
        cp.start()


def test_fake_cp_sanitizer_report(fake_bin, tmp_path, monkeypatch):
    monkeypatch.setenv("KUMA_TEST_LOG_DIR", str(tmp_path / "logs"))
    cp = KumaCP(name="asan", binary=fake_bin, startup_timeout=10, env={"FAKE_MODE": "asan"}).start()
    with pytest.raises(CPError, match="AddressSanitizer"):
        cp.stop(check=True)


def test_fake_cp_sigkill(fake_bin, tmp_path, monkeypatch):
    monkeypatch.setenv("KUMA_TEST_LOG_DIR", str(tmp_path / "logs"))
    cp = KumaCP(name="stubborn", binary=fake_bin, startup_timeout=10, env={"FAKE_MODE": "stubborn"},
                stop_timeout=1).start()
    with pytest.raises(CPError, match="SIGKILL"):
        cp.stop(check=True)
    assert not cp.alive()


def test_missing_binary(tmp_path):
    with pytest.raises(CPError, match="does not exist"):
        KumaCP(binary=tmp_path / "nope").start()
    assert os.path.isdir(tmp_path)
