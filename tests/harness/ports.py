# SPDX-License-Identifier: Apache-2.0
"""Free loopback TCP ports chosen at run time. A port is taken from the kernel
(bind to port 0), released, and remembered so that one pytest process never
hands the same port out twice."""

import socket
import threading

_lock = threading.Lock()
_handed_out: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago and has not
    been returned before by this process."""
    with _lock:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("could not find a free loopback port")


def free_ports(n: int) -> list[int]:
    """n distinct free ports."""
    return [free_port() for _ in range(n)]
