"""The libcurl loop: one thread for every request in flight, each request bounded.

These drive :class:`batch_export.fetch.curl.CurlLoop` directly, against raw loopback servers
(:mod:`tests.hostile`) and the scripted one; the client's tests and the hostile corpus run
the same loop end to end.
"""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pycurl
import pytest

from batch_export.fetch import curl
from batch_export.fetch.client import ApiClient
from batch_export.fetch.curl import ERROR_BODY_PREFIX, CurlLoop, Request, Route, Transfer
from batch_export.fetch.pages import iter_result_pages
from batch_export.fetch.throttle import AdaptiveLimit
from batch_export.job import JobStatus
from tests.conftest import CANARY_KEY
from tests.hostile import endless, hostile_server, response, send, trickle
from tests.scripted import Answer, item, job_body, paged, scripted_server


def _get(url: str, *, timeout: float = 5.0, limit: int = 2**20, **options: object) -> Transfer:
    request = Request(url=url, headers=(), timeout=timeout, limit=limit, route=Route(), **options)  # type: ignore[arg-type]
    transfer = CurlLoop.shared().submit(request)
    transfer.wait()
    return transfer


def test_an_answer_comes_whole_with_its_status_and_fields() -> None:
    answer = response(201, body=b'{"a": 1}', headers={"Retry-After": "3", "X-Other": "no"})
    with hostile_server(send(answer)) as server:
        transfer = _get(server.base_url + "/x", ok=201)
    assert (transfer.status, transfer.body, transfer.failure) == (201, b'{"a": 1}', None)
    assert transfer.fields == {"retry-after": "3", "content-length": "8"}


def test_a_gzip_bomb_stops_at_the_bound_of_decoded_bytes() -> None:
    bomb = gzip.compress(b" " * (8 * 2**20))  # 8 KB on the wire, 8 MB decoded
    with hostile_server(send(response(body=bomb, headers={"Content-Encoding": "gzip"}))) as server:
        transfer = _get(server.base_url, limit=100_000)
    assert transfer.failure is not None and transfer.failure.reason == "too_large"
    assert transfer.body == b""


def test_a_body_announced_past_the_bound_is_not_read() -> None:
    head = response(headers={"Content-Length": "5000"}, length=False)
    with hostile_server(endless(head, b"x" * 1000)) as server:
        transfer = _get(server.base_url, limit=4999)
    assert transfer.failure is not None
    assert (transfer.failure.reason, transfer.failure.announced) == ("announced", 5000)


def test_an_endless_body_is_cut_at_the_bound() -> None:
    head = response(headers={"Transfer-Encoding": "chunked"}, length=False)
    with hostile_server(endless(head, b"10000\r\n" + b" " * 65536 + b"\r\n")) as server:
        transfer = _get(server.base_url, limit=2**20)
    assert transfer.failure is not None and transfer.failure.reason == "too_large"


def test_an_endless_error_answer_is_read_for_its_prefix_only() -> None:
    head = response(503, headers={"Connection": "close"}, length=False)
    with hostile_server(endless(head, b"e" * 65536)) as server:
        started = time.monotonic()
        transfer = _get(server.base_url, timeout=20)
    assert time.monotonic() - started < 5  # not the deadline: the prefix was enough
    assert (transfer.status, transfer.failure) == (503, None)
    assert transfer.body == b"e" * ERROR_BODY_PREFIX


def test_a_redirect_body_is_never_read() -> None:
    head = response(302, headers={"Location": "/elsewhere", "Content-Length": str(2**40)})
    with hostile_server(endless(head, b"x" * 65536)) as server:
        transfer = _get(server.base_url, limit=2**20)
    assert (transfer.status, transfer.body, transfer.failure) == (302, b"", None)
    assert transfer.fields["location"] == "/elsewhere"


def test_an_error_answer_cut_short_keeps_what_came() -> None:
    with scripted_server([Answer(status=502, body=b"<h1>Bad Gateway</h1>" * 10, cut_at=20)]) as s:
        transfer = _get(s.base_url)
    assert (transfer.status, transfer.body, transfer.failure) == (
        502,
        b"<h1>Bad Gateway</h1>",
        None,
    )


def test_a_trickling_answer_is_cut_at_the_deadline() -> None:
    with hostile_server(
        trickle(response(headers={"Content-Length": "999"}, length=False), every=0.1)
    ) as s:
        started = time.monotonic()
        transfer = _get(s.base_url, timeout=0.5)
    assert 0.4 < time.monotonic() - started < 2.5
    assert transfer.failure is not None and transfer.failure.code == pycurl.E_OPERATION_TIMEDOUT


def test_headers_past_their_bound_end_the_transfer() -> None:
    headers = {f"X-{i}": "h" * 1000 for i in range(400)}  # 400 KB of header lines
    with hostile_server(send(response(body=b"{}", headers=headers))) as server:
        transfer = _get(server.base_url)
    assert transfer.failure is not None and transfer.body == b""


@contextmanager
def one_place(delay: float) -> Iterator[tuple[CurlLoop, Request, AdaptiveLimit]]:
    """The shared loop, and a request to a server that takes ``delay`` s an answer, behind a
    gate of one place."""

    def slow(number: int, path: str, query: dict[str, str]) -> Answer:
        time.sleep(delay)
        return Answer(body=b"{}")

    gate = AdaptiveLimit(1)
    with scripted_server(slow) as server:
        request = Request(
            url=server.base_url, headers=(), timeout=5, limit=100, route=Route(), gate=gate
        )
        yield CurlLoop.shared(), request, gate


def test_a_gate_holds_requests_until_it_has_room() -> None:
    with one_place(0.2) as (loop, request, gate):
        first, second = loop.submit(request), loop.submit(request)
        deadline = time.monotonic() + 5
        while first.started is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (gate.in_flight, second.started) == (1, None)  # the server takes 0.2 s
        second.wait()
        first.wait()
    assert first.started is not None and second.started is not None
    assert second.started - first.started >= 0.15
    assert gate.in_flight == 0


def test_a_cancelled_transfer_ends_at_once_and_frees_its_place() -> None:
    with one_place(2) as (loop, request, gate):
        running, queued = loop.submit(request), loop.submit(request)
        time.sleep(0.1)
        queued.cancel()
        running.cancel()
        started = time.monotonic()
        running.wait()
        queued.wait()
        assert time.monotonic() - started < 1
    for transfer in (running, queued):
        assert transfer.failure is not None and transfer.failure.reason == "cancelled"
    assert gate.in_flight == 0


def test_every_page_in_flight_on_one_thread_within_the_limit() -> None:
    active, most = 0, 0
    lock = threading.Lock()
    serve = paged("j1", [item(i) for i in range(200)])

    def counted(number: int, path: str, query: dict[str, str]) -> Answer:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return serve(number, path, query)

    before = {thread.name for thread in threading.enumerate()}
    with scripted_server(counted) as server:
        client = ApiClient(base_url=server.base_url, api_key=CANARY_KEY, concurrency=6)
        job = JobStatus.from_response(job_body("j1", [item(i) for i in range(200)]), job_id="j1")
        pages = iter_result_pages(client, job, page_size=5, concurrency=6)
        first = next(pages)
        threads = {thread.name for thread in threading.enumerate()} - before
        rows = len(first.results) + sum(len(page.results) for page in pages)
    assert rows == 200 and most == 6
    # The server's own threads aside, no thread was started for the requests but libcurl's.
    assert {name for name in threads if not name.startswith("Thread-")} <= {"curl"}


def test_a_forked_child_gets_a_loop_of_its_own() -> None:
    with scripted_server([Answer(body=b"{}")]) as server:
        assert _get(server.base_url).status == 200
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            ok = _get(server.base_url).status == 200 and CurlLoop.shared()._thread.is_alive()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:9/x", "file:///etc/passwd", "gopher://x/"])
def test_only_http_is_spoken(url: str) -> None:
    transfer = _get(url)
    assert transfer.failure is not None and transfer.failure.code == pycurl.E_UNSUPPORTED_PROTOCOL


class _SlowReads:
    """A socket whose reads take a while: it widens the loop's window between reading its
    wake-ups and reading its inbox, where a lost wake-up would hide."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, size: int) -> bytes:
        time.sleep(0.002)
        return self._sock.recv(size)


def test_requests_from_many_threads_at_once_all_end() -> None:
    loop = CurlLoop()  # a loop of its own, with slow wake-up reads
    loop._wake_in = _SlowReads(loop._wake_in)  # type: ignore[assignment]
    transfers: list[Transfer] = []
    with hostile_server(send(response(body=b"{}"))) as server:
        request = Request(url=server.base_url, headers=(), timeout=10, limit=100, route=Route())

        def burst() -> None:
            for number in range(300):
                transfers.append(loop.submit(request))
                if number % 5 == 0:
                    transfers[-1].wait(1)

        workers = [threading.Thread(target=burst) for _ in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        deadline = time.monotonic() + 10
        left = [t for t in transfers if not t.wait(max(0.0, deadline - time.monotonic()))]
    assert left == [] and len(transfers) == 900
    assert {transfer.status for transfer in transfers} == {200}


def test_requests_that_come_as_the_loop_falls_asleep_all_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A request handed in as the loop decides to sleep must wake it (or be seen by it). This
    # loop takes a millisecond to decide, and lingers 5 ms: submits land in that window.
    class SlowToSleep(CurlLoop):
        def _timeout(self) -> float | None:
            timeout = super()._timeout()
            time.sleep(0.001)
            return timeout

    monkeypatch.setattr(curl, "_LINGER", 0.005)
    loop = SlowToSleep()
    with hostile_server(send(response(body=b"{}"))) as server:
        request = Request(url=server.base_url, headers=(), timeout=10, limit=100, route=Route())
        late = []
        for number in range(150):
            time.sleep(0.003 + (number % 7) * 0.001)  # around the moment the loop sleeps
            if not loop.submit(request).wait(5):
                late.append(number)
                break
    assert late == []


class _Broken(CurlLoop):
    """A loop whose own bookkeeping fails (``times`` times) once a request runs."""

    def __init__(self, times: int) -> None:
        self.times = times
        super().__init__()

    def _collect(self) -> None:
        if self._running and self.times > 0:
            self.times -= 1
            raise RuntimeError("a bug in the loop")
        super()._collect()


@pytest.mark.parametrize("times", [1, 10**9], ids=["once", "always"])
def test_a_failure_of_the_loop_itself_ends_its_requests(times: int) -> None:
    loop = _Broken(times)
    with hostile_server(send(response(body=b"{}"))) as server:
        request = Request(url=server.base_url, headers=(), timeout=5, limit=100, route=Route())
        first = [loop.submit(request) for _ in range(3)]
        assert all(transfer.wait(5) for transfer in first)
        then = loop.submit(request)
        assert then.wait(5)
    assert {t.failure.code for t in first if t.failure} == {pycurl.E_FAILED_INIT}
    assert then.status == (200 if times == 1 else 0)
