"""``exportd workers``'s lines: whatever a job's owner or kind holds (the table
allows any character in them), nothing reaches the terminal as a control."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from exportd.cli.workers import render
from exportd.queue.workers import JobProgress, WorkerStatus

# Clear the screen, set the window's title, a C1 CSI, a bell, a line break.
HOSTILE = "\x1b[2J\x1b]0;owned\x07\x9b31m\r\nfake line"


def test_owner_kind_host_and_version_are_shown_without_controls() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    job = JobProgress(uuid.uuid4(), HOSTILE, HOSTILE, HOSTILE, 10, 5, 50, 1, 5, now, now)
    worker = WorkerStatus(HOSTILE, HOSTILE, HOSTILE, 1, now, 4, 10.0, now, (job,), 1.0)
    lines = render([worker])
    assert len(lines) == 2
    for line in lines:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in line), line
    assert "\\x1b[2J" in lines[1]
    assert "fake line" in lines[1]
