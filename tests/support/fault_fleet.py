"""Several `exportd run` processes to kill, stop and start again.

Each start of a daemon writes a log of its own (``daemon-<n>.<start>.log``),
so that what every incarnation did can be read after the run.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.daemon_process import log_events


@dataclass
class Incarnation:
    daemon: int
    process: subprocess.Popen[bytes]
    log_path: Path
    ended_by: str = ""  # "sigkill", "sigterm" or "end"
    returncode: int | None = None

    def started(self) -> bool:
        """It logged daemon_started: its signal handlers were in place."""
        return any(e.get("event") == "daemon_started" for e in log_events(self.log_path))


@dataclass
class Fleet:
    envs: list[dict[str, str]]
    directory: Path
    live: dict[int, Incarnation] = field(default_factory=dict)
    history: list[Incarnation] = field(default_factory=list)

    def start(self, daemon: int) -> None:
        if daemon in self.live:
            return
        n = sum(1 for i in self.history if i.daemon == daemon)
        log_path = self.directory / f"daemon-{daemon}.{n}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "exportd", "run"],
                env=self.envs[daemon],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        incarnation = Incarnation(daemon, process, log_path)
        self.live[daemon] = incarnation
        self.history.append(incarnation)

    def kill(self, daemon: int) -> bool:
        """SIGKILL; False when that daemon was not running."""
        incarnation = self.live.pop(daemon, None)
        if incarnation is None:
            return False
        incarnation.process.send_signal(signal.SIGKILL)
        incarnation.returncode = incarnation.process.wait()
        incarnation.ended_by = "sigkill"
        return True

    def signal_term(self, daemon: int) -> Incarnation | None:
        """SIGTERM; None when that daemon was not running. ``wait`` for its drain."""
        incarnation = self.live.pop(daemon, None)
        if incarnation is None:
            return None
        incarnation.process.send_signal(signal.SIGTERM)
        incarnation.ended_by = "sigterm"
        return incarnation

    @staticmethod
    def wait(incarnation: Incarnation, timeout: float = 60.0) -> None:
        try:
            incarnation.returncode = incarnation.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            incarnation.process.kill()
            incarnation.returncode = incarnation.process.wait()
            incarnation.ended_by = "sigterm, then SIGKILL: it did not stop within a minute"

    def start_all(self) -> None:
        for daemon in range(len(self.envs)):
            self.start(daemon)

    def stop_all(self) -> None:
        stopping = [i for i in (self.signal_term(d) for d in list(self.live)) if i is not None]
        for incarnation in stopping:
            self.wait(incarnation)

    def daemon_of_pid(self) -> dict[int, int]:
        """The running daemons by process id (a worker id names its pid)."""
        return {i.process.pid: daemon for daemon, i in self.live.items()}

    def exited_early(self) -> list[Incarnation]:
        """Daemons that ended without being told to."""
        early = []
        for incarnation in self.live.values():
            code = incarnation.process.poll()
            if code is not None:
                incarnation.returncode = code
                early.append(incarnation)
        return early

    def events(self) -> list[dict[str, Any]]:
        """Every incarnation's log events, each with the daemon and log it came from."""
        out: list[dict[str, Any]] = []
        for incarnation in self.history:
            for event in log_events(incarnation.log_path):
                event["_log"] = incarnation.log_path.name
                out.append(event)
        return out
