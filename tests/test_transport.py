"""The HTTP transport under ApiClient: what it takes from the environment, what it accepts.

The client speaks urllib3 but reads its settings from the environment as requests would.
"""

from __future__ import annotations

import gzip
import importlib.util
import json

import pytest
import urllib3

from batch_export.errors import InvalidInputError
from batch_export.fetch.client import ApiClient
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, item, job_body, scripted_server


def _client(base_url: str) -> ApiClient:
    return ApiClient(base_url=base_url, api_key=CANARY_KEY)


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_https_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@proxy.example:3128")
    client = _client("https://scraper.example")
    assert isinstance(client._http, urllib3.ProxyManager)
    assert client._http.proxy is not None and client._http.proxy.host == "proxy.example"
    assert client._http.proxy_headers["proxy-authorization"].startswith("Basic ")


def test_no_proxy_bypasses_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "scraper.example")
    assert not isinstance(_client("https://scraper.example")._http, urllib3.ProxyManager)


def test_a_socks_proxy_without_pysocks_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("socks") is not None:
        pytest.skip("PySocks is installed here")
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:secret@proxy.example:1080")
    with pytest.raises(InvalidInputError) as caught:
        _client("https://scraper.example")
    assert str(caught.value) == (
        "The proxy socks5://proxy.example:1080 is a SOCKS proxy: install PySocks "
        "(pip install 'urllib3[socks]') to use it."
    )


def test_a_gzipped_answer_is_read() -> None:
    body = gzip.compress(json.dumps(job_body("j1", [item(0)])).encode())
    answer = Answer(body=body, headers={"Content-Encoding": "gzip"})
    with scripted_server([answer]) as server:
        page = _client(server.base_url).fetch_page("j1", page=1, page_size=50)
        assert "gzip" in server.seen[0].headers["Accept-Encoding"]
    assert page.results[0]["input_index"] == 0
