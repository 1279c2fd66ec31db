# SPDX-License-Identifier: Apache-2.0
"""End-to-end: our kumactl against a real kuma-cp (memory store, free ports,
reset store per test) and against small fake servers for the client-side
behaviour (headers, auth, error bodies). Covers config contexts, apply
(file, dir, stdin, URL, templates, updates, errors), get in every format with
pagination, delete, inspect, token generation, signing keys, version and the
bash completion script."""

import base64
import json
import os
import subprocess

import pytest
import yaml

from kumactl_fixtures import (fake_server, kumactl, kumactl_cp, kumactl_live,  # noqa: F401
                              mask_age, reply)

DEFAULT_MESH = "type: Mesh\nname: default\n"

DP = """type: Dataplane
mesh: default
name: {name}
labels:
  app: {app}
networking:
  address: {address}
  inbound:
  - port: 8080
    servicePort: 80
"""

TIMEOUT = """type: MeshTimeout
mesh: default
name: {name}
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      idleTimeout: 20s
"""


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


# ----- contexts -------------------------------------------------------------------

def test_first_run_creates_default_config(kumactl):
    p = ok(kumactl.run("config", "view"))
    cfg = yaml.safe_load(p.stdout)
    assert cfg["currentContext"] == "local"
    assert cfg["controlPlanes"][0]["coordinates"]["apiServer"]["url"] == "http://localhost:5681"
    assert (kumactl.home / ".kumactl" / "config").exists()
    assert oct((kumactl.home / ".kumactl" / "config").stat().st_mode & 0o777) == "0o600"


def test_no_config_writes_nothing(kumactl):
    ok(kumactl.run("--no-config", "config", "view"))
    assert not (kumactl.home / ".kumactl").exists()


def test_add_checks_the_control_plane(kumactl, kumactl_cp):
    p = ok(kumactl.run("config", "control-planes", "add", "--name", "cp1",
                       "--address", f"http://{kumactl_cp.address}"))
    assert p.stdout == 'added Control Plane "cp1"\nswitched active Control Plane to "cp1"\n'
    p = ok(kumactl.run("config", "control-planes", "list"))
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["ACTIVE", "NAME", "ADDRESS"]
    assert any(line.startswith("*") and "cp1" in line for line in lines)


def test_add_refuses_unreachable_address(kumactl):
    p = kumactl.run("config", "control-planes", "add", "--name", "x",
                    "--address", "http://127.0.0.1:1")
    assert p.returncode == 1
    assert p.stderr.startswith("Error: could not connect to the Control Plane API Server: "
                               'Get "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: '
                               "connection refused"), p.stderr


def test_context_flag_selects_control_plane(kumactl, kumactl_cp):
    ok(kumactl.run("config", "control-planes", "add", "--name", "bad",
                   "--address", "http://127.0.0.1:1", "--skip-check"))
    ok(kumactl.run("config", "control-planes", "add", "--name", "good",
                   "--address", f"http://{kumactl_cp.address}"))
    ok(kumactl.run("config", "control-planes", "switch", "--name", "bad"))
    assert kumactl.run("get", "meshes").returncode == 1
    kumactl_cp.seed(DEFAULT_MESH)
    p = ok(kumactl.run("get", "meshes", "--context", "good"))
    assert "default" in p.stdout


def test_headers_and_token_reach_the_server(kumactl, fake_server):
    srv = fake_server(lambda s, h: reply(h, 200, '{"total": 0, "items": [], "next": null}'
                                         if h.path != "/" else
                                         '{"product": "Kuma", "version": "3.0.0"}'))
    ok(kumactl.run("config", "control-planes", "add", "--name", "f", "--address", srv.url,
                   "--headers", "x-a=1", "--auth-type", "tokens", "--auth-conf", "token=sekret"))
    p = ok(kumactl.run("get", "zones"))
    assert p.stdout == "NAME   AGE\n"
    method, path, headers, _ = srv.requests[-1]
    assert (method, path) == ("GET", "/zones")
    assert headers["x-a"] == "1"
    assert headers["authorization"] == "Bearer sekret"
    assert headers["user-agent"].startswith("kumactl/")


def test_api_error_body_is_formatted(kumactl, fake_server):
    body = json.dumps({"type": "/std-errors", "status": 400, "title": "Could not retrieve resources",
                       "detail": "Resource is not valid",
                       "invalid_parameters": [{"field": "size", "reason": "must be positive"}]})
    srv = fake_server(lambda s, h: reply(h, 200, '{"product": "Kuma", "version": "3.0.0"}')
                      if h.path == "/" else reply(h, 400, body))
    ok(kumactl.run("config", "control-planes", "add", "--name", "f", "--address", srv.url))
    p = kumactl.run("get", "meshes")
    assert p.returncode == 1
    assert p.stderr == ("Error: Could not retrieve resources (Resource is not valid)\n"
                        "* size: must be positive\n")


def test_version_mismatch_warns(kumactl, fake_server):
    srv = fake_server(lambda s, h: reply(h, 200, '{"product": "Kuma", "version": "2.9.0"}')
                      if h.path == "/" else reply(h, 200, '{"total":0,"items":[],"next":null}'))
    ok(kumactl.run("config", "control-planes", "add", "--name", "f", "--address", srv.url))
    p = ok(kumactl.run("get", "meshes"))
    assert "WARNING: You are using kumactl version" in p.stderr
    assert "but the server returned version: Kuma for 2.9.0" in p.stderr


# ----- apply / get / delete ------------------------------------------------------------

def test_apply_get_delete_cycle(kumactl_live, kumactl_cp):
    p = ok(kumactl_live.run("apply", "-f", "-", input=DEFAULT_MESH))
    assert p.stdout == 'resource type="Mesh" mesh="" name="default" Created\n'
    docs = "---\n".join([DP.format(name="web-1", app="web", address="10.0.0.1"),
                         DP.format(name="web-2", app="web", address="10.0.0.2"),
                         TIMEOUT.format(name="t1")])
    p = ok(kumactl_live.run("apply", "-f", "-", input=docs))
    assert p.stdout == ('resource type="Dataplane" mesh="default" name="web-1" Created\n'
                        'resource type="Dataplane" mesh="default" name="web-2" Created\n'
                        'resource type="MeshTimeout" mesh="default" name="t1" Created\n')
    p = ok(kumactl_live.run("apply", "-f", "-", input=docs))
    assert p.stdout.count("Updated") == 3

    p = ok(kumactl_live.run("get", "dataplanes"))
    rows = [line.split() for line in p.stdout.splitlines()]
    assert rows[0] == ["MESH", "NAME", "TAGS", "ADDRESS", "AGE"]
    assert [r[1] for r in rows[1:]] == ["web-1", "web-2"]
    assert "app=web" in p.stdout and "10.0.0.2" in p.stdout

    p = ok(kumactl_live.run("get", "dataplanes", "--size", "1"))
    assert p.stdout.endswith("\nRerun command with --offset=1 argument to retrieve more resources\n")
    p = ok(kumactl_live.run("get", "dataplanes", "--size", "1", "--offset", "1"))
    assert "web-2" in p.stdout and "web-1" not in p.stdout

    p = ok(kumactl_live.run("get", "meshtimeouts", "-m", "default"))
    assert p.stdout.splitlines()[0].split() == ["MESH", "NAME", "AGE"]
    p = ok(kumactl_live.run("get", "meshtimeout", "t1", "-o", "json"))
    doc = json.loads(p.stdout)
    assert doc["type"] == "MeshTimeout" and doc["spec"]["to"][0]["default"]["idleTimeout"] == "20s"
    p = ok(kumactl_live.run("get", "meshtimeout", "t1", "-oyaml"))
    y = yaml.safe_load(p.stdout)
    assert y["name"] == "t1" and list(p.stdout.splitlines())[0].startswith("creationTime:")
    p = ok(kumactl_live.run("get", "dataplane", "web-1", "-o", "yaml"))
    assert p.stdout.index("type: Dataplane") < p.stdout.index("networking:")
    p = ok(kumactl_live.run("get", "dataplanes", "-o", "json"))
    assert json.loads(p.stdout)["total"] == 2 and json.loads(p.stdout)["next"] is None

    p = ok(kumactl_live.run("delete", "dataplane", "web-1"))
    assert p.stdout == 'deleted Dataplane "web-1"\n'
    p = kumactl_live.run("delete", "dataplane", "web-1")
    assert p.returncode == 1 and p.stderr.endswith('Error: there is no Dataplane with name "web-1"\n')
    p = kumactl_live.run("get", "dataplane", "web-1")
    assert p.returncode == 1 and p.stderr.endswith("Error: No resources found in default mesh\n")
    p = kumactl_live.run("delete", "dataplane-insight", "x")
    assert p.returncode == 1 and "unknown TYPE: dataplane-insight. Allowed values: dataplane," in p.stderr


def test_apply_rejects_invalid_resources_before_sending(kumactl_live, kumactl_cp):
    bad = "type: MeshTimeout\nname: x\nmesh: default\nspec:\n  targetRef:\n    kind: Foo\n"
    p = kumactl_live.run("apply", "-f", "-", input=bad)
    assert p.returncode == 1
    assert p.stderr.startswith("resource[0]: failed to parse resource: spec.targetRef.kind")
    assert p.stderr.endswith("Error: failed to validate some resources\n")
    p = kumactl_live.run("apply", "-f", "-", input="type: Mesh\nname: ''\n")
    assert p.returncode == 1
    assert "resource[0]: failed to read meta: name: cannot be empty" in p.stderr


def test_apply_reports_server_errors(kumactl_live, kumactl_cp):
    p = kumactl_live.run("apply", "-f", "-", input=DP.format(name="x", app="a", address="1.1.1.1"))
    assert p.returncode == 1
    assert p.stderr.startswith(
        'Error: resource type="Dataplane" mesh="default" name="x": failed server side: '), p.stderr


def test_apply_no_input(kumactl_live):
    p = kumactl_live.run("apply", "-f", "-", input="")
    assert p.returncode == 1 and p.stderr.endswith("Error: no resource(s) passed to apply\n")
    p = kumactl_live.run("apply")
    assert p.returncode == 1 and 'Error: required flag(s) "file" not set' in p.stderr


def test_apply_template_and_url(kumactl_live, kumactl_cp, fake_server):
    tpl = "type: Mesh\nname: {{ name }}\n"
    srv = fake_server(lambda s, h: reply(h, 200, tpl, "application/yaml"))
    p = ok(kumactl_live.run("apply", "-f", srv.url + "/mesh.yaml", "-v", "name=from-url"))
    assert p.stdout == 'resource type="Mesh" mesh="" name="from-url" Created\n'
    p = ok(kumactl_live.run("get", "mesh", "from-url", "-o", "json"))
    assert json.loads(p.stdout)["name"] == "from-url"


def test_apply_signing_key_round_trip(kumactl_live, kumactl_cp):
    """The upstream example: a signing key applied as a GlobalSecret through -v."""
    key = ok(kumactl_live.run("generate", "signing-key")).stdout
    assert base64.b64decode(key).startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    doc = "type: GlobalSecret\nname: user-token-signing-key-0002\ndata: {{ key }}\n"
    ok(kumactl_live.run("apply", "-f", "-", "--var", f"key={key}", input=doc))
    p = ok(kumactl_live.run("get", "global-secret", "user-token-signing-key-0002", "-o", "json"))
    assert json.loads(p.stdout)["data"] == key


def test_signing_key_pem(kumactl, tmp_path):
    p = ok(kumactl.run("--no-config", "generate", "signing-key", "--format", "pem"))
    assert p.stdout.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    r = subprocess.run(["openssl", "rsa", "-check", "-noout"], input=p.stdout, text=True,
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    key = tmp_path / "key.pem"
    key.write_text(p.stdout)
    pub = ok(kumactl.run("--no-config", "generate", "public-key", "--signing-key-path", str(key)))
    assert pub.stdout.startswith("-----BEGIN RSA PUBLIC KEY-----\n")
    p = kumactl.run("--no-config", "generate", "signing-key", "--format", "der")
    assert p.returncode == 1 and p.stderr == "Error: invalid format\n"


def test_offline_user_token_is_signed_with_the_key(kumactl, tmp_path):
    key = tmp_path / "key.pem"
    key.write_text(ok(kumactl.run("--no-config", "generate", "signing-key", "--format", "pem")).stdout)
    tok = ok(kumactl.run("--no-config", "generate", "user-token", "--name", "bob", "--group", "g1",
                         "--valid-for", "1h", "--signing-key-path", str(key), "--kid", "7")).stdout
    head, claims, sig = tok.split(".")

    def b64(s):
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    assert json.loads(b64(head)) == {"alg": "RS256", "kid": "7", "typ": "JWT"}
    c = json.loads(b64(claims))
    assert c["Name"] == "bob" and c["Groups"] == ["g1"] and c["exp"] - c["iat"] == 3605
    pub = tmp_path / "pub.pem"
    subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                   capture_output=True)
    (tmp_path / "sig").write_bytes(b64(sig))
    (tmp_path / "data").write_text(f"{head}.{claims}")
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature",
                        str(tmp_path / "sig"), str(tmp_path / "data")], capture_output=True, text=True)
    assert r.returncode == 0 and "Verified OK" in r.stdout, r.stdout + r.stderr
    p = kumactl.run("--no-config", "generate", "user-token", "--name", "bob", "--valid-for", "1h",
                    "--signing-key-path", str(key))
    assert p.returncode == 1 and p.stderr == "Error: --kid is required when --signing-key-path is used\n"


# ----- tokens, inspect, version ---------------------------------------------------------

def test_generate_tokens(kumactl_live, kumactl_cp):
    # the store was reset: bring a user-token signing key back the upstream way, and
    # create the mesh through the API so the CP provisions its dataplane-token key
    key = ok(kumactl_live.run("generate", "signing-key")).stdout
    ok(kumactl_live.run("apply", "-f", "-", "-v", f"key={key}", input=(
        "type: GlobalSecret\nname: user-token-signing-key-1\ndata: {{ key }}\n")))
    ok(kumactl_live.run("apply", "-f", "-", input=DEFAULT_MESH))
    if kumactl_live.run("get", "secret", "dataplane-token-signing-key-default-1").returncode:
        key = ok(kumactl_live.run("generate", "signing-key")).stdout
        ok(kumactl_live.run("apply", "-f", "-", "-v", f"key={key}", input=(
            "type: Secret\nmesh: default\nname: dataplane-token-signing-key-default-1\n"
            "data: {{ key }}\n")))
    p = ok(kumactl_live.run("generate", "user-token", "--name", "john.doe@example.com",
                            "--group", "users", "--valid-for", "24h"))
    assert p.stdout.count(".") == 2 and "\n" not in p.stdout
    p = ok(kumactl_live.run("generate", "dataplane-token", "--name", "web-1", "--mesh", "default",
                            "--tag", "kuma.io/service=web,web-api", "--valid-for", "1h"))
    claims = json.loads(base64.urlsafe_b64decode(p.stdout.split(".")[1] + "=="))
    assert claims.get("Name") == "web-1" and claims.get("Mesh") == "default"
    p = kumactl_live.run("generate", "dataplane-token", "--mesh", "default")
    assert p.returncode == 1 and 'required flag(s) "valid-for" not set' in p.stderr


def test_inspect(kumactl_live, kumactl_cp):
    kumactl_cp.seed(DEFAULT_MESH)
    ok(kumactl_live.run("apply", "-f", "-", input=DP.format(name="web-1", app="web",
                                                           address="10.0.0.1")))
    p = ok(kumactl_live.run("inspect", "dataplanes"))
    lines = p.stdout.splitlines()
    assert lines[0].startswith("MESH      NAME    TAGS")
    assert "LAST CONNECTED AGO" in lines[0] and lines[0].rstrip().endswith("NOTES")
    assert lines[1].split()[:2] == ["default", "web-1"] and "Offline" in lines[1]
    p = ok(kumactl_live.run("inspect", "dataplanes", "-o", "json"))
    assert json.loads(p.stdout)["items"][0]["name"] == "web-1"
    p = ok(kumactl_live.run("inspect", "meshes"))
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["MESH", "DATAPLANES"]
    # MeshInsights are computed in the background: rows may not be there yet
    assert all(line.split()[0] == "default" for line in lines[1:])
    p = ok(kumactl_live.run("inspect", "zones"))
    assert p.stdout.splitlines()[0].split()[:2] == ["NAME", "STATUS"]


def test_inspect_dataplane_and_policy(kumactl_live, kumactl_cp):
    kumactl_cp.seed(DEFAULT_MESH)
    mtp = ("type: MeshTrafficPermission\nmesh: default\nname: mtp\nspec:\n  targetRef:\n"
           "    kind: Mesh\n  rules:\n  - default:\n      allow:\n      - spiffeID:\n"
           "          type: Prefix\n          value: spiffe://default\n")
    trace = ("type: MeshTrace\nmesh: default\nname: trace\nspec:\n  targetRef:\n    kind: Mesh\n"
             "  default:\n    backends:\n    - type: Zipkin\n      zipkin:\n"
             "        url: http://zipkin:9411/api/v2/spans\n")
    ok(kumactl_live.run("apply", "-f", "-", input=DP.format(name="web-1", app="web",
                                                           address="10.0.0.1") + "---\n" + mtp
                        + "---\n" + trace))
    p = kumactl_live.run("inspect", "dataplane", "web-1", "--shadow")
    assert p.returncode == 1
    assert p.stderr.endswith("Error: flag '--shadow' can be used only when '--type=config'\n")
    p = kumactl_live.run("inspect", "dataplane", "web-1", "--type", "nope")
    assert p.returncode == 1 and p.stderr.endswith("Error: invalid inspection type\n")

    # _policies lists the proxy-wide policies (MeshTrace, MeshMetric, ...), as upstream
    p = ok(kumactl_live.run("inspect", "dataplane", "web-1"))
    assert p.stdout.splitlines()[0].split() == ["Kind", "Origins"]
    assert "MeshTrace" in p.stdout and "MeshTrafficPermission" not in p.stdout, p.stdout
    p = ok(kumactl_live.run("inspect", "meshtrafficpermission", "mtp", "--new-api"))
    assert p.stdout.splitlines()[0].split() == ["Type", "Mesh", "Name"]
    assert "web-1" in p.stdout and p.stdout.endswith("\nTotal: 1\n")


def test_version(kumactl_live):
    p = ok(kumactl_live.run("version"))
    lines = p.stdout.splitlines()
    assert lines[0] == "Client: Kuma 3.0.0"
    assert lines[1].startswith("Server: Kuma ")


def test_version_without_control_plane(kumactl):
    ok(kumactl.run("config", "control-planes", "add", "--name", "x", "--address",
                   "http://127.0.0.1:1", "--skip-check"))
    p = ok(kumactl.run("version"))
    assert p.stdout == "Client: Kuma 3.0.0\n"
    assert p.stderr.startswith("Unable to connect to control plane: ")


# ----- command line ----------------------------------------------------------------------

def test_unknown_command_and_flag(kumactl):
    p = kumactl.run("--no-config", "frobnicate")
    assert p.returncode == 1 and p.stderr.startswith('Error: unknown command "frobnicate" for "kumactl"')
    p = kumactl.run("--no-config", "get", "meshes", "--bogus")
    assert p.returncode == 1 and p.stderr == "Error: unknown flag: --bogus\n"
    p = kumactl.run("--no-config", "--api-timeout", "soon", "version")
    assert p.returncode == 1 and 'time: invalid duration "soon"' in p.stderr
    p = ok(kumactl.run("--help"))
    assert "apply" in p.stdout and "inspect" in p.stdout


def test_bash_completion(kumactl, tmp_path):
    p = ok(kumactl.run("--no-config", "completion", "bash"))
    script = tmp_path / "kumactl.bash"
    script.write_text(p.stdout)
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def complete(words: str) -> list[str]:
        prog = (f"source {script}\nCOMP_WORDS=({words})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}}-1))\n"
                "_kumactl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
        out = subprocess.run(["bash", "-c", prog], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert "apply" in complete("kumactl ap")
    assert set(complete("kumactl get meshtraf")) == {"meshtrafficpermission", "meshtrafficpermissions"}
    assert "control-planes" in complete("kumactl config c")
    assert set(complete("kumactl get meshes -o ''")) == {"table", "yaml", "json"}
    assert "--mesh" in complete("kumactl get meshes --me")
    # flag values by command: export's --format and --profile, signing-key's --format
    assert set(complete("kumactl export --format ''")) == {"universal", "kubernetes"}
    assert set(complete("kumactl export -p fed")) == {"federation", "federation-with-policies"}
    assert set(complete("kumactl generate signing-key --format ''")) == {"pem-base64", "pem"}
    # a flag's value is not a command word; after the type argument no table word
    assert set(complete("kumactl get --mesh default meshtraf")) == {"meshtrafficpermission", "meshtrafficpermissions"}
    assert set(complete("kumactl get -m default --output=yaml meshtraf")) == {"meshtrafficpermission",
                                                                          "meshtrafficpermissions"}
    assert complete("kumactl get meshes ''") == []


def test_zsh_completion(kumactl, tmp_path):
    """`kumactl completion zsh`: the same completion through zsh's
    bashcompinit. zsh's own matching filters the words by the prefix typed
    (its compgen returns them all), so the test filters them as zsh does."""
    import shutil
    zsh = shutil.which("zsh")
    if not zsh:
        pytest.skip("zsh is not installed (scripts/install-deps.sh installs it)")
    p = ok(kumactl.run("--no-config", "completion", "zsh"))
    assert p.stdout.startswith("#compdef kumactl\n")
    script = tmp_path / "_kumactl"
    script.write_text(p.stdout)
    r = subprocess.run([zsh, "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def complete(*words: str) -> list[str]:
        arr = " ".join(f"'{w}'" for w in words)
        prog = (f"source {script}\nsetopt ksharrays\nCOMP_WORDS=({arr})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}}-1))\n"
                "_kumactl\nprint -l -- \"${COMPREPLY[@]}\"\n")
        out = subprocess.run([zsh, "-f", "-c", prog], capture_output=True, text=True,
                             env={**os.environ, "HOME": str(tmp_path)})
        assert out.returncode == 0, out.stderr
        return [w for w in out.stdout.split() if w.startswith(words[-1])]

    assert "apply" in complete("kumactl", "ap")
    assert set(complete("kumactl", "get", "meshtraf")) == {"meshtrafficpermission", "meshtrafficpermissions"}
    assert set(complete("kumactl", "export", "--format", "")) == {"universal", "kubernetes"}
    assert "--mesh" in complete("kumactl", "get", "meshes", "--me")


def test_fish_completion(kumactl, tmp_path):
    """`kumactl completion fish`, asked through fish's own completion engine
    (`complete -C`, which also filters by the prefix typed)."""
    import shutil
    fish = shutil.which("fish")
    if not fish:
        pytest.skip("fish is not installed (scripts/install-deps.sh installs it)")
    p = ok(kumactl.run("--no-config", "completion", "fish"))
    script = tmp_path / "kumactl.fish"
    script.write_text(p.stdout)
    r = subprocess.run([fish, "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def complete(line: str) -> list[str]:
        out = subprocess.run([fish, "--no-config", "-c", f"source {script}; complete -C '{line}'"],
                             capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)})
        assert out.returncode == 0, out.stderr
        return [w.split("\t")[0] for w in out.stdout.splitlines()]

    assert "apply" in complete("kumactl ap")
    assert set(complete("kumactl get meshtraf")) == {"meshtrafficpermission", "meshtrafficpermissions"}
    assert "control-planes" in complete("kumactl config c")
    assert set(complete("kumactl get meshes -o ")) == {"table", "yaml", "json"}
    assert "--mesh" in complete("kumactl get meshes --me")
    assert set(complete("kumactl export --format ")) == {"universal", "kubernetes"}
    assert set(complete("kumactl export -p fed")) == {"federation", "federation-with-policies"}
    assert set(complete("kumactl generate signing-key --format ")) == {"pem-base64", "pem"}
    # a file flag completes paths
    (tmp_path / "mesh.yaml").write_text("type: Mesh\nname: x\n")
    assert str(tmp_path / "mesh.yaml") in complete(f"kumactl apply -f {tmp_path}/me")
    # a flag's value is not a command word; after the type argument no table word
    assert set(complete("kumactl get --mesh default meshtraf")) == {"meshtrafficpermission", "meshtrafficpermissions"}
    assert complete("kumactl get meshes ") == []


def test_generate_tls_certificate_serves_the_https_api(kumactl, cp_factory, tmp_path):
    """kumactl generate tls-certificate as upstream's docs use it: a server
    pair for kuma-cp (general.tlsCertFile) and a client pair the HTTPS API
    requires (apiServer.https.tlsCaFile, requireClientCert); kumactl then
    talks to that API with --ca-cert-file and the client pair."""
    import stat
    d = tmp_path / "certs"
    d.mkdir()
    p = ok(kumactl.run("generate", "tls-certificate", "--type=server", "--hostname=localhost,127.0.0.1",
                       f"--key-file={d / 'server.key'}", f"--cert-file={d / 'server.crt'}"))
    assert p.stdout == f"Private key saved in {d / 'server.key'}\nCertificate saved in {d / 'server.crt'}\n"
    assert stat.S_IMODE((d / "server.key").stat().st_mode) == 0o400
    assert (d / "server.key").read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    ok(kumactl.run("generate", "tls-certificate", "--type=client", "--hostname", "admin", "--key-type=ecdsa",
                   f"--key-file={d / 'client.key'}", f"--cert-file={d / 'client.crt'}"))
    assert (d / "client.key").read_text().startswith("-----BEGIN EC PRIVATE KEY-----")
    both = kumactl.run("generate", "tls-certificate", "--type=client", "--hostname=x", "--key-file=-",
                       "--cert-file=-")
    assert both.returncode == 0 and "PRIVATE KEY" in both.stdout and "CERTIFICATE" in both.stdout
    bad = kumactl.run("generate", "tls-certificate", "--type=peer", "--hostname=x")
    assert bad.returncode != 0 and 'invalid certificate type "peer"' in bad.stderr

    cp = cp_factory(name="own-certs", test_hooks=False, env={
        "KUMA_GENERAL_TLS_CERT_FILE": str(d / "server.crt"), "KUMA_GENERAL_TLS_KEY_FILE": str(d / "server.key"),
        "KUMA_API_SERVER_HTTPS_REQUIRE_CLIENT_CERT": "true",
        "KUMA_API_SERVER_HTTPS_TLS_CA_FILE": str(d / "client.crt")})
    url = f"https://localhost:{cp.ports['api_https']}"
    ok(kumactl.run("config", "control-planes", "add", "--name", "tls", "--address", url,
                   "--ca-cert-file", str(d / "server.crt"), "--client-cert-file", str(d / "client.crt"),
                   "--client-key-file", str(d / "client.key")))
    p = ok(kumactl.run("get", "meshes"))
    assert "default" in p.stdout, p.stdout
    # without the client pair the API refuses
    ok(kumactl.run("config", "control-planes", "add", "--name", "anon", "--address", url,
                   "--ca-cert-file", str(d / "server.crt"), "--skip-check"))
    p = kumactl.run("get", "meshes")
    assert p.returncode != 0 and "client certificate" in p.stdout + p.stderr, p.stdout + p.stderr


def test_export_profiles_and_round_trip(kumactl_live, kumactl_cp, kumactl, cp_factory):
    """kumactl export as upstream: Meshes first (no default policies when
    applied again), the profile's types, GlobalSecrets last with the user
    token signing key at the very end and the CP's own CAs never; then the
    federation-with-policies export applied to a fresh control plane gives
    it the same resources."""
    ok(kumactl_live.run("apply", "-f", "-", input=DEFAULT_MESH + "---\ntype: Mesh\nname: other\n"))
    docs = "---\n".join([DP.format(name="web-1", app="web", address="10.0.0.1"), TIMEOUT.format(name="t1"),
                         "type: Secret\nmesh: default\nname: s1\ndata: aGVsbG8=\n",
                         "type: GlobalSecret\nname: user-token-signing-key-7\ndata: aGVsbG8=\n",
                         "type: GlobalSecret\nname: g1\ndata: aGVsbG8=\n"])
    ok(kumactl_live.run("apply", "-f", "-", input=docs))

    def export(*args):
        p = ok(kumactl_live.run("export", *args))
        head, _, rest = p.stdout.partition("\n")
        assert head.startswith("# Product: Kuma, Version: 3.0.0, Hostname: "), head
        return [d for d in yaml.safe_load_all(rest) if d]

    def keys(ds):
        return [(d["type"], d.get("mesh", ""), d["name"]) for d in ds]

    fed = export()  # federation: no targetRef policies, secrets included
    k = keys(fed)
    assert k[:2] == [("Mesh", "", "default"), ("Mesh", "", "other")], k
    assert all(d["skipCreatingInitialPolicies"] == ["*"] for d in fed[:2])
    assert ("Secret", "default", "s1") in k and ("MeshTimeout", "default", "t1") not in k
    assert ("Dataplane", "default", "web-1") not in k
    assert k[-2:] == [("GlobalSecret", "", "g1"), ("GlobalSecret", "", "user-token-signing-key-7")], k
    assert not any(n in ("envoy-admin-ca", "inter-cp-ca") for _, _, n in k)
    assert all("kuma.io/origin" not in (d.get("labels") or {}) for d in fed)
    # Secrets come right after the Meshes
    assert k.index(("Secret", "default", "s1")) < min(i for i, x in enumerate(k) if x[0] not in ("Mesh", "Secret"))

    withpol = export("--profile", "federation-with-policies")
    assert ("MeshTimeout", "default", "t1") in keys(withpol)
    everything = export("-p", "all")
    assert ("Dataplane", "default", "web-1") in keys(everything)
    assert not any(t in ("Secret", "GlobalSecret") for t, _, _ in keys(everything))  # admin types need -a
    nodp = export("--profile=no-dataplanes", "--include-admin")
    assert ("Dataplane", "default", "web-1") not in keys(nodp) and ("Secret", "default", "s1") in keys(nodp)

    p = kumactl_live.run("export", "--profile", "bogus")
    assert p.returncode == 1 and p.stderr.endswith('Error: invalid profile: "bogus"\n'), p.stderr
    p = kumactl_live.run("export", "--format", "helm")
    assert p.returncode == 1 and p.stderr.endswith('Error: invalid format: "helm"\n'), p.stderr

    # the migration: a fresh control plane takes the export as it is
    text = ok(kumactl_live.run("export", "--profile", "federation-with-policies")).stdout
    fresh = cp_factory(name="export-target", test_hooks=False)
    ok(kumactl.run("config", "control-planes", "add", "--name", "fresh", "--address",
                   f"http://127.0.0.1:{fresh.ports['api_http']}", "--overwrite"))
    p = ok(kumactl.run("apply", "-f", "-", input=text))
    assert 'resource type="MeshTimeout" mesh="default" name="t1"' in p.stdout, p.stdout
    got = json.loads(ok(kumactl.run("get", "meshtimeout", "t1", "-m", "default", "-o", "json")).stdout)
    assert got["spec"]["to"][0]["default"]["idleTimeout"] == "20s"
    assert "s1" in ok(kumactl.run("get", "secrets", "-m", "default")).stdout
    # skipCreatingInitialPolicies held: the other mesh got no default policies
    assert ok(kumactl.run("get", "meshtimeouts", "-m", "other")).stdout.count("\n") == 1
