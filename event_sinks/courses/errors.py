"""The one error the course readers raise: a course that cannot be read, located by file and line."""

from __future__ import annotations

from ..errors import EventSinksError


class CourseReadError(EventSinksError):
    """A course could not be read: unknown or unreadable export, malformed or unsafe XML, missing file.

    ``path`` names the file at fault (relative to the export root when there is one) and ``line`` the
    line in it when known, so an operator can go straight to the problem; both are in the message too.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        if self.path is None:
            return self.message
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"

    def __reduce__(self) -> tuple[type[CourseReadError], tuple[str, str | None, int | None]]:
        return (type(self), (self.message, self.path, self.line))
