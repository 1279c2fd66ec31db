# SPDX-License-Identifier: Apache-2.0
"""KumaCP: one real kuma-cp process for a test. It picks free loopback ports,
passes them (and any overrides) through KUMA_* environment variables, waits
for the diagnostics /ready endpoint, captures stdout+stderr to a log file that
failures quote, stops with SIGTERM then SIGKILL, and scans the log for
AddressSanitizer/UBSan/LeakSanitizer reports."""

import atexit
import itertools
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from . import paths
from .http import ApiClient, request
from .ports import free_port

SANITIZER_RE = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|ERROR: UndefinedBehaviorSanitizer"
    r"|runtime error:|SUMMARY: (?:Address|Undefined|Leak)Sanitizer")
PORT_IN_USE_RE = re.compile(r"address already in use|EADDRINUSE|bind\(\).*fail", re.I)

# Environment variables that carry a port; each gets a fresh free port.
PORT_VARS = {
    "api_http": "KUMA_API_SERVER_HTTP_PORT",
    "api_https": "KUMA_API_SERVER_HTTPS_PORT",
    "diagnostics": "KUMA_DIAGNOSTICS_SERVER_PORT",
    "dp_server": "KUMA_DP_SERVER_PORT",
    "inter_cp": "KUMA_INTER_CP_SERVER_PORT",
    "monitoring": "KUMA_MONITORING_ASSIGNMENT_SERVER_PORT",
    "kds_global": "KUMA_MULTIZONE_GLOBAL_KDS_GRPC_PORT",
}

_counter = itertools.count(1)
_running: "set[KumaCP]" = set()


class CPError(AssertionError):
    """kuma-cp failed to start, died, or reported a sanitizer error."""


class SeedError(AssertionError):
    """The /_test/seed hook refused the seed."""


def _kill_leftovers() -> None:
    for cp in list(_running):
        try:
            cp.stop(check=False, timeout=3)
        except Exception:
            pass


atexit.register(_kill_leftovers)


class KumaCP:
    """A kuma-cp child process.

    name        label used in log file names and messages
    env         extra KUMA_* (or other) variables; override the defaults
    test_hooks  export KUMA_TEST_HOOKS=true (enables /_test/reset and /_test/seed)
    config_file passed as `run -c FILE`
    mode        KUMA_MODE (None = the CP default, i.e. a standalone zone)
    zone        KUMA_MULTIZONE_ZONE_NAME (default "default" unless mode is global)
    """

    def __init__(self, name: str = "cp", env: Optional[dict[str, str]] = None,
                 test_hooks: bool = True, config_file: Optional[str] = None,
                 mode: Optional[str] = None, zone: Optional[str] = "default",
                 binary: Optional[Path] = None, startup_timeout: Optional[float] = None,
                 stop_timeout: float = 20.0):
        self.name = name
        self.extra_env = dict(env or {})
        self.test_hooks = test_hooks
        self.config_file = config_file
        self.mode = mode
        self.zone = zone
        self.binary = Path(binary) if binary else paths.kuma_cp_binary()
        self.startup_timeout = startup_timeout or float(os.environ.get("KUMA_TEST_STARTUP_TIMEOUT", "30"))
        self.stop_timeout = stop_timeout
        self.host = "127.0.0.1"
        self.ports: dict[str, int] = {}
        self.proc: Optional[subprocess.Popen] = None
        self.log_path: Optional[Path] = None
        self.workdir: Optional[str] = None
        self.returncode: Optional[int] = None
        self.killed = False
        self._scan_offset = 0
        self.starts = 0

    # ----- lifecycle -----------------------------------------------------
    def build_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
        env.setdefault("ASAN_OPTIONS", "halt_on_error=1:abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        for key, var in PORT_VARS.items():
            env[var] = str(self.ports[key])
        env["KUMA_API_SERVER_HTTP_INTERFACE"] = self.host
        env["KUMA_API_SERVER_HTTPS_INTERFACE"] = self.host
        env["KUMA_STORE_TYPE"] = "memory"
        env["KUMA_ENVIRONMENT"] = "universal"
        env["KUMA_GENERAL_WORK_DIR"] = self.workdir or ""
        if self.mode:
            env["KUMA_MODE"] = self.mode
        if self.zone and self.mode != "global":
            env["KUMA_MULTIZONE_ZONE_NAME"] = self.zone
        if self.test_hooks:
            env["KUMA_TEST_HOOKS"] = "true"
        env.update(self.extra_env)
        return env

    def start(self) -> "KumaCP":
        """Start and wait until ready; retries with new ports when a port was
        taken meanwhile. Raises CPError (with the log tail) on failure."""
        if not self.binary.exists():
            raise CPError(f"{self.binary} does not exist (build it with `make -j2 all`, "
                          f"or set KUMA_BUILD_DIR)")
        last: Optional[CPError] = None
        for _attempt in range(3):
            try:
                self._spawn()
                self._wait_ready()
                return self
            except CPError as e:
                last = e
                self.stop(check=False)
                if not PORT_IN_USE_RE.search(self.log_text()):
                    break
        assert last is not None
        raise last

    def _spawn(self) -> None:
        self.ports = {k: free_port() for k in PORT_VARS}
        seq = next(_counter)
        ldir = paths.log_dir()
        self.workdir = tempfile.mkdtemp(prefix=f"{self.name}-{os.getpid()}-{seq}-", dir=ldir)
        self.log_path = ldir / f"{self.name}-{os.getpid()}-{seq}.log"
        args = [str(self.binary), "run"]
        if self.config_file:
            args += ["-c", str(self.config_file)]
        env = self.build_env()
        with open(self.log_path, "wb") as log:
            log.write(("# " + " ".join(args) + "\n# env: " + " ".join(
                f"{k}={v}" for k, v in sorted(env.items()) if k.startswith("KUMA_")) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                                         start_new_session=True)
        self.returncode = None
        self.killed = False
        self._scan_offset = 0
        self.starts += 1
        _running.add(self)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise CPError(f"kuma-cp [{self.name}] exited with {self.proc.returncode} during start\n"
                              + self.log_tail())
            try:
                r = request(self.host, self.ports["diagnostics"], "GET", "/ready", timeout=2)
                if r.status == 200:
                    # the API listener must answer too
                    request(self.host, self.ports["api_http"], "GET", "/", timeout=2)
                    return
                last = f"/ready answered {r.status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        raise CPError(f"kuma-cp [{self.name}] not ready after {self.startup_timeout}s ({last})\n"
                      + self.log_tail())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check: bool = True, timeout: Optional[float] = None) -> Optional[int]:
        """SIGTERM, wait, then SIGKILL. With check=True raise CPError when the
        process needed SIGKILL, exited non-zero, or its log holds a sanitizer
        report."""
        if self.proc is None:
            return self.returncode
        timeout = self.stop_timeout if timeout is None else timeout
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.returncode = self.proc.returncode
        self.proc = None
        _running.discard(self)
        if check:
            problems = []
            if self.killed:
                problems.append(f"did not exit within {timeout}s of SIGTERM (SIGKILLed)")
            elif self.returncode != 0:
                problems.append(f"exit status {self.returncode} after SIGTERM")
            findings = self.sanitizer_findings(0)
            if findings:
                problems.append("sanitizer report:\n" + findings)
            if problems:
                raise CPError(f"kuma-cp [{self.name}] " + "; ".join(problems) + "\n" + self.log_tail())
        return self.returncode

    def restart(self) -> "KumaCP":
        self.stop(check=False)
        return self.start()

    # ----- logs ----------------------------------------------------------
    def log_text(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_text().splitlines()
        tail = "\n".join(text[-lines:])
        return f"--- last {min(lines, len(text))} lines of {self.log_path} ---\n{tail}"

    def sanitizer_findings(self, since: Optional[int] = None) -> str:
        """Sanitizer report text found in the log after byte offset `since`
        (default: after the previous scan), '' when none."""
        text = self.log_text()
        start = self._scan_offset if since is None else since
        chunk = text[start:]
        if since is None:
            self._scan_offset = len(text)
        m = SANITIZER_RE.search(chunk)
        if not m:
            return ""
        begin = chunk.rfind("\n", 0, max(0, m.start() - 200)) + 1
        return chunk[begin:begin + 6000]

    # ----- API -----------------------------------------------------------
    @property
    def api(self) -> ApiClient:
        """Client for the HTTP API as a direct loopback caller (admin)."""
        return ApiClient(self.host, self.ports["api_http"])

    @property
    def address(self) -> str:
        return f"{self.host}:{self.ports['api_http']}"

    def reset(self) -> None:
        """POST /_test/reset: empty store, no side effects on later writes."""
        r = self.api.post("/_test/reset")
        if r.status != 200:
            raise CPError(f"/_test/reset failed: {r.describe()}")

    def seed(self, yaml_text: str) -> None:
        """POST /_test/seed with a multi-document Universal YAML body."""
        if not yaml_text.strip():
            return
        r = self.api.post("/_test/seed", yaml_text, headers={"Content-Type": "application/yaml"})
        if r.status != 200:
            raise SeedError(f"/_test/seed refused the seed: {r.describe()}")

    def __repr__(self) -> str:
        return f"KumaCP({self.name!r}, api={self.ports.get('api_http')}, alive={self.alive()})"
