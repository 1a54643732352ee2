"""The one exception type for bad input: a field path and what is allowed."""

from __future__ import annotations


class ScenarioError(ValueError):
    """Bad input. `str(err)` is one line: `<where>: <what was wrong and what is allowed>`."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)
