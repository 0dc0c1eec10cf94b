"""The API key: checked before it travels, hidden from every text that could show it.

A key travels in the ``X-Api-Key`` header, so a control character (a trailing CR or LF from a
key file saved on Windows) or a non-ASCII one is refused before any request, in a message
that does not show the key. What a server writes back may echo the key, whole or cut; every
error the client raises is scrubbed with :func:`scrub`: any run of text holding 8 or more
consecutive characters of the key becomes ``<hidden>``.

Example:

    >>> redact("echo: canary-7f3a9c1e-nev", "canary-7f3a9c1e-never-print-me")
    'echo: <hidden>'
"""

from __future__ import annotations

from batch_export.errors import ApiError, BatchExportError, InvalidInputError

__all__ = ["KEY_PIECE", "check_api_key", "redact", "scrub"]

KEY_PIECE = 8


def check_api_key(api_key: str) -> str:
    """Return ``api_key`` if it can travel in a header; the message never shows the key.

    Example:

        >>> check_api_key("k-123")
        'k-123'
    """
    for position, char in enumerate(api_key, start=1):
        if not (" " <= char <= "~"):
            what = "a non-ASCII character" if ord(char) > 127 else "a control character"
            raise InvalidInputError(
                f"The API key has {what} (CR, LF, tab, accents, ...) at position {position} of "
                f"{len(api_key)}: remove it (a key file saved with a line ending?) and pass the "
                "key again."
            )
    return api_key


def redact(text: str, secret: str | None, *, short_too: bool = True) -> str:
    """``text`` with the ``secret`` hidden, and every run that holds 8 of its characters in a row.

    A secret shorter than 8 characters is hidden where it appears whole (unless
    ``short_too`` is false: our own words would be cut to pieces by a one-letter key).

    Example:

        >>> redact("key=abcdefghij and abcdefgh...", "abcdefghij")
        'key=<hidden> and <hidden>...'
    """
    if not secret or not text:
        return text
    if len(secret) < KEY_PIECE:
        return text.replace(secret, "<hidden>") if short_too else text
    pieces = {secret[i : i + KEY_PIECE] for i in range(len(secret) - KEY_PIECE + 1)}
    hidden: list[tuple[int, int]] = []
    for start in range(len(text) - KEY_PIECE + 1):
        if text[start : start + KEY_PIECE] in pieces:
            end = start + KEY_PIECE
            if hidden and start <= hidden[-1][1]:
                hidden[-1] = (hidden[-1][0], end)
            else:
                hidden.append((start, end))
    if not hidden:
        return text
    out, position = [], 0
    for start, end in hidden:
        out += [text[position:start], "<hidden>"]
        position = end
    out.append(text[position:])
    return "".join(out)


def scrub(error: BatchExportError, secret: str | None) -> None:
    """Hide ``secret`` in every text ``error`` carries (what the server wrote may echo it)."""
    if not secret:
        return
    error.message = redact(error.message, secret, short_too=False)
    error.args = (error.message,)
    if error.url is not None:
        error.url = redact(error.url, secret, short_too=False)
    if isinstance(error, ApiError):
        error.code = None if error.code is None else redact(error.code, secret, short_too=False)
        cid = error.correlation_id
        error.correlation_id = None if cid is None else redact(cid, secret, short_too=False)
