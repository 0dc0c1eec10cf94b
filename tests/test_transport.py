"""Where requests go and what a transport failure says: the decisions under ApiClient.

The client speaks libcurl but reads its settings from the environment as requests would, and
never lets libcurl read the environment on its own.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import ssl
from pathlib import Path

import pycurl
import pytest

from batch_export.errors import ResponseShapeError, RetriesExhaustedError, TransientApiError
from batch_export.fetch.client import ApiClient
from batch_export.fetch.curl import Failure
from batch_export.fetch.retry import RetryPolicy
from batch_export.fetch.transport import network_error, route_for
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, item, job_body, scripted_server

_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def _client(base_url: str, **options: bool) -> ApiClient:
    return ApiClient(base_url=base_url, api_key=CANARY_KEY, **options)


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_https_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@proxy.example:3128")
    assert route_for("https://scraper.example").proxy == "http://user:secret@proxy.example:3128"


def test_no_proxy_bypasses_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "scraper.example")
    assert route_for("https://scraper.example").proxy == ""


def test_a_socks_proxy_is_spoken_by_libcurl_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5h://proxy.example:1080")
    assert route_for("https://scraper.example").proxy == "socks5h://proxy.example:1080"


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8080", "http://localhost:1"])
def test_a_loopback_target_has_no_proxy(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.255.1:3128")
    assert route_for(base_url).proxy == ""


def test_the_ca_bundle_follows_requests_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/my-ca.pem")
    assert route_for("https://scraper.example").ca_file == "/etc/my-ca.pem"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path))
    route = route_for("https://scraper.example")
    assert (route.ca_file, route.ca_dir) == (None, str(tmp_path))


def test_a_remote_host_goes_through_the_chosen_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The proxy is a loopback server that answers whatever it is asked: the request for a
    # remote host reaches it, in absolute form, with the key (plain http was allowed).
    with scripted_server([Answer(body=job_body("j1", [item(0)]))]) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        client = _client("http://api.invalid", allow_insecure_http=True)
        page = client.fetch_page("j1", page=1, page_size=50)
        assert proxy.seen[0].path == "/v1/batch/j1"
        assert proxy.seen[0].headers["Host"] == "api.invalid"
    assert page.results[0]["input_index"] == 0


def test_libcurl_does_not_read_the_proxy_variables_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # libcurl would send a loopback request through http_proxy on its own; the client's
    # route (no proxy) must win, or this request would go to a proxy that is not there.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    with scripted_server([Answer(body=job_body("j1", [item(0)]))]) as server:
        page = _client(server.base_url).fetch_page("j1", page=1, page_size=50)
    assert page.results[0]["input_index"] == 0


def test_a_gzipped_answer_is_read() -> None:
    body = gzip.compress(json.dumps(job_body("j1", [item(0)])).encode())
    answer = Answer(body=body, headers={"Content-Encoding": "gzip"})
    with scripted_server([answer]) as server:
        page = _client(server.base_url).fetch_page("j1", page=1, page_size=50)
        assert "gzip" in server.seen[0].headers["Accept-Encoding"]
    assert page.results[0]["input_index"] == 0


URL = "http://127.0.0.1:8080/v1/batch/j1?page=1"


@pytest.mark.parametrize(
    ("failure", "reading", "said"),
    [
        (Failure(pycurl.E_OPERATION_TIMEDOUT), True, "did not answer within the request "
         "deadline of 60 s (libcurl error 28)"),
        (Failure(pycurl.E_COULDNT_CONNECT), False, "dropped or refused the connection"),
        (Failure(pycurl.E_SEND_ERROR), True, "cut the answer short"),
        (Failure(pycurl.E_RECV_ERROR), True, "cut the answer short"),
        (Failure(pycurl.E_PARTIAL_FILE), True, "cut the answer short"),
        (Failure(pycurl.E_GOT_NOTHING), False, "closed the connection without answering"),
        (Failure(pycurl.E_BAD_CONTENT_ENCODING), True, "sent a body that could not be decoded"),
        (Failure(8), False, "sent an answer that is not valid HTTP"),
        (Failure(pycurl.E_UNSUPPORTED_PROTOCOL), False, "sent an answer that is not valid HTTP"),
        (Failure(pycurl.E_COULDNT_RESOLVE_HOST), False, "could not be found"),
        (Failure(pycurl.E_PEER_FAILED_VERIFICATION), False, "could not be verified over TLS"),
        (Failure(97), False, "could not be reached through the proxy"),
        (Failure(0, "cancelled"), False, "was not waited for"),
        (Failure(12345), False, "failed at the HTTP level (libcurl error 12345)"),
    ],
)  # fmt: skip
def test_every_libcurl_failure_is_one_transient_sentence(
    failure: Failure, reading: bool, said: str
) -> None:
    error = network_error(failure, URL, timeout=60, limit=100, reading=reading)
    assert isinstance(error, TransientApiError) and error.code == "network"
    assert str(error).startswith("The API at 127.0.0.1:8080 ")
    assert said in str(error) and str(error).endswith(").")
    assert "\n" not in str(error) and "page=1" not in str(error)


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (Failure(0, "announced", 5000), "(it announces 5000 bytes)"),
        (Failure(0, "too_large"), "(it went on past that)"),
        (Failure(pycurl.E_FILESIZE_EXCEEDED, "too_large"), "(it went on past that)"),
    ],
)
def test_an_answer_past_the_bound_is_a_final_shape_error(failure: Failure, said: str) -> None:
    error = network_error(failure, URL, timeout=60, limit=2**20, reading=True)
    assert isinstance(error, ResponseShapeError) and not isinstance(error, TransientApiError)
    assert str(error).startswith("The answer from 127.0.0.1:8080 is larger than the bound of 1 MB")
    assert said in str(error) and "--max-response-mb" in str(error)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no CA bundle trusts, and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_is_verified_against_the_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with scripted_server([Answer(body=job_body("j1", [item(0)]))], tls=context) as server:
        base_url = server.base_url.replace("http://", "https://")
        untrusted = ApiClient(base_url=base_url, api_key=CANARY_KEY, retry=RetryPolicy(attempts=1))
        with pytest.raises(RetriesExhaustedError) as caught:
            untrusted.fetch_page("j1", page=1, page_size=50)
        assert server.seen == []  # refused before a byte of the request, key included, went
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        page = _client(base_url).fetch_page("j1", page=1, page_size=50)
        assert server.seen[0].headers["X-Api-Key"] == CANARY_KEY
    assert "could not be verified over TLS" in str(caught.value)
    assert page.results[0]["input_index"] == 0
