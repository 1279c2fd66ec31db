# SPDX-License-Identifier: Apache-2.0
"""A real PostgreSQL 15 (Debian's binaries) for the tests: initdb into a
temporary directory as the `postgres` user when running as root (initdb
refuses root), listen on a free loopback port, create one database per test,
restart or stop on demand, and remove everything afterwards."""

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from . import paths
from .ports import free_port

PG_BIN = Path(os.environ.get("KUMA_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
_db_counter = itertools.count(1)


def available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def _as_pg_user(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + args
    return args


class Postgres:
    user = "kuma"

    def __init__(self):
        self.dir: Optional[str] = None
        self.port = 0

    @property
    def data(self) -> str:
        return os.path.join(self.dir, "data")

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        cmd = _as_pg_user([str(PG_BIN / "pg_ctl"), "-D", self.data, "-w", "-t", "30",
                           "-l", os.path.join(self.dir, "postgres.log"), "-o", opts, *args])
        return subprocess.run(cmd, capture_output=True, text=True, check=check)

    def start(self) -> "Postgres":
        self.dir = tempfile.mkdtemp(prefix="kuma-pg-", dir=paths.log_dir())
        os.chmod(self.dir, 0o777)
        if os.geteuid() == 0:
            shutil.chown(self.dir, user="postgres")
        self.port = free_port()
        subprocess.run(_as_pg_user([str(PG_BIN / "initdb"), "-D", self.data, "-A", "trust",
                                    "-U", self.user, "--no-sync"]),
                       capture_output=True, text=True, check=True)
        self._pg_ctl("start")
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.dir:
            self._pg_ctl("stop", "-m", mode, check=False)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server (dropping every connection), optionally stay down
        for a while, and start it again on the same port."""
        self._pg_ctl("stop", "-m", "fast")
        if down_seconds:
            time.sleep(down_seconds)
        self._pg_ctl("start")

    def destroy(self) -> None:
        self.stop("immediate")
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def psql(self, sql: str, db: str = "postgres") -> str:
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                              "-d", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             capture_output=True, text=True, check=True)
        return out.stdout

    def new_database(self) -> str:
        name = f"kuma_{os.getpid()}_{next(_db_counter)}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def env(self, db: str) -> dict[str, str]:
        """KUMA_* variables pointing kuma-cp at database <db>."""
        return {
            "KUMA_STORE_TYPE": "postgres",
            "KUMA_STORE_POSTGRES_HOST": "127.0.0.1",
            "KUMA_STORE_POSTGRES_PORT": str(self.port),
            "KUMA_STORE_POSTGRES_USER": self.user,
            "KUMA_STORE_POSTGRES_PASSWORD": "kuma",  # trust auth: any value
            "KUMA_STORE_POSTGRES_DB_NAME": db,
            "KUMA_STORE_POSTGRES_CONNECTION_TIMEOUT": "2",
        }

    def migrate(self, db: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
        env.update(self.env(db))
        subprocess.run([str(paths.kuma_cp_binary()), "migrate", "up"], env=env,
                       capture_output=True, text=True, check=True)
