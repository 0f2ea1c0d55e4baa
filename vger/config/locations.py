"""Where each key of a config file sits, for error messages that cite ``file:line``.

Apart from the YAML parser (yamlload.py) so that a config read from the parse
cache (reader.py) needs no PyYAML until an error is to be reported.
"""

from __future__ import annotations

from collections.abc import Callable

KeyPath = tuple[str | int, ...]


class Locations:
    """Key path -> 1-based file line of that key (or list item).

    ``compute`` makes the map on first use instead (by parsing the file again).
    """

    __slots__ = ("_compute", "_lines")

    def __init__(
        self, lines: dict[KeyPath, int] | None = None, compute: Callable[[], dict[KeyPath, int]] | None = None
    ) -> None:
        self._lines = lines
        self._compute = compute

    @property
    def lines(self) -> dict[KeyPath, int]:
        if self._lines is None:
            self._lines = self._compute() if self._compute is not None else {}
        return self._lines

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, else of its nearest ancestor we know."""
        lines = self.lines
        for end in range(len(path), -1, -1):
            line = lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Locations) and self.lines == other.lines

    def __repr__(self) -> str:
        return f"Locations({self.lines!r})"
