"""A hostile loopback server: raw bytes on a socket, scripted per case.

Where :mod:`tests.scripted` speaks well-formed HTTP with odd contents, this one writes
whatever a case says: broken status lines, endless or trickling bodies, gzip bombs, absurd
headers. A case is a function of the connection's request (its path and query) and the
number of requests seen so far, writing to the socket; it may sleep, loop or hang up.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.scripted import item, job_body

Writer = Callable[[socket.socket, "Request"], None]


@dataclass(frozen=True)
class Request:
    """What the client asked: the path, the query, and which request of the run it is."""

    number: int
    path: str
    query: dict[str, str]
    headers: dict[str, str]


def response(
    status: int | str = 200,
    body: bytes | str | Any = b"",
    headers: dict[str, str] | None = None,
    *,
    length: bool = True,
) -> bytes:
    """One whole HTTP/1.1 answer as bytes (a JSON body when ``body`` is not bytes or text)."""
    if isinstance(body, str):
        payload = body.encode()
    elif isinstance(body, bytes):
        payload = body
    else:
        payload = json.dumps(body).encode()
    head = [f"HTTP/1.1 {status} X" if isinstance(status, int) else status]
    fields = {"Content-Type": "application/json", **(headers or {})}
    if length:
        fields.setdefault("Content-Length", str(len(payload)))
    head += [f"{name}: {value}" for name, value in fields.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload


def job_answer(job_id: str = "j1", count: int = 1, **fields: Any) -> bytes:
    """A finished job's status response, every item on one page."""
    return response(body=job_body(job_id, [item(i) for i in range(count)], **fields))


def send(data: bytes) -> Writer:
    """A case that answers ``data`` to every request."""

    def write(sock: socket.socket, request: Request) -> None:
        sock.sendall(data)

    return write


def trickle(head: bytes, byte: bytes = b" ", every: float = 0.5) -> Writer:
    """Send ``head``, then one ``byte`` every ``every`` seconds, until the client hangs up."""

    def write(sock: socket.socket, request: Request) -> None:
        sock.sendall(head)
        while True:
            time.sleep(every)
            sock.sendall(byte)

    return write


def endless(head: bytes, chunk: bytes) -> Writer:
    """Send ``head``, then ``chunk`` again and again, until the client hangs up."""

    def write(sock: socket.socket, request: Request) -> None:
        sock.sendall(head)
        while True:
            sock.sendall(chunk)

    return write


def gzip_bomb(inflated_mb: int) -> bytes:
    """A 200 answer whose gzip body inflates to ``inflated_mb`` MiB of spaces."""
    body = gzip.compress(b" " * (inflated_mb * 2**20), compresslevel=9)
    return response(body=body, headers={"Content-Encoding": "gzip"})


class HostileServer:
    """Accepts connections on loopback and runs ``case`` for each request, in a thread."""

    def __init__(self, case: Writer) -> None:
        self.case = case
        self.requests: list[Request] = []
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._connection, args=(sock,), daemon=True).start()

    def _connection(self, sock: socket.socket) -> None:
        sock.settimeout(30)
        reader = sock.makefile("rb")
        with suppress(OSError, ValueError), sock, reader:
            while not self._stop.is_set():
                request = self._read_request(reader)
                if request is None:
                    return
                self.case(sock, request)

    def _read_request(self, reader: Any) -> Request | None:
        line = reader.readline(65536)
        if not line:
            return None
        target = line.decode("latin-1").split(" ")[1]
        headers: dict[str, str] = {}
        while (field := reader.readline(65536)) not in (b"\r\n", b"\n", b""):
            name, _, value = field.decode("latin-1").partition(":")
            headers[name.strip()] = value.strip()
        parts = urlsplit(target)
        with self._lock:
            request = Request(
                number=len(self.requests),
                path=parts.path,
                query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                headers=headers,
            )
            self.requests.append(request)
        return request


@contextmanager
def hostile_server(case: Writer) -> Iterator[HostileServer]:
    """Serve ``case`` on loopback for the duration of the block."""
    server = HostileServer(case)
    server.start()
    try:
        yield server
    finally:
        server.stop()
