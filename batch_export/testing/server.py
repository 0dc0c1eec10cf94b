"""The emulator: a real HTTP server on 127.0.0.1 that answers like the Geonode Scraper API.

It serves ``GET /v1/batch/{job_id}`` and ``GET /v1/batch/jobs`` from job documents, over
HTTP/1.1 with keep-alive, one thread per connection. Every request is recorded (see
:class:`RequestRecord`); :class:`~batch_export.testing.faults.Faults` makes it misbehave on
purpose, reproducibly. It listens on the loopback address only, whatever the port.

Example:

    >>> import requests
    >>> from batch_export.testing import Emulator, generate_job
    >>> with Emulator(jobs=[generate_job(job_id="j1", items=12)], api_key="k") as emu:
    ...     page = requests.get(f"{emu.base_url}/v1/batch/j1", params={"page": 2},
    ...                         headers={"X-Api-Key": "k"}, timeout=5).json()
    >>> page["status"], [item["input_index"] for item in page["results"]]
    ('completed', [10, 11])
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from batch_export.testing._app import Api, Request, Response
from batch_export.testing.faults import Faults
from batch_export.testing.jobs import JobDoc, load_jobs
from batch_export.testing.submit import BatchDesk, SubmitSettings

__all__ = ["HOST", "Emulator", "RequestRecord"]

HOST = "127.0.0.1"
_MAX_REQUEST_BODY = 1 << 20


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator answered.

    ``started`` and ``ended`` are :func:`time.monotonic` readings (``ended``: the answer was
    ready to send, after any injected latency); ``in_flight`` is how many
    requests were being served when this one started, itself included; ``fault`` is the kind
    of fault injected (``throttle``, ``server_error``, ``drop``, ``truncate``) or None.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    fault: str | None
    started: float
    ended: float
    in_flight: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # eight clients connecting at once overflow the default of 5

    def __init__(self, emulator: Emulator, port: int) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((HOST, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is normal traffic here, not an error to print.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """End every kept-alive connection, so that no thread serves after stop()."""
        with self.connections_lock:
            open_sockets = list(self.connections)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def version_string(self) -> str:
        return "batch-export-emulator"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; without this, Nagle's algorithm and delayed
        # ACKs can hold the body back for 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log on stderr."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_REQUEST_BODY:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        emulator = self.server.emulator
        started, in_flight = emulator._enter()
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query, True).items()}

        def log(status: int, fault: str | None) -> None:
            ended = time.monotonic()
            record = RequestRecord(
                self.command, split.path, query, status, fault, started, ended, in_flight
            )
            emulator._record(record)

        try:
            response = self._respond(split.path, query)
        except Exception:
            log(500, None)
            emulator._leave()
            raise
        # Logged, and out of the in-flight count, before the first byte goes out: a client
        # that has its answer finds its request in the log, and no longer in flight.
        log(response.status, response.fault)
        emulator._leave()
        self._send(response)

    def _respond(self, path: str, query: dict[str, str]) -> Response:
        body = self._read_body()
        api = self.server.emulator._api
        api_key = self.headers.get("X-Api-Key")
        request = Request(self.command, path, query, api_key, api.next_number(), body)
        response = api.respond(request)
        if api.faults.latency_ms:
            time.sleep(api.faults.latency_ms / 1000)
        return response

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if response.drop_at is None:
            self.wfile.write(response.body)
            return
        self.wfile.write(response.body[: response.drop_at])
        self.close_connection = True


class Emulator:
    """A loopback HTTP server answering like the API, for tests, demos and benchmarks.

    ``jobs`` are job documents (see :mod:`batch_export.testing.jobs`); ``data_dir`` adds every
    ``*.json`` of a folder. ``port=0`` takes a free port. Requests without ``X-Api-Key:
    <api_key>`` get 401. Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    ``submit`` opens the submitting side (``POST /v1/batch``, ``DELETE``, the concurrency
    usage; see :mod:`batch_export.testing.submit`), whose jobs and log are :attr:`desk`'s.

    Example:

        >>> from batch_export.testing import Emulator, Faults, generate_job
        >>> emu = Emulator(jobs=[generate_job(job_id="j1")], faults=Faults(throttle_rate=0.5))
        >>> emu.start().base_url.startswith("http://127.0.0.1:")
        True
        >>> emu.stop()
    """

    def __init__(
        self,
        *,
        jobs: Iterable[JobDoc] = (),
        data_dir: str | os.PathLike[str] | None = None,
        api_key: str = "test-key",
        faults: Faults | None = None,
        port: int = 0,
        submit: SubmitSettings | None = None,
    ) -> None:
        self._api = Api(api_key=api_key, faults=faults or Faults())
        self.desk = None if submit is None else BatchDesk(self._api, submit)
        if self.desk is not None:
            self._api.routes.append(self.desk.respond)
        for doc in load_jobs(data_dir) if data_dir is not None else []:
            self._api.add_job(doc)
        for doc in jobs:
            self._api.add_job(doc)
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stats_lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._in_flight = 0
        self._max_in_flight = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Listen on 127.0.0.1 and serve in a background thread; returns the emulator."""
        if self._server is not None:
            raise RuntimeError(f"The emulator is already serving at {self.base_url}")
        self._server = _Server(self, self._port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"batch-export-emulator:{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection; a no-op when not serving."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "stopped"
        return f"<Emulator {where}, {self._api.job_count()} jobs>"

    # --- configuration --------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on; raises RuntimeError before :meth:`start`."""
        if self._server is None:
            raise RuntimeError("The emulator is not serving: call start() or use `with`.")
        port: int = self._server.server_address[1]
        return port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, the value for ``SCRAPER_API_BASE_URL``."""
        return f"http://{HOST}:{self.port}"

    @property
    def api_key(self) -> str:
        """The key that requests must send as ``X-Api-Key``."""
        return self._api.api_key

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._api.faults

    def set_faults(self, faults: Faults) -> None:
        """Change the faults while serving; request numbering starts again at 1."""
        self._api.set_faults(faults)

    def add_job(self, doc: JobDoc) -> None:
        """Serve one more job document (validated; a job with the same job_id is replaced)."""
        self._api.add_job(doc)

    @property
    def job_count(self) -> int:
        """How many jobs are served."""
        return self._api.job_count()

    def polls(self, job_id: str) -> int:
        """How many times the job's status was requested since the last :meth:`reset_polls`."""
        return self._api.polls(job_id)

    def reset_polls(self) -> None:
        """Forget every poll, so that processing jobs start over at ``queued``."""
        self._api.reset_polls()

    # --- statistics -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, in the order the answers ended."""
        with self._stats_lock:
            return list(self._records)

    @property
    def max_in_flight(self) -> int:
        """The most requests served at the same time since the last :meth:`reset_stats`."""
        with self._stats_lock:
            return self._max_in_flight

    def reset_stats(self) -> None:
        """Empty the request log and reset :attr:`max_in_flight`."""
        with self._stats_lock:
            self._records.clear()
            self._max_in_flight = self._in_flight

    def _enter(self) -> tuple[float, int]:
        with self._stats_lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return time.monotonic(), self._in_flight

    def _record(self, record: RequestRecord) -> None:
        with self._stats_lock:
            self._records.append(record)

    def _leave(self) -> None:
        with self._stats_lock:
            self._in_flight -= 1
