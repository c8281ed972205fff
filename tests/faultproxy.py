"""An HTTP proxy on loopback in front of a server (S3, MLflow) injecting the faults it is told to, in order.

Each request takes the next fault queued for requests like it (`inject_on`: method and a piece of the
path), else the next queued for any request (`inject`), or passes through when none is left:
- ``"pass"``: forwarded as it is (to let a targeted request through before the one to fault);
- ``"503"`` / ``"500"``: an S3 error answer (SlowDown, InternalError), nothing forwarded;
- ``"reset"``: the connection is reset without an answer, nothing forwarded;
- ``"stall"``: no answer for `stall_seconds`, then a reset;
- ``"cut"``: the request goes upstream with half its body (an upload broken mid-way), then both
  connections are reset.

Example:
    >>> with FaultProxy(s3_endpoint) as proxy:
    ...     proxy.inject("503", "reset")
    ...     lake = Lake(open_store("s3://bucket/lake", endpoint_url=proxy.url))
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

ERRORS = {"503": ("SlowDown", "Please reduce your request rate."), "500": ("InternalError", "Try again.")}


class FaultProxy:
    """The proxy; `seen` lists (method, fault or "pass") per request, in order."""

    def __init__(self, upstream: str, stall_seconds: float = 5.0) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.stall_seconds = stall_seconds
        self.faults: deque[str] = deque()
        self.targeted: dict[tuple[str, str], deque[str]] = {}  # (method, piece of path) -> faults
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, *faults: str) -> None:
        """Queue faults for the next requests."""
        with self._lock:
            self.faults.extend(faults)

    def inject_on(self, method: str, path_piece: str, *faults: str) -> None:
        """Queue faults for the next `method` requests whose path contains `path_piece`."""
        with self._lock:
            self.targeted.setdefault((method, path_piece), deque()).extend(faults)

    def next_fault(self, method: str, path: str) -> str | None:
        with self._lock:
            queues = [q for (m, piece), q in self.targeted.items() if m == method and piece in path and q]
            queue = queues[0] if queues else self.faults
            fault = queue.popleft() if queue else None
            self.seen.append((method, fault or "pass"))
            return fault

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: the resets it makes on purpose end its handlers with errors."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def proxy(self) -> FaultProxy:
        assert isinstance(self.server, _Server)
        return self.server.proxy

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _any(self) -> None:
        body = self._body()
        fault = self.proxy.next_fault(self.command, self.path)
        if fault in ERRORS:
            code, message = ERRORS[fault]
            xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            self.send_response(int(fault))
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(xml)))
            self.end_headers()
            self.wfile.write(xml)
            return
        if fault == "stall":
            time.sleep(self.proxy.stall_seconds)
        if fault == "cut":
            self._forward_half(body)
        if fault in ("reset", "stall", "cut"):
            self._reset()
            return
        self._forward(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        return headers

    def _forward(self, body: bytes) -> None:
        upstream = http.client.HTTPConnection(self.proxy.upstream, timeout=30)
        upstream.request(self.command, self.path, body=body, headers=self._headers(body))
        reply = upstream.getresponse()
        data = reply.read()
        self.send_response(reply.status, reply.reason)
        for key, value in reply.getheaders():
            if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    def _forward_half(self, body: bytes) -> None:
        host, port = self.proxy.upstream.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=30)
        head = f"{self.command} {self.path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in self._headers(body).items()
        )
        upstream.sendall(head.encode() + b"\r\n" + body[: len(body) // 2])
        time.sleep(0.2)
        _abort(upstream)

    def _reset(self) -> None:
        self.close_connection = True
        _abort(self.connection)

    do_GET = do_PUT = do_POST = do_PATCH = do_HEAD = do_DELETE = _any


def _abort(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dropped connection looks to its peer."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
