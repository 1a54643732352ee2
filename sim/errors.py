"""The one exception type for bad input: a field path and what is allowed."""

from __future__ import annotations


class ScenarioError(ValueError):
    """Bad input. `str(err)` is one line: `<where>: <what was wrong and what is allowed>`."""

    def __init__(self, where: str, message: str) -> None:
        self.where = _one_line(where)
        self.message = _one_line(message)
        super().__init__(f"{self.where}: {self.message}" if self.where else self.message)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())
