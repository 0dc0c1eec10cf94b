"""A loopback HTTP server that answers from a script: for tests of how the client copes.

The emulator (batch_export.testing) is the faithful API; this one misbehaves on purpose, one
scripted answer at a time, and records what it was asked (headers included).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Answer:
    """One scripted answer. ``cut_at`` sends that many body bytes, then closes the socket."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    cut_at: int | None = None

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


Script = Callable[[int, str, dict[str, str]], Answer]


def job_body(job_id: str, results: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A finished job's status response around ``results``."""
    body: dict[str, Any] = {
        "job_id": job_id,
        "status": "completed",
        "batch_config": {"formats": ["markdown"]},
        "token_summary": {"tokens_charged_total": len(results), "tokens_reserved": 0},
        "total_urls": len(results),
        "completed_urls": len(results),
        "failed_urls": 0,
        "cancelled_urls": 0,
        "pending_urls": 0,
        "invalid_urls": [],
        "created_at": "2026-05-26T10:30:00Z",
        "completed_at": "2026-05-26T10:31:00Z",
        "results": results,
    }
    body.update(fields)
    return body


def listing_entry(doc: dict[str, Any]) -> dict[str, Any]:
    """A job's status body (an emulator job document) as the listing shows the job."""
    return {
        "job_id": doc["job_id"],
        "status": doc["status"],
        "accepted_urls": doc["total_urls"],
        "completed_urls": doc["completed_urls"],
        "failed_urls": doc["failed_urls"],
        "config": doc["batch_config"],
        "created_at": doc["created_at"],
        "completed_at": doc["completed_at"],
    }


def item(index: int, **fields: Any) -> dict[str, Any]:
    """A completed item."""
    base: dict[str, Any] = {
        "input_index": index,
        "url": f"https://example.com/{index}",
        "status": "completed",
        "error_code": None,
        "error_message": None,
        "data": {"markdown": f"# Page {index}", "html": None, "links": None},
        "metadata": {
            "http_status": 200,
            "duration_ms": 100 + index,
            "retry_count": 0,
            "tokens_charged": 1,
        },
    }
    base.update(fields)
    return base


def paged(job_id: str, items: list[dict[str, Any]], **fields: Any) -> Script:
    """A script that serves ``items`` paginated like the API."""

    def answer(_: int, path: str, query: dict[str, str]) -> Answer:
        page, size = int(query.get("page", 1)), int(query.get("page_size", 10))
        body = job_body(job_id, items, **fields)
        body["results"] = items[(page - 1) * size : page * size]
        return Answer(body=body)

    return answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.server.lock:
            number = len(self.server.seen)
            self.server.seen.append(Seen(parts.path, query, dict(self.headers.items())))
        answer = self.server.script(number, parts.path, query)
        payload = answer.payload()
        self.send_response(answer.status)
        headers = {"Content-Type": "application/json", **answer.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if answer.cut_at is None:
            self.wfile.write(payload)
            return
        self.wfile.write(payload[: answer.cut_at])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up (timeouts in tests) is expected, not news

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def scripted_server(
    script: Script | list[Answer], *, tls: ssl.SSLContext | None = None
) -> Iterator[_Server]:
    """Serve ``script`` (a function, or answers given in turn, the last repeated) on loopback;
    over TLS with ``tls`` (a server context), on the same ``base_url`` with ``https``."""
    if isinstance(script, list):
        answers = script

        def script_fn(number: int, path: str, query: dict[str, str]) -> Answer:
            return answers[min(number, len(answers) - 1)]

        server = _Server(script_fn)
    else:
        server = _Server(script)
    if tls is not None:  # each connection's handshake is made in its own handler thread
        server.socket = tls.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
