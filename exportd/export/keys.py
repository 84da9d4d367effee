"""Object keys: ``{prefix}/{owner}/{job_id}/{filename}``, within S3's limits whatever they carry.

The layout is built and read here alone: ``object_key`` builds a job's key,
``write_probe_key`` the upload's probe beside them, ``listing_prefix`` the
start every key shares; ``job_id_of`` and ``filename_of`` read a key back.

Owners and file names are caller-chosen. Each becomes one path segment by
percent-encoding (UTF-8), which keeps a '/', a '\\', a control character or
a '%' from reaching outside its segment; a segment that would be '.' or '..'
(or empty) is written so that it is neither; and a segment over
``S3_SEGMENT_MAX_BYTES`` is cut at a character boundary and ends with '~'
and a hash of the whole text, so that distinct owners (or names) keep
distinct segments. '~' never appears in an encoded segment otherwise (it is
encoded as %7E), so a cut segment cannot equal an uncut one.

With a prefix of at most ``S3_PREFIX_MAX_BYTES`` (checked at start by the
settings, and here), every key is at most ``S3_KEY_MAX_BYTES``. Limits and
their sources: exportd/limits.py.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from urllib.parse import quote, unquote

from exportd.limits import S3_KEY_MAX_BYTES, S3_PREFIX_MAX_BYTES, S3_SEGMENT_MAX_BYTES

_OWNER_SAFE = "@._-"
_FILE_SAFE = " @._-()"
_CUT = "~"
_HASH_CHARS = 16
# A file name's extension survives a cut ("….csv.gz"), so the object still
# says what it holds.
_EXTENSION = re.compile(r"(?:\.[A-Za-z0-9]{1,10}){1,2}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
# Starts with '~', which an encoded segment holds only where it was cut (or
# as the whole of an empty one), so no owner's segment is this name: no
# tenant's objects can stand where the probe writes, or the other way round.
WRITE_PROBE = "~exportd-write-probe"


def _encode(text: str, safe: str) -> str:
    # '%', '/' and '\\' are never safe (quote encodes them unless listed);
    # '~' is encoded by hand, since quote always keeps it.
    return quote(text, safe=safe.replace("%", "").replace("/", "")).replace("~", "%7E")


def key_segment(text: str, safe: str, budget: int = S3_SEGMENT_MAX_BYTES) -> str:
    """``text`` as one key segment of at most ``budget`` bytes, never '.', '..' or empty.

    Injective over ``text`` (up to a 64-bit hash collision where a segment is
    cut). ``safe`` lists the ASCII characters kept as they are; '%', '/',
    '\\' and '~' are always encoded.
    """
    encoded = _encode(text, safe)
    if not encoded:
        return _CUT
    if set(encoded) == {"."}:
        return encoded.replace(".", "%2E")
    if len(encoded) <= budget:
        return encoded
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    found = _EXTENSION.search(text)
    extension = _encode(found.group(0), safe) if found and found.start() > 0 else ""
    stem = text[: found.start()] if extension and found else text
    room = budget - len(extension) - len(_CUT) - _HASH_CHARS
    # Whole characters only: a cut inside a character's escapes would leave
    # half a UTF-8 sequence in the key.
    kept: list[str] = []
    used = 0
    for char in stem:
        piece = _encode(char, safe)
        if used + len(piece) > room:
            break
        kept.append(piece)
        used += len(piece)
    return "".join(kept) + _CUT + digest + extension


def check_prefix(prefix: str) -> str:
    """``prefix`` when it is a valid key prefix, else ``ValueError`` saying why.

    Valid: empty, or segments separated by '/', none empty, '.' or '..', none
    over ``S3_SEGMENT_MAX_BYTES``, no control character or backslash, and at
    most ``S3_PREFIX_MAX_BYTES`` in all (so that any owner and file name fit
    in ``S3_KEY_MAX_BYTES``).
    """
    if not prefix:
        return prefix
    size = len(prefix.encode("utf-8"))
    if size > S3_PREFIX_MAX_BYTES:
        raise ValueError(
            f"the prefix is {size} bytes; at most {S3_PREFIX_MAX_BYTES} leave room for "
            f"any owner and file name in an S3 key ({S3_KEY_MAX_BYTES} bytes)"
        )
    if _CONTROL.search(prefix):
        raise ValueError("the prefix may not hold a control character or a backslash")
    for segment in prefix.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"the prefix may not have an empty, '.' or '..' segment: {prefix!r}")
        if len(segment.encode("utf-8")) > S3_SEGMENT_MAX_BYTES:
            raise ValueError(
                f"a prefix segment is over {S3_SEGMENT_MAX_BYTES} bytes, which many stores refuse"
            )
    return prefix


def object_key(prefix: str, owner: str, job_id: uuid.UUID, filename: str) -> str:
    """``{prefix}/{owner}/{job_id}/{filename}``, with owner and file name each made
    one safe segment (``key_segment``); no prefix, no leading '/'.

    At most ``S3_KEY_MAX_BYTES`` bytes, every segment at most
    ``S3_SEGMENT_MAX_BYTES`` and none '.' or '..'. Raises ``ValueError`` for a
    prefix ``check_prefix`` refuses. The download keeps the full file name
    (stored on the job), not this segment.
    """
    parts = [key_segment(owner, _OWNER_SAFE), str(job_id), key_segment(filename, _FILE_SAFE)]
    if check_prefix(prefix):
        parts.insert(0, prefix)
    return "/".join(parts)


def write_probe_key(prefix: str) -> str:
    """Where an upload writes (and deletes) an empty object to tell a store that fails
    on one name from a store that fails: beside the owners' folders, in a name
    every store can hold."""
    return f"{prefix}/{WRITE_PROBE}" if prefix else WRITE_PROBE


def listing_prefix(prefix: str) -> str:
    """The start of every object key under ``prefix``: ``prefix`` and '/', or '' without
    one. The '/' keeps a listing of "exports" out of "exports-old/"."""
    return f"{prefix}/" if prefix else ""


def job_id_of(key: str) -> uuid.UUID | None:
    """The job id of a key shaped ``{prefix}/{owner}/{job_id}/{filename}``, or None for
    a key of any other shape (another application's object, the write probe).

    The id is the segment before the last: neither it nor the file name's
    segment ever holds a '/', while an owner written by an older version may.
    """
    parts = key.rsplit("/", 2)
    if len(parts) < 3:
        return None
    try:
        return uuid.UUID(parts[-2])
    except ValueError:
        return None


def filename_of(key: str) -> str:
    """The file name a key ends with: its last segment, percent-decoded (UTF-8).

    The file name ``object_key`` was given, unless ``key_segment`` cut it to
    fit (then the cut form, with its '~' and hash) or it was empty ('~').
    """
    return unquote(key.rsplit("/", 1)[-1])
