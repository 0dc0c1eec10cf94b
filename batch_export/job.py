"""What the status endpoint says of a job, as typed objects.

``GET /v1/batch/{job_id}`` answers a job's status, counters, settings and token accounting,
with one page of item results. :class:`JobStatus` holds the job part; :class:`ResultPage`
carries one page along with the request that produced it.

Fields the API documents may be missing or null: they become None, except where the export
needs them (``results``), which is a :class:`ResponseShapeError`. Fields it does not
document are kept in ``extra``, never dropped.

Nothing in an answer is trusted: a ``job_id`` other than the one asked for is refused (the
API, or something in front of it, answered for another job); counters are integers between 0
and :data:`MAX_JOB_ITEMS` (the API takes at most 1,000 URLs a job; the bound is generous and
keeps a hostile counter from costing memory), token counts at most :data:`MAX_TOKENS`; each
documented field has its JSON type, and short texts (status, timestamps) at most
:data:`MAX_TEXT` characters; the answer nests at most :data:`MAX_DEPTH` levels of arrays and
objects (its own object the first), checked without recursion before anything walks it.
Anything else is one :class:`ResponseShapeError` sentence naming the field.

Values are kept whole (:func:`decode_json`): integers of any size stay exact in
``batch_config`` and ``extra``; what JSON cannot hold (``NaN``, text that is not UTF-8) is
changed by its rule and counted in ``values_changed``, never silently.

Example:

    >>> body = {"job_id": "j1", "status": "completed", "total_urls": 2, "completed_urls": 1,
    ...         "failed_urls": 1, "cancelled_urls": 0, "pending_urls": 0, "results": []}
    >>> job = JobStatus.from_response(body, job_id="j1")
    >>> job.is_terminal, job.expected_items
    (True, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from batch_export.api import canonical_job_id
from batch_export.errors import ResponseShapeError, TransientApiError
from batch_export.text import MAX_DEPTH, JsonTooDeep, NotJson, read_json, too_deep
from batch_export.text import shown as shown_value

__all__ = [
    "COUNTERS",
    "JOB_FIELDS",
    "MAX_DEPTH",
    "MAX_JOB_ITEMS",
    "MAX_TEXT",
    "MAX_TOKENS",
    "TERMINAL_STATUSES",
    "JobStatus",
    "JsonAnswer",
    "ResultPage",
    "decode_json",
]

MAX_JOB_ITEMS = 1_000_000
MAX_TOKENS = 2**53 - 1  # the largest integer every JSON reader keeps exact
MAX_TEXT = 1000
_SHOWN = 60

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
COUNTERS: tuple[str, ...] = ("completed_urls", "failed_urls", "cancelled_urls", "pending_urls")
_KNOWN_FIELDS = frozenset(
    {
        "job_id",
        "status",
        "batch_config",
        "token_summary",
        "total_urls",
        *COUNTERS,
        "invalid_urls",
        "created_at",
        "completed_at",
        "results",
    }
)
# A status answer's own fields, its results aside (the page scan reads a page in one pass
# when it holds no other).
JOB_FIELDS: frozenset[str] = _KNOWN_FIELDS - {"results"}
_TOKEN_FIELDS = frozenset({"tokens_charged_total", "tokens_reserved"})


@dataclass(frozen=True, kw_only=True)
class JobStatus:
    """A job's status, counters, settings and token accounting at one moment.

    ``values_changed`` counts the values of the job's own fields that had to change to be
    held (``NaN`` in ``batch_config`` became null, say): see :func:`decode_json`.
    """

    job_id: str
    status: str | None
    total_urls: int | None = None
    completed_urls: int | None = None
    failed_urls: int | None = None
    cancelled_urls: int | None = None
    pending_urls: int | None = None
    invalid_urls: tuple[str, ...] = ()
    batch_config: dict[str, Any] | None = None
    tokens_charged_total: int | None = None
    tokens_reserved: int | None = None
    created_at: str | None = None
    completed_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    values_changed: int = 0

    @property
    def is_terminal(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    @property
    def expected_items(self) -> int:
        """How many item results a finished job must have, from its counters.

        The sum of the four item counters when the API sent them all, else ``total_urls`` (the
        accepted URLs, as the provider's SDK defines it), else the sum of the counters sent: the
        SDK reads a counter that is missing or null as 0.
        """
        counters = (self.completed_urls, self.failed_urls, self.cancelled_urls, self.pending_urls)
        if all(value is not None for value in counters) or self.total_urls is None:
            return sum(value or 0 for value in counters)
        return self.total_urls

    @property
    def finished_items(self) -> int:
        """Items that reached an end (completed, failed or cancelled) so far."""
        return sum(
            value or 0 for value in (self.completed_urls, self.failed_urls, self.cancelled_urls)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the API's own names (``token_summary`` flattened)."""
        # Shallow: asdict() would copy `extra` recursively, and nesting is the server's choice.
        fields = {f.name: getattr(self, f.name) for f in dataclass_fields(self)}
        fields["invalid_urls"] = list(self.invalid_urls)
        return fields

    @classmethod
    def from_response(cls, body: object, *, job_id: str) -> JobStatus:
        """Read the job part of a status response; raise on a body that is not an object."""
        if not isinstance(body, dict):
            raise ResponseShapeError(
                f"Expected a JSON object from the status endpoint, got {type(body).__name__}.",
                job_id=job_id,
            )
        _check_job_id(body.get("job_id"), job_id)
        _check_depth(body, job_id)
        tokens = _object(body, "token_summary", job_id) or {}
        extra = {key: value for key, value in body.items() if key not in _KNOWN_FIELDS}
        extra_tokens = {k: v for k, v in tokens.items() if k not in _TOKEN_FIELDS}
        if extra_tokens:
            extra["token_summary"] = extra_tokens
        changed = sum(n for key, n in _changed(body).items() if key != "results")
        return cls._checked(body, tokens, job_id=job_id, extra=extra, values_changed=changed)

    @classmethod
    def from_figures(cls, figures: object) -> JobStatus:
        """A job's status from its :meth:`to_dict` figures, checked as an answer's fields are.

        For figures that come back from outside (a file's ``batch_export.job`` header, a
        frame's saved ``attrs``): a field of the wrong type, or nested past
        :data:`MAX_DEPTH` levels, is a :class:`ResponseShapeError` naming it. Keys it does not
        know are left out (a later version may add some).

        >>> JobStatus.from_figures({"job_id": "j1", "total_urls": 2, "later": 1}).total_urls
        2
        """
        if not isinstance(figures, dict) or not isinstance(figures.get("job_id"), str):
            raise ResponseShapeError(
                f"Expected a job's figures with a `job_id` string, got {shown(figures)}."
            )
        job_id = _text(figures, "job_id", "?") or ""
        _check_depth(figures, job_id)
        extra = _object(figures, "extra", job_id) or {}
        changed = _count(figures, "values_changed", job_id, MAX_TOKENS) or 0
        return cls._checked(figures, figures, job_id=job_id, extra=extra, values_changed=changed)

    @classmethod
    def _checked(
        cls,
        body: dict[str, Any],
        tokens: dict[str, Any],
        *,
        job_id: str,
        extra: dict[str, Any],
        values_changed: int,
    ) -> JobStatus:
        """The status from ``body``'s documented fields and ``tokens``' counts, each checked."""
        return cls(
            job_id=job_id,
            status=_text(body, "status", job_id),
            total_urls=_count(body, "total_urls", job_id),
            completed_urls=_count(body, "completed_urls", job_id),
            failed_urls=_count(body, "failed_urls", job_id),
            cancelled_urls=_count(body, "cancelled_urls", job_id),
            pending_urls=_count(body, "pending_urls", job_id),
            invalid_urls=_urls(body.get("invalid_urls"), job_id),
            batch_config=_object(body, "batch_config", job_id),
            tokens_charged_total=_count(tokens, "tokens_charged_total", job_id, MAX_TOKENS),
            tokens_reserved=_count(tokens, "tokens_reserved", job_id, MAX_TOKENS),
            created_at=_text(body, "created_at", job_id),
            completed_at=_text(body, "completed_at", job_id),
            extra=extra,
            values_changed=values_changed,
        )


@dataclass(frozen=True, kw_only=True)
class ResultPage:
    """One page of item results, with the request that produced it.

    ``results`` are the raw item objects as the API sent them, in the API's order;
    ``content`` the answer's bytes, when the caller kept them; ``values_changed`` how many
    values of the items had to change to be held (:func:`decode_json`).
    """

    job: JobStatus
    page: int
    page_size: int
    results: list[dict[str, Any]]
    attempts: int = 1
    content: bytes | None = field(default=None, repr=False)
    values_changed: int = 0

    @classmethod
    def from_response(
        cls,
        body: object,
        *,
        job_id: str,
        page: int,
        page_size: int,
        content: bytes | None = None,
    ) -> ResultPage:
        """Read a whole status response: the job, and its page of results."""
        job = JobStatus.from_response(body, job_id=job_id)
        assert isinstance(body, dict)  # from_response has checked it
        results = body.get("results")
        if not isinstance(results, list) or len(results) > MAX_JOB_ITEMS:
            got = "nothing" if results is None else type(results).__name__
            got = f"{len(results)} items" if isinstance(results, list) else got
            raise ResponseShapeError(
                f"Expected a `results` list in page {page} of job {job_id}, got {got}.",
                job_id=job_id,
                page=page,
            )
        for position, item in enumerate(results):
            if not isinstance(item, dict):
                raise ResponseShapeError(
                    f"Expected item {position} of page {page} to be a JSON object, "
                    f"got {type(item).__name__}.",
                    job_id=job_id,
                    page=page,
                )
        if too_deep(results, level=2) is not None:  # decode_json has checked it; a dict may not
            raise _too_deep("results", job_id=job_id, page=page)
        return cls(
            job=job,
            page=page,
            page_size=page_size,
            results=results,
            content=content,
            values_changed=_changed(body).get("results", 0),
        )

    def input_indexes(self) -> list[int]:
        """The ``input_index`` of each item, checked: each must be a non-negative integer."""
        indexes: list[int] = []
        for position, item in enumerate(self.results):
            value = item.get("input_index")
            if type(value) is not int or value < 0:
                raise ResponseShapeError(
                    f"Expected an integer `input_index` in item {position} of page {self.page} "
                    f"of job {self.job.job_id} (url {shown(item.get('url'))}), got {shown(value)}.",
                    job_id=self.job.job_id,
                    page=self.page,
                )
            indexes.append(value)
        return indexes


def shown(value: object) -> str:
    """A value the server sent, for a message about its type: cut short, containers named."""
    return shown_value(value, limit=_SHOWN, whole=False)


def _check_job_id(answered: object, asked: str) -> None:
    # UUIDs compare as UUIDs: an answer in upper case, say, is for the job asked.
    if answered is None or answered == asked:
        return
    if isinstance(answered, str) and canonical_job_id(answered) == canonical_job_id(asked):
        return
    raise ResponseShapeError(
        f"The API answered for job {shown(answered)} when asked for job {shown(asked)}: "
        "its answer cannot be used; check the base URL (a proxy or cache in front of the API "
        "may mix up jobs).",
        job_id=asked,
    )


def _text(body: dict[str, Any], name: str, job_id: str) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and len(value) <= MAX_TEXT):
        return value
    got = f"{len(value)} characters" if isinstance(value, str) else shown(value)
    raise ResponseShapeError(
        f"Expected `{name}` to be a string of at most {MAX_TEXT} characters for job {job_id}, "
        f"got {got}.",
        job_id=job_id,
    )


def _object(body: dict[str, Any], name: str, job_id: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None or isinstance(value, dict):
        return value
    raise ResponseShapeError(
        f"Expected `{name}` to be a JSON object for job {job_id}, got {shown(value)}.",
        job_id=job_id,
    )


def _check_depth(body: dict[str, Any], job_id: str) -> None:
    """Refuse an answer whose own fields nest past :data:`MAX_DEPTH` levels, without recursion.

    The answer's object is the first level. Its ``results`` are checked where they are read:
    by :func:`decode_json` on the general road, by the page scan's types on the chunked one.
    """
    where = too_deep({key: value for key, value in body.items() if key != "results"})
    if where is not None:
        raise _too_deep(where, job_id=job_id)


def _too_deep(where: str | None, **context: Any) -> ResponseShapeError:
    part = f"its `{where}`" if where else "one"
    return ResponseShapeError(
        f"Expected an answer nested at most {MAX_DEPTH} levels deep (arrays and objects), got "
        f"{part} nested deeper: batch-export reads no deeper; check the base URL.",
        **context,
    )


def _urls(value: object, job_id: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if (
        isinstance(value, list)
        and len(value) <= MAX_JOB_ITEMS
        and all(isinstance(url, str) for url in value)
    ):
        return tuple(value)
    raise ResponseShapeError(
        f"Expected `invalid_urls` to be a list of at most {MAX_JOB_ITEMS} strings for job "
        f"{job_id}, got {shown(value)}.",
        job_id=job_id,
    )


def _count(body: dict[str, Any], name: str, job_id: str, bound: int = MAX_JOB_ITEMS) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= bound:
        raise ResponseShapeError(
            f"Expected `{name}` to be an integer from 0 to {bound} for job {job_id}, "
            f"got {shown(value)}.",
            job_id=job_id,
        )
    return value


class JsonAnswer(dict[str, Any]):
    """An answer's JSON object that had values changed to be held (:func:`decode_json`).

    ``values_changed`` counts them under each top-level key: the job's fields count in
    :attr:`JobStatus.values_changed`, the items in :attr:`ResultPage.values_changed`.
    """

    def __init__(self, value: dict[str, Any], values_changed: dict[str, int]) -> None:
        super().__init__(value)
        self.values_changed = values_changed


def decode_json(content: bytes, url: str) -> Any:
    """Parse a 200 answer's JSON ``content`` (from ``url``): integers exact, depth bounded.

    Read by :func:`batch_export.text.read_json`: what JSON cannot hold (text that is not
    UTF-8, a lone surrogate, ``NaN``, ``Infinity``, ``1e400``) is changed by its rule at once
    and counted (an object with changes comes as a :class:`JsonAnswer`); arrays and objects
    nested past :data:`MAX_DEPTH` levels are a :class:`ResponseShapeError`. Bytes that are not
    JSON at all (cut short, say) are a :class:`TransientApiError`: asked for again.

    Example:

        >>> decode_json(b'{"results": [], "seed": 1180591620717411303424}', "http://h/v1/batch/j1")
        {'results': [], 'seed': 1180591620717411303424}
        >>> decode_json(b'{"batch_config": {"ratio": NaN}}', "http://h/v1/batch/j1").values_changed
        {'batch_config': 1}
    """
    try:
        parsed = read_json(content)
    except JsonTooDeep as error:
        raise _too_deep(error.field, url=url) from None
    except NotJson:
        raise TransientApiError(
            f"The API answered HTTP 200 with a body that is not valid JSON ({len(content)} bytes, "
            "perhaps cut short).",
            code="invalid_json",
            url=url,
        ) from None
    if parsed.changed and isinstance(parsed.value, dict):
        return JsonAnswer(parsed.value, parsed.changed)
    return parsed.value


def _changed(body: dict[str, Any]) -> dict[str, int]:
    return body.values_changed if isinstance(body, JsonAnswer) else {}
