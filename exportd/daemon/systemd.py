"""systemd's notify protocol, without a dependency: datagrams to $NOTIFY_SOCKET.

Under ``Type=notify`` systemd waits for ``READY=1`` before it calls the
service started, shows ``STOPPING=1`` while it drains, and, with
``WatchdogSec=``, restarts a daemon that stops sending ``WATCHDOG=1``. The
socket path may start with ``@``: an abstract socket, whose name starts with
a NUL byte. Without NOTIFY_SOCKET (not under systemd) every call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import structlog


def socket_address(value: str) -> str:
    """The address to send to: '@name' is the abstract socket '\\0name'."""
    return "\0" + value[1:] if value.startswith("@") else value


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings (half the timeout, as systemd advises),
    or None when systemd expects none from this process."""
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    target = environ.get("WATCHDOG_PID")
    if target and target != str(pid):
        return None
    try:
        seconds = int(usec) / 1_000_000
    except ValueError:
        return None
    return seconds / 2 if seconds > 0 else None


class Notifier:
    def __init__(self, address: str | None, *, logger: Any = None) -> None:
        self._address = socket_address(address) if address else None
        self.log = logger or structlog.get_logger()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send one datagram of ``KEY=value`` lines; False when it could not go."""
        if self._address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            # A notification lost is not worth stopping the daemon for;
            # systemd's own timeouts say what went wrong.
            self.log.warning("sd_notify_failed", error=repr(exc), message=fields[0])
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=draining")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")
