"""Bounding failed logins: per client address and in all, in a fixed window.

A guesser gets ``per_client`` failures per window from one address, and all
addresses together ``overall`` (a botnet cannot multiply the rate past it);
past either, the login form answers 429 until the window ends, without
comparing the token. Successful logins cost nothing. The table of addresses
is bounded (``max_clients``): when full, the oldest entry goes, which at
worst gives that address a fresh allowance, still under the overall bound.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class LoginThrottle:
    per_client: int = 10
    overall: int = 100
    window_seconds: float = 60.0
    max_clients: int = 4096
    _clients: OrderedDict[str, tuple[float, int]] = field(default_factory=OrderedDict)
    _all: tuple[float, int] = (0.0, 0)

    def _count(self, entry: tuple[float, int] | None, now: float) -> int:
        if entry is None or now - entry[0] >= self.window_seconds:
            return 0
        return entry[1]

    def retry_after(self, client: str, now: float) -> float | None:
        """None when ``client`` may try a login now; else the seconds until it may."""
        waits = []
        entry = self._clients.get(client)
        if entry is not None and self._count(entry, now) >= self.per_client:
            waits.append(entry[0] + self.window_seconds - now)
        if self._count(self._all, now) >= self.overall:
            waits.append(self._all[0] + self.window_seconds - now)
        return max(waits) if waits else None

    def failed(self, client: str, now: float) -> None:
        """Count one failed login of ``client`` at ``now`` (monotonic seconds)."""
        entry = self._clients.pop(client, None)
        started = now if self._count(entry, now) == 0 or entry is None else entry[0]
        self._clients[client] = (started, self._count(entry, now) + 1)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        seen = self._count(self._all, now)
        self._all = (now if seen == 0 else self._all[0], seen + 1)
