# SPDX-License-Identifier: Apache-2.0
"""Where things live: the repository, the build directory holding kuma-cp,
and the upstream conformance data (shared/conformance/kuma beside the repo).
Every location can be overridden from the environment."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def build_dir() -> Path:
    """KUMA_BUILD_DIR, or <repo>/build."""
    env = os.environ.get("KUMA_BUILD_DIR")
    return Path(env).resolve() if env else REPO / "build"


def kuma_cp_binary() -> Path:
    """KUMA_CP_BIN, or <build dir>/kuma-cp."""
    env = os.environ.get("KUMA_CP_BIN")
    return Path(env).resolve() if env else build_dir() / "kuma-cp"


def conformance_root() -> Path:
    """KUMA_CONFORMANCE_DIR, or <repo>/../shared/conformance/kuma."""
    env = os.environ.get("KUMA_CONFORMANCE_DIR")
    return Path(env).resolve() if env else (REPO.parent / "shared" / "conformance" / "kuma").resolve()


def api_testdata() -> Path:
    """Upstream pkg/api-server/testdata inside the conformance root."""
    return conformance_root() / "pkg" / "api-server" / "testdata"


def extracted(*parts: str) -> Path:
    """A file under the conformance root's _extracted/ tree."""
    return conformance_root().joinpath("_extracted", *parts)


def log_dir() -> Path:
    """KUMA_TEST_LOG_DIR, or <build dir>/test-logs (created on demand)."""
    env = os.environ.get("KUMA_TEST_LOG_DIR")
    d = Path(env) if env else build_dir() / "test-logs"
    d.mkdir(parents=True, exist_ok=True)
    return d
