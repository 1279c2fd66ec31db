# SPDX-License-Identifier: Apache-2.0
"""kumactl test helpers: run build/kumactl with a private HOME (never the
user's ~/.kumactl), point it at a kuma-cp, mask the AGE column, and tiny
fake HTTP servers for the client-side cases (headers, timeouts, foreign
products). The `kumactl_cp` fixture gives the session kuma-cp and skips only
when build/kuma-cp does not answer the REST API within 10 s."""

import http.server
import os
import re
import socketserver
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

from harness import paths
from harness.http import request
from harness.process import CPError


def kumactl_binary() -> Path:
    """KUMACTL_BIN, or <build dir>/kumactl."""
    env = os.environ.get("KUMACTL_BIN")
    return Path(env).resolve() if env else paths.build_dir() / "kumactl"


def kumactl_root() -> Path:
    """Upstream app/kumactl goldens inside the conformance data."""
    return paths.conformance_root() / "app" / "kumactl"


class Kumactl:
    """Runs kumactl with HOME set to a private directory."""

    def __init__(self, home: Path, binary: Optional[Path] = None):
        self.home = Path(home)
        self.binary = Path(binary) if binary else kumactl_binary()
        if not self.binary.exists():
            pytest.skip(f"{self.binary} is not built")

    def run(self, *args: str, input: Optional[str] = None, check: bool = False,
            timeout: float = 60, env: Optional[dict] = None) -> subprocess.CompletedProcess:
        e = {k: v for k, v in os.environ.items() if not k.startswith("KUMA")}
        e["HOME"] = str(self.home)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        if env:
            e.update(env)
        p = subprocess.run([str(self.binary), *args], input=input, capture_output=True,
                           text=True, timeout=timeout, env=e)
        if check and p.returncode != 0:
            raise AssertionError(f"kumactl {' '.join(args)} exited {p.returncode}\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        if re.search(r"ERROR: (Address|Leak)Sanitizer|runtime error:", p.stderr):
            raise AssertionError(f"sanitizer report from kumactl {' '.join(args)}:\n{p.stderr}")
        return p

    def use(self, address: str, name: str = "test") -> None:
        """Adds <address> as the active control plane (checked with GET /)."""
        self.run("config", "control-planes", "add", "--name", name, "--address", address,
                 "--overwrite", check=True)


AGE_RE = re.compile(r"\b(\d+[smhdy]|never)(\s*)$")


def mask_age(table: str) -> str:
    """Replaces the last (AGE) cell of each table row, keeping widths: a real
    CP's timestamps are recent, upstream's test store holds Go's zero time."""
    out = []
    for line in table.split("\n"):
        if line and not line.startswith("Rerun command"):
            m = AGE_RE.search(line)
            if m and not line.rstrip().endswith("AGE"):
                line = line[:m.start()] + "<AGE>" + m.group(2)
        out.append(line)
    return "\n".join(out)


def _cp_answers(cp, within: float = 10.0) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            r = request(cp.host, cp.ports["api_http"], "GET", "/", timeout=2)
            if r.status == 200 and b"product" in r.body:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


@pytest.fixture
def kumactl_cp(request):
    """The session kuma-cp (free ports, memory store, test hooks), reset to an
    empty store. Skips when build/kuma-cp cannot serve the REST API."""
    if not kumactl_binary().exists():
        pytest.skip(f"{kumactl_binary()} is not built")
    if not paths.kuma_cp_binary().exists():
        pytest.skip(f"{paths.kuma_cp_binary()} is not built")
    try:
        cp = request.getfixturevalue("cp")
    except CPError as e:
        pytest.skip(f"kuma-cp does not serve the REST API: {str(e)[:500]}")
    if not cp.alive():
        cp.restart()
    if not _cp_answers(cp):
        pytest.skip("kuma-cp does not answer GET / within 10 s")
    cp.reset()
    return cp


@pytest.fixture
def kumactl(tmp_path):
    """A Kumactl with a private HOME under the test's tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    return Kumactl(home)


@pytest.fixture
def kumactl_live(kumactl, kumactl_cp):
    """kumactl already pointed at the (reset) session kuma-cp."""
    kumactl.use(f"http://{kumactl_cp.address}")
    return kumactl


# ----- fake servers -----------------------------------------------------------

class FakeServer:
    """A loopback HTTP server answering every request with <handler>;
    records (method, path, headers, body) of each request."""

    def __init__(self, handler: Callable[["FakeServer", http.server.BaseHTTPRequestHandler], None]):
        self.requests: list[tuple[str, str, dict, bytes]] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append((self.command, self.path,
                                       {k.lower(): v for k, v in self.headers.items()}, body))
                handler(outer, self)

            do_GET = do_PUT = do_POST = do_DELETE = _any

            def log_message(self, *a):
                pass

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = S(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(h: http.server.BaseHTTPRequestHandler, status: int, body: str,
          ctype: str = "application/json") -> None:
    data = body.encode()
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


@pytest.fixture
def fake_server():
    """fake_server(handler) -> FakeServer; all are closed after the test."""
    made: list[FakeServer] = []

    def make(handler):
        s = FakeServer(handler)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
