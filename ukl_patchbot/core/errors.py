"""Exception kinds. Failed builds, boots and conflicts are results, not exceptions.

`cli.py` alone maps these to exit codes: a `UserError` (bad input the user can
fix) and an `InfraError` (the machine or a tool let us down) both exit 1 with
their message; a failed *result* exits 2.
"""

from __future__ import annotations


class PatchbotError(Exception):
    """Base of all errors the tool raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UserError(PatchbotError):
    """Bad input: a wrong tag, a malformed patch, a dirty series directory."""


class InfraError(PatchbotError):
    """The environment failed: a missing tool, a full disk, a timed-out command."""


class CommandFailed(InfraError):
    """A subprocess exited non-zero where the caller treats that as an error."""

    def __init__(self, argv: list[str], returncode: int, log_path: str | None, tail: str) -> None:
        import shlex

        msg = f"command failed (exit {returncode}): {shlex.join(argv)}"
        if tail:
            msg += "\n" + tail
        super().__init__(msg, hint=f"full log: {log_path}" if log_path else None)
        self.argv = argv
        self.returncode = returncode
        self.log_path = log_path
        self.tail = tail
