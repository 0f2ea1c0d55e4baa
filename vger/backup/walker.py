"""Walking a source: which entries go into a snapshot, in a stable order.

Entries come out in pre-order with names sorted bytewise, so the item stream is
deterministic and unchanged trees give unchanged metadata chunks (dedup).
Excludes are gitignore-style patterns (``pathspec``) matched against the
absolute path, so both ``*.pyc`` and ``/home/ann/.cache`` mean what they say.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence

# Plain classes, and no `typing` or `dataclasses` at run time: the walk-ahead
# child (walkahead.py) loads this module alone, and those two imports were
# 9 ms of its 25 ms start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import pathspec


class WalkOptions:
    """How a source is walked; compared by value (a remembered walk plan must match exactly)."""

    __slots__ = ("exclude", "exclude_if_present", "git_ignore", "one_file_system")

    def __init__(
        self,
        exclude: Sequence[str] = (),
        exclude_if_present: Sequence[str] = (),
        one_file_system: bool = True,
        git_ignore: bool = False,
    ) -> None:
        self.exclude = exclude
        self.exclude_if_present = exclude_if_present
        self.one_file_system = one_file_system
        self.git_ignore = git_ignore

    def _key(self) -> tuple[object, ...]:
        return (tuple(self.exclude), tuple(self.exclude_if_present), self.one_file_system, self.git_ignore)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WalkOptions) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "WalkOptions(exclude={!r}, exclude_if_present={!r}, one_file_system={!r}, git_ignore={!r})".format(
            *self._key()
        )


class Entry:
    """One filesystem entry found by the walk (``path`` is absolute, bytes)."""

    __slots__ = ("path", "st")

    def __init__(self, path: bytes, st: os.stat_result) -> None:
        self.path = path
        self.st = st


class WalkError:
    __slots__ = ("message", "path")

    def __init__(self, path: bytes, message: str) -> None:
        self.path = path
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WalkError) and (self.path, self.message) == (other.path, other.message)

    def __repr__(self) -> str:
        return f"WalkError({self.path!r}, {self.message!r})"


class _GitIgnore:
    __slots__ = ("base", "spec")

    def __init__(self, base: bytes, spec: pathspec.PathSpec) -> None:
        self.base = base  # directory the .gitignore lives in
        self.spec = spec


class Walker:
    """Yields :class:`Entry` objects; problems are collected in ``errors``, never raised."""

    def __init__(self, options: WalkOptions) -> None:
        self.options = options
        self.errors: list[WalkError] = []
        self._spec = _compile(self.options.exclude) if self.options.exclude else None
        self._markers = [os.fsencode(m) for m in self.options.exclude_if_present]

    def _excluded(self, path: bytes, is_dir: bool, ignores: list[_GitIgnore]) -> bool:
        if self._spec is None and not ignores:
            return False  # the common case: no decoding per entry
        text = os.fsdecode(path)
        if self._spec is not None:
            rel = text.lstrip("/") + ("/" if is_dir else "")
            if self._spec.match_file(rel):
                return True
        for ignore in ignores:
            rel_b = os.path.relpath(path, ignore.base)
            rel = os.fsdecode(rel_b) + ("/" if is_dir else "")
            if ignore.spec.match_file(rel):
                return True
        return False

    def walk(self, root: str) -> Iterator[Entry]:
        root_b = os.fsencode(os.path.abspath(root))
        try:
            st = os.lstat(root_b)
        except OSError as exc:
            self.errors.append(WalkError(root_b, f"cannot read source: {exc.strerror}"))
            return
        yield Entry(root_b, st)
        if stat.S_ISDIR(st.st_mode):
            yield from self._walk_dir(root_b, st.st_dev, [])

    def _list(
        self, directory: bytes, ignores: list[_GitIgnore]
    ) -> tuple[Iterator[os.DirEntry[bytes]], list[_GitIgnore]] | None:
        """A directory's entries in name order with the ignore rules below it; None: skip it."""
        if self._markers and any(os.path.lexists(os.path.join(directory, m)) for m in self._markers):
            return None
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.errors.append(WalkError(directory, f"cannot list directory: {exc.strerror}"))
            return None
        if self.options.git_ignore:
            ignores = self._with_gitignore(directory, ignores)
        return iter(entries), ignores

    def _walk_dir(self, directory: bytes, root_dev: int, ignores: list[_GitIgnore]) -> Iterator[Entry]:
        # Iterative pre-order with an explicit stack: nested ``yield from``
        # passed every entry through one generator per level of depth.
        top = self._list(directory, ignores)
        stack = [top] if top is not None else []
        one_file_system = self.options.one_file_system
        while stack:
            entries, level_ignores = stack[-1]
            dent = next(entries, None)
            if dent is None:
                stack.pop()
                continue
            path = dent.path
            try:
                st = dent.stat(follow_symlinks=False)
            except OSError as exc:
                self.errors.append(WalkError(path, f"cannot stat: {exc.strerror}"))
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if self._excluded(path, is_dir, level_ignores):
                continue
            if stat.S_ISSOCK(st.st_mode):
                continue  # sockets cannot be restored meaningfully (borg and restic skip them too)
            yield Entry(path, st)
            if is_dir:
                if one_file_system and st.st_dev != root_dev:
                    continue  # a mount point: record it, do not descend
                below = self._list(path, level_ignores)
                if below is not None:
                    stack.append(below)

    def _with_gitignore(self, directory: bytes, ignores: list[_GitIgnore]) -> list[_GitIgnore]:
        path = os.path.join(directory, b".gitignore")
        try:
            with open(path, "rb") as fh:
                lines = fh.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return ignores
        except OSError as exc:
            self.errors.append(WalkError(path, f"cannot read .gitignore: {exc.strerror}"))
            return ignores
        return [*ignores, _GitIgnore(directory, _compile(lines))]


def _compile(lines: Sequence[str]) -> pathspec.PathSpec:
    # Imported here: pathspec and typing_extensions cost 25 ms of start-up, and
    # most sources have no excludes (a no-change backup takes well under a second).
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)
