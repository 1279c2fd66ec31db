# SPDX-License-Identifier: Apache-2.0
"""Small HTTP helpers on the standard library (http.client): one request per
connection, the path sent exactly as given (no re-encoding, so
`filter[labels.x]=y` and `dataplanes+insights` reach the server verbatim),
and a raw-socket helper for malformed or truncated requests."""

import json as _json
import socket
import time
from dataclasses import dataclass, field
from http.client import HTTPConnection
from typing import Any, Optional


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    method: str = ""
    path: str = ""
    elapsed: float = 0.0
    _json: Any = field(default=None, repr=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Body parsed as JSON (raises ValueError with the body on failure)."""
        if self._json is None:
            try:
                self._json = _json.loads(self.body)
            except ValueError as e:
                raise ValueError(f"{self.method} {self.path} -> {self.status}: body is not JSON ({e}): "
                                 f"{self.text[:2000]!r}") from None
        return self._json

    def describe(self, limit: int = 4000) -> str:
        body = self.text
        if len(body) > limit:
            body = body[:limit] + f"... ({len(self.body)} bytes)"
        return f"{self.method} {self.path} -> {self.status}\n{body}"


def _encode_body(body: Any, headers: dict[str, str]) -> Optional[bytes]:
    if body is None:
        return None
    if isinstance(body, (dict, list)):
        headers.setdefault("Content-Type", "application/json")
        return _json.dumps(body).encode()
    if isinstance(body, str):
        return body.encode()
    return bytes(body)


def request(host: str, port: int, method: str, path: str, body: Any = None,
            headers: Optional[dict[str, str]] = None, timeout: float = 15.0) -> Response:
    """One HTTP/1.1 request; never raises on 4xx/5xx. A dict/list body is sent
    as JSON with Content-Type application/json; str and bytes as given."""
    hdrs = dict(headers or {})
    data = _encode_body(body, hdrs)
    conn = HTTPConnection(host, port, timeout=timeout)
    start = time.monotonic()
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        return Response(status=resp.status,
                        headers={k.lower(): v for k, v in resp.getheaders()},
                        body=raw, method=method, path=path,
                        elapsed=time.monotonic() - start)
    finally:
        conn.close()


class ApiClient:
    """Client bound to one API server. `anonymous=True` adds an
    X-Forwarded-For header: upstream's localhost authenticator then no longer
    treats the request as a direct loopback call (pkg/api-server/authn/localhost.go),
    so the caller is mesh-system:anonymous unless it presents a token."""

    def __init__(self, host: str, port: int, token: Optional[str] = None,
                 anonymous: bool = False, timeout: float = 15.0):
        self.host = host
        self.port = port
        self.token = token
        self.anonymous = anonymous
        self.timeout = timeout

    @property
    def address(self) -> str:
        """host:port as it appears in the Host header and in `next` links."""
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"

    def with_token(self, token: Optional[str], anonymous: bool = True) -> "ApiClient":
        return ApiClient(self.host, self.port, token=token, anonymous=anonymous, timeout=self.timeout)

    def as_anonymous(self) -> "ApiClient":
        return ApiClient(self.host, self.port, token=None, anonymous=True, timeout=self.timeout)

    def _headers(self, extra: Optional[dict[str, str]]) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.anonymous:
            h["X-Forwarded-For"] = "203.0.113.7"
        if self.token is not None:
            h["Authorization"] = f"Bearer {self.token}"
        if extra:
            h.update(extra)
        return h

    def request(self, method: str, path: str, body: Any = None,
                headers: Optional[dict[str, str]] = None, timeout: Optional[float] = None) -> Response:
        return request(self.host, self.port, method, path, body,
                       self._headers(headers), timeout or self.timeout)

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def put(self, path: str, body: Any = None, **kw) -> Response:
        return self.request("PUT", path, body, **kw)

    def post(self, path: str, body: Any = None, **kw) -> Response:
        return self.request("POST", path, body, **kw)

    def delete(self, path: str, **kw) -> Response:
        return self.request("DELETE", path, **kw)


def raw_exchange(host: str, port: int, data: bytes, timeout: float = 5.0,
                 half_close: bool = True) -> bytes:
    """Send raw bytes, optionally shut down the write side, and read until
    the server closes or `timeout` passes. Returns whatever came back
    (possibly b""). Never raises on a reset or a timeout."""
    out = bytearray()
    with socket.create_connection((host, port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except OSError:   # timeout, reset, broken pipe, shutdown after the peer closed
            pass
    return bytes(out)


def status_of_raw(resp: bytes) -> Optional[int]:
    """Status code from a raw HTTP/1.x response, None when there is none."""
    line = resp.split(b"\r\n", 1)[0]
    parts = line.split()
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None
