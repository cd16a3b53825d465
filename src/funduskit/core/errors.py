"""User-facing errors.

Every error a user can cause (a missing file, a malformed spreadsheet row, a mask of the wrong
size) is raised as :class:`FunduskitError` with a message that names the file and says what was
expected, so the command line can print it without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class FunduskitError(Exception):
    """An error caused by the user's input; its message names the file and the fix."""


class DataError(FunduskitError):
    """A data set, image, mask or spreadsheet that cannot be used as it is."""

    def __init__(self, path: str | Path, problem: str, *, row: int | None = None, fix: str | None = None):
        self.path = Path(path)
        self.problem = problem
        self.row = row
        self.fix = fix
        where = f"{self.path}" + (f", row {row}" if row is not None else "")
        message = f"{where}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)
