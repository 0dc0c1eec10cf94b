"""Job ids as requests carry them: checked before any request, canonical when a UUID.

A job id goes into a request's path, so it is checked once at the road's entry
(:func:`batch_export.pipeline.open_job`) and by the callers that need it before: the
notebook's :func:`~batch_export.frame.frame`, the scrape's submission, the sync's listing.

Example:

    >>> usable_job_id("../etc/passwd"), usable_job_id(42), usable_job_id("JOB-1")
    (None, None, 'JOB-1')
"""

from __future__ import annotations

import re

from batch_export.api import canonical_job_id
from batch_export.errors import InvalidInputError

__all__ = ["check_job_id", "usable_job_id"]

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def check_job_id(job_id: str) -> str:
    """``job_id`` in the form the API writes it, or :class:`InvalidInputError`.

    A UUID in any form people copy (upper case, no hyphens, braces, ``urn:uuid:``) becomes
    the canonical lower-case hyphenated one (:func:`~batch_export.api.canonical_job_id`),
    which requests carry, answers are compared with and files record; any other id is kept
    as it is. A job id goes into the request path, so ``../x``, ``a/b``, ``?`` or spaces are
    refused before any request is made. The one road calls this at its entry
    (:func:`batch_export.pipeline.open_job`); so do the callers that need the id before it.

    >>> check_job_id("{9D7B2C8E-8A4B-4C10-9AF3-65F4F8F6C019}"), check_job_id("My_job-1")
    ('9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019', 'My_job-1')
    """
    canonical = canonical_job_id(job_id) if isinstance(job_id, str) else job_id
    if not isinstance(canonical, str) or not _JOB_ID.fullmatch(canonical):
        shown = repr(job_id)[:80] if isinstance(job_id, str) else type(job_id).__name__
        raise InvalidInputError(
            f"Job id {shown} is not a plain identifier: use the `job_id` that POST /v1/batch "
            "returned (letters, digits, '-' and '_', e.g. 9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019)."
        )
    return canonical


def usable_job_id(value: object) -> str | None:
    """``value`` as :func:`check_job_id` makes it, or None when it is no usable id: for ids
    the API itself gave (a listing's entries, a submission's answer), which fail alone."""
    if not isinstance(value, str):
        return None
    try:
        return check_job_id(value)
    except InvalidInputError:
        return None
