"""The webhook body: the event and the job, bounded whatever the row holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from exportd import limits
from exportd.webhooks.payload import BODY_MAX_BYTES, event_body

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def job(**fields: Any) -> dict[str, Any]:
    return {"id": "5f0c", "owner": "o", "kind": "k", "state": "completed", **fields}


def test_the_envelope_and_no_download_url() -> None:
    body = event_body("export.completed", AT, job(download_url="https://x", params={"a": 1}))
    doc = json.loads(body)
    assert doc == {
        "type": "export.completed",
        "timestamp": "2026-01-02T03:04:05.678901+00:00",
        "data": {"id": "5f0c", "owner": "o", "kind": "k", "state": "completed", "params": {"a": 1}},
    }


def test_the_worst_row_the_table_takes_fits_whole() -> None:
    # Every caller-written column at its bound, in the characters that cost the
    # most bytes once encoded (4-byte UTF-8; control characters, escaped).
    emoji = "\U0001f600"
    params_text = json.dumps({"v": "\x01" * ((limits.PARAMS_MAX_BYTES - 10) // 6)})
    assert len(params_text.encode()) <= limits.PARAMS_MAX_BYTES
    worst = job(
        owner=emoji * (limits.OWNER_MAX_BYTES // 4),
        kind=emoji * (limits.KIND_MAX_BYTES // 4),
        dedupe_key=emoji * (limits.DEDUPE_KEY_MAX_BYTES // 4),
        params=json.loads(params_text),
        error="\x02" * limits.ERROR_MAX_CHARS,
        filename=emoji * 150,
        object_key=emoji * 256,
        trace_context={
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "v=" + "~" * (limits.TRACESTATE_MAX_CHARS - 2),
        },
    )
    body = event_body("export.failed", AT, worst)
    assert len(body) <= BODY_MAX_BYTES
    assert "truncated" not in json.loads(body)["data"]


def test_a_row_over_the_bounds_is_cut_field_by_field() -> None:
    huge = job(params={"v": "x" * (2 * BODY_MAX_BYTES)}, error="e" * BODY_MAX_BYTES, note="kept")
    body = event_body("export.failed", AT, huge)
    assert len(body) <= BODY_MAX_BYTES
    data = json.loads(body)["data"]
    assert data["truncated"] == ["error", "params"]
    assert data["params"] is None
    assert data["error"] is None
    assert data["note"] == "kept"
    assert data["owner"] == "o"
