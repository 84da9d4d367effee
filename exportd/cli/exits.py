"""Exit codes of the command line, and the error that carries one."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and something is wrong (a failed job, a failed check)
EXIT_USAGE = 2  # the command could not run as asked (settings, arguments, definitions)
# Refused for now, fine later: the kind's quota is used up (sysexits' EX_TEMPFAIL).
EXIT_TRY_LATER = 75


class CliError(Exception):
    """A problem to report in one line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code
