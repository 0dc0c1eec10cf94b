"""The body of ``POST /v1/batch`` checked as the SDK's ``BatchRequest`` model checks it.

Private to :mod:`batch_export.testing.submit`. :func:`check_batch_request` returns the request
with its defaults filled in, or the list of validation errors in FastAPI's shape (``type``,
``loc``, ``msg``, ``input``) for a 422. Fields the model does not know are ignored, as
pydantic does by default.

>>> check_batch_request(b'{"urls": []}')[0]["type"]
'too_short'
>>> check_batch_request(b'{"urls": ["https://a.example/"]}')["ignore_invalid_urls"]
True
"""

from __future__ import annotations

import json
import re
from typing import Any

from batch_export.api import MAX_BATCH_URLS, OUTPUT_FORMATS, PROXY_TYPES

MAX_URLS = MAX_BATCH_URLS
_FORMATS = OUTPUT_FORMATS
_PROXY_TYPES = PROXY_TYPES
_WAIT_UNTIL = ("commit", "domcontentloaded", "load", "networkidle")
_COUNTRY = re.compile(r"[A-Z]{2}")

Problem = dict[str, Any]


def _problem(kind: str, loc: list[str | int], msg: str, value: object) -> Problem:
    return {"type": kind, "loc": ["body", *loc], "msg": msg, "input": value}


def _strict_bool(body: dict[str, Any], name: str, default: bool, problems: list[Problem]) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.append(_problem("bool_type", [name], "Input should be a valid boolean", value))
        return default
    return value


def _urls(value: object, problems: list[Problem]) -> list[str]:
    if value is None:
        problems.append(_problem("missing", ["urls"], "Field required", value))
        return []
    if not isinstance(value, list):
        problems.append(_problem("list_type", ["urls"], "Input should be a valid list", value))
        return []
    if not 1 <= len(value) <= MAX_URLS:
        kind, bound = (
            ("too_short", "at least 1 item") if not value else ("too_long", "at most 1000 items")
        )
        msg = f"List should have {bound} after validation, not {len(value)}"
        problems.append(_problem(kind, ["urls"], msg, len(value)))
    for position, url in enumerate(value[: MAX_URLS + 1]):
        if not isinstance(url, str):
            problems.append(
                _problem("string_type", ["urls", position], "Input should be a valid string", url)
            )
    return [url for url in value if isinstance(url, str)]


def _formats(value: object, problems: list[Problem]) -> list[str]:
    if value is None:
        return ["markdown"]
    if not isinstance(value, list):
        problems.append(_problem("list_type", ["formats"], "Input should be a valid list", value))
        return ["markdown"]
    for position, name in enumerate(value):
        if name not in _FORMATS:
            msg = "Input should be 'markdown' or 'html'"
            problems.append(_problem("enum", ["formats", position], msg, name))
    return [name for name in value if name in _FORMATS] or ["markdown"]


def _object(value: object, name: str, problems: list[Problem]) -> dict[str, Any] | None:
    """``value`` when it is an object; else None, and a problem unless it is absent."""
    if value is not None and not isinstance(value, dict):
        problems.append(_problem("model_type", [name], "Input should be an object", value))
    return value if isinstance(value, dict) else None


def _proxy(given: object, problems: list[Problem]) -> dict[str, Any] | None:
    value = _object(given, "proxy", problems)
    if value is None:
        return None
    country, kind = value.get("country"), value.get("type", "residential")
    if country is not None and not (isinstance(country, str) and _COUNTRY.fullmatch(country)):
        msg = "Value error, must validate the regular expression /^[A-Z]{2}$/"
        problems.append(_problem("value_error", ["proxy", "country"], msg, country))
    if kind is not None and kind not in _PROXY_TYPES:
        msg = "Input should be 'datacenter', 'residential' or 'mix'"
        problems.append(_problem("enum", ["proxy", "type"], msg, kind))
    return {"country": country, "type": kind}


def _headers(value: object, problems: list[Problem]) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        msg = "Input should be an object of strings"
        problems.append(_problem("dict_type", ["headers"], msg, value))
        return None
    return value


def _wait_config(given: object, problems: list[Problem]) -> dict[str, Any] | None:
    value = _object(given, "wait_config", problems)
    if value is None:
        return None
    wait_for, timeout, until = (
        value.get("wait_for"),
        value.get("wait_timeout"),
        value.get("wait_until"),
    )
    if wait_for is not None and not (isinstance(wait_for, str) and len(wait_for) <= 4096):
        msg = "String should have at most 4096 characters"
        problems.append(_problem("string_too_long", ["wait_config", "wait_for"], msg, wait_for))
    if timeout is not None and not (
        isinstance(timeout, int) and not isinstance(timeout, bool) and 0 <= timeout <= 30_000
    ):
        msg = "Input should be an integer between 0 and 30000"
        problems.append(_problem("int_type", ["wait_config", "wait_timeout"], msg, timeout))
    if until is not None and until not in _WAIT_UNTIL:
        msg = "Input should be 'commit', 'domcontentloaded', 'load' or 'networkidle'"
        problems.append(_problem("enum", ["wait_config", "wait_until"], msg, until))
    return {"wait_for": wait_for, "wait_timeout": timeout, "wait_until": until}


def check_batch_request(body: bytes) -> dict[str, Any] | list[Problem]:
    """The request with defaults filled in, or its validation errors."""
    try:
        parsed = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return [_problem("json_invalid", [], "JSON decode error", None)]
    if not isinstance(parsed, dict):
        return [_problem("model_attributes_type", [], "Input should be a valid dictionary", parsed)]
    problems: list[Problem] = []
    request = {
        "urls": _urls(parsed.get("urls"), problems),
        "formats": _formats(parsed.get("formats"), problems),
        "render_js": _strict_bool(parsed, "render_js", False, problems),
        "ignore_invalid_urls": _strict_bool(parsed, "ignore_invalid_urls", True, problems),
        "proxy": _proxy(parsed.get("proxy"), problems),
        "headers": _headers(parsed.get("headers"), problems),
        "wait_config": _wait_config(parsed.get("wait_config"), problems),
    }
    return problems or request
