"""The contract every storage backend plugin must pass (see :class:`vger.interfaces.StorageBackend`).

Why these tests: the repository format assumes very little of storage -- a
flat key/value store -- but relies on every bit of it. A ``put`` that can be
seen half-written, a ``get_range`` that returns fewer bytes, a missing key that
surfaces as a generic error, or a listing that shows temporary files each turn
into a corrupt or unrecoverable repository after a crash or a bad network day.
Modelled on restic's backend test suite, which every restic backend runs.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, overload

import pytest

from vger.errors import (
    ObjectNotFound,
    PermanentStorageError,
    RepositoryExists,
    StorageError,
    TransientStorageError,
)
from vger.interfaces import StorageBackend
from vger.testing._support import (
    KiB,
    MiB,
    as_buffers,
    check_component_name,
    check_options_schema,
    random_bytes,
    run_in_threads,
)

BackendFactory = Callable[[], Any]

#: RFC 3986 scheme grammar, lower case only because vger routes urls by scheme.
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")

#: Keys a backend MUST refuse: each would escape the repository on a filesystem
#: or alias another key on an object store.
UNSAFE_KEYS = ("../x", "/abs", "/", "a/../../x", "..", "a/..", "")

#: Prefixes ``list`` MUST refuse for the same reason.
UNSAFE_PREFIXES = ("../", "..", "/abs", "a/../..")

#: Keys outside the grammar (``/``-separated segments of ``[a-z0-9._-]``) a
#: backend MUST refuse: upper case folds on some filesystems, unicode has
#: several spellings (NFC/NFD), and empty or dot segments alias other keys.
INVALID_KEYS = (
    "Packs/ab",
    "packs/AB",
    "snapshots/caf\u00e9",
    "snapshots/cafe\u0301",
    "index/\u0430bc",  # Cyrillic a
    "a b",
    "a//b",
    "a/",
    "./a",
    "a/./b",
    "a\\b",
    "a:b",
    "a\x00b",
    "a\nb",
    "a*b",
    "a%2fb",
)

#: Listing prefixes outside the grammar, refused for the same reasons.
INVALID_PREFIXES = ("Packs", "caf\u00e9/", "a//", "a b/")


class InjectedFault(Exception):
    """Raised by the part sequences below to break a write half-way on purpose."""


class _Parts(Sequence[bytes]):
    """Parts of an object that run ``on_half`` (or raise) after handing over half of them.

    A real write takes a while: the suite needs a moment *inside* ``put_parts``
    when some bytes were handed over and the call has not returned, to look at
    the key from another thread or to make the write fail there.
    """

    def __init__(self, parts: list[bytes], on_half: Callable[[], None]) -> None:
        self._parts = parts
        self._on_half = on_half

    def __len__(self) -> int:
        return len(self._parts)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return self._parts[index]
        if index == len(self._parts) // 2:
            self._on_half()
        return self._parts[index]

    def __iter__(self) -> Iterator[bytes]:
        for index in range(len(self._parts)):
            yield self[index]


def _collect(backend: Any, prefix: str) -> list[str]:
    return list(backend.list(prefix))


class StorageBackendContract:
    """Subclass this in a module named ``test_*.py`` under a class named ``Test*``.

    Override:

    ``backend_factory`` fixture (required)
        Return a zero-argument callable that builds a new backend instance on
        one fresh location private to the test (a folder under ``tmp_path``, a
        unique bucket prefix, ...). Calling it twice MUST give two instances on
        the *same* location: that is how the suite checks persistence and
        ``create()`` on a non-empty location. Do not call ``create()`` yourself.
    ``many_keys``
        How many keys the listing test writes; above 1000 on purpose, because
        S3-style APIs page listings at 1000 and a forgotten continuation token
        is a classic bug.
    ``large_object_size``
        Size of the ``slow`` large-object test (default 100 MiB; packs reach 512 MiB).
    ``atomic_object_size``
        Size of the objects rewritten while other threads read and list.
    ``unreachable_backend_factory`` fixture (optional)
        Return a callable building an instance whose location cannot be
        reached (server stopped, port closed, bucket missing...). The suite
        then checks that every operation fails within ``unreachable_seconds``
        with a :class:`~vger.errors.TransientStorageError` or
        :class:`~vger.errors.PermanentStorageError` naming the location --
        never ``ObjectNotFound`` (vger would tell the user to run ``init``)
        and never a library's own exception. Skipped when not overridden.

    The ``backend`` fixture gives an instance on which ``create()`` was called.
    Tests marked ``slow`` need the marker registered in your pytest config
    (``markers = ["slow: ..."]``) if you run with ``--strict-markers``.
    """

    many_keys: ClassVar[int] = 1100
    large_object_size: ClassVar[int] = 100 * MiB
    atomic_object_size: ClassVar[int] = 8 * MiB
    unreachable_seconds: ClassVar[float] = 30.0

    @pytest.fixture
    def unreachable_backend_factory(self) -> BackendFactory | None:
        return None

    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        raise TypeError(
            f"{type(self).__name__}: override the `backend_factory` fixture to return a callable "
            "that builds a backend on a fresh location"
        )

    @pytest.fixture
    def backend(self, backend_factory: BackendFactory) -> Iterator[Any]:
        instance = backend_factory()
        instance.create()
        yield instance
        instance.close()

    # -- identity and creation ------------------------------------------------

    def test_satisfies_the_protocol(self, backend: Any) -> None:
        assert isinstance(backend, StorageBackend)
        cls = type(backend)
        check_component_name(cls.name)
        assert isinstance(cls.schemes, tuple) and cls.schemes, "`schemes` must be a non-empty tuple"
        for scheme in cls.schemes:
            assert isinstance(scheme, str) and SCHEME.match(scheme), f"bad url scheme {scheme!r}"
        assert isinstance(backend.location, str) and backend.location

    def test_options_schema_is_valid(self, backend: Any) -> None:
        check_options_schema(type(backend).options_schema)

    def test_new_repository_lists_nothing(self, backend: Any) -> None:
        assert _collect(backend, "") == []

    def test_create_on_an_empty_location_is_allowed(
        self, backend: Any, backend_factory: BackendFactory
    ) -> None:
        other = backend_factory()
        other.create()
        other.close()

    def test_create_refuses_a_non_empty_location(self, backend: Any, backend_factory: BackendFactory) -> None:
        backend.put("config", b"existing repository")
        other = backend_factory()
        with pytest.raises(RepositoryExists):
            other.create()
        other.close()
        assert backend.get("config") == b"existing repository", "a refused create() must touch nothing"

    def test_another_instance_sees_the_objects(self, backend: Any, backend_factory: BackendFactory) -> None:
        backend.put("snapshots/ab12", b"persisted")
        other = backend_factory()
        try:
            assert other.get("snapshots/ab12") == b"persisted"
            assert _collect(other, "snapshots") == ["snapshots/ab12"]
        finally:
            other.close()

    def test_close_after_use(self, backend: Any, backend_factory: BackendFactory) -> None:
        other = backend_factory()
        other.put("k", b"v")
        other.close()
        assert backend.get("k") == b"v"

    # -- round trips ----------------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, 4 * KiB + 1, 5 * MiB + 3], ids=["empty", "1B", "4KiB", "5MiB"])
    def test_round_trip(self, backend: Any, size: int) -> None:
        data = random_bytes(size, seed=size)
        backend.put("packs/00/object", data)
        out = backend.get("packs/00/object")
        assert isinstance(out, bytes), "get() must return bytes"
        assert out == data
        assert backend.size("packs/00/object") == size
        assert backend.exists("packs/00/object") is True

    @pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
    def test_put_accepts_every_buffer_type(self, backend: Any, kind: str) -> None:
        data = random_bytes(10_000, seed=11)
        backend.put("index/segment", dict(as_buffers(data))[kind])
        assert backend.get("index/segment") == data

    def test_key_with_every_allowed_character(self, backend: Any) -> None:
        key = "abcdefghijklmnopqrstuvwxyz/0123456789/a.b_c-d"
        backend.put(key, b"grammar")
        assert backend.get(key) == b"grammar"
        assert _collect(backend, "") == [key]

    def test_top_level_key(self, backend: Any) -> None:
        backend.put("config", b"top level")
        assert backend.get("config") == b"top level"
        assert _collect(backend, "") == ["config"]

    @pytest.mark.slow
    def test_large_object(self, backend: Any) -> None:
        size = self.large_object_size
        data = random_bytes(size, seed=12)
        backend.put("packs/ff/large", data)
        assert backend.size("packs/ff/large") == size
        assert backend.get_range("packs/ff/large", size - 4096, 4096) == data[-4096:]
        assert backend.get_range("packs/ff/large", size // 2, MiB) == data[size // 2 : size // 2 + MiB]
        assert backend.get("packs/ff/large") == data

    # -- optional put_parts ------------------------------------------------------

    def _put_parts(self, backend: Any) -> Callable[[str, Sequence[Any]], None]:
        put_parts = getattr(backend, "put_parts", None)
        if put_parts is None:
            pytest.skip("the backend has no put_parts (optional)")
        return put_parts

    def test_put_parts_stores_the_concatenation(self, backend: Any) -> None:
        put_parts = self._put_parts(backend)
        chunks = [random_bytes(size, seed=60 + size) for size in (0, 1, 4096, 100_000, 0, 7)]
        parts = [
            chunks[0],
            bytearray(chunks[1]),
            memoryview(chunks[2]),
            chunks[3],
            memoryview(chunks[4]),
            memoryview(b"xx" + chunks[5])[2:],
        ]
        put_parts("packs/03/parts", parts)
        assert backend.get("packs/03/parts") == b"".join(chunks)
        assert backend.size("packs/03/parts") == sum(map(len, chunks))
        put_parts("packs/03/none", [])
        assert backend.get("packs/03/none") == b""

    def test_put_parts_with_thousands_of_parts(self, backend: Any) -> None:
        # More parts than one writev (IOV_MAX, 1024 on Linux) or one multipart
        # request may carry: batching bugs lose or repeat a part at the seams.
        put_parts = self._put_parts(backend)
        parts = [i.to_bytes(4, "little") * (1 + i % 3) for i in range(3000)]
        put_parts("packs/04/many", parts)
        assert backend.get("packs/04/many") == b"".join(parts)

    def test_put_parts_overwrites_and_refuses_unsafe_keys(self, backend: Any) -> None:
        put_parts = self._put_parts(backend)
        backend.put("index/p", b"old content that is longer")
        put_parts("index/p", [b"new", b" content"])
        assert backend.get("index/p") == b"new content"
        for key in UNSAFE_KEYS:
            with pytest.raises(StorageError):
                put_parts(key, [b"escape"])
        assert sorted(_collect(backend, "")) == ["index/p"]

    # -- ranged reads ----------------------------------------------------------

    def test_get_range_returns_exactly_the_bytes(self, backend: Any) -> None:
        data = random_bytes(MiB + 17, seed=13)
        backend.put("packs/01/pack", data)
        size = len(data)
        for offset, length in ((0, 1), (0, size), (1, 10), (size - 1, 1), (size // 2, 1000), (4096, 65536)):
            out = backend.get_range("packs/01/pack", offset, length)
            assert isinstance(out, bytes)
            assert out == data[offset : offset + length], f"range ({offset}, {length})"

    def test_get_range_past_the_end_raises(self, backend: Any) -> None:
        data = random_bytes(1000, seed=14)
        backend.put("packs/02/pack", data)
        for offset, length in ((995, 10), (1000, 1), (5000, 1), (0, 1001)):
            with pytest.raises(StorageError):
                backend.get_range("packs/02/pack", offset, length)
        backend.put("packs/02/empty", b"")
        with pytest.raises(StorageError):
            backend.get_range("packs/02/empty", 0, 1)

    def test_get_range_of_zero_bytes(self, backend: Any) -> None:
        # Zero bytes inside (or right at the end of) the object is a valid,
        # empty answer; past the end it is as wrong as any other range there.
        backend.put("packs/05/pack", b"0123456789")
        for offset in (0, 5, 10):
            assert backend.get_range("packs/05/pack", offset, 0) == b"", f"offset {offset}"
        with pytest.raises(StorageError):
            backend.get_range("packs/05/pack", 11, 0)
        backend.put("packs/05/empty", b"")
        assert backend.get_range("packs/05/empty", 0, 0) == b""

    def test_get_range_refuses_negative_numbers(self, backend: Any) -> None:
        backend.put("packs/06/pack", b"0123456789")
        for offset, length in ((-1, 1), (0, -1), (-5, 5)):
            with pytest.raises((StorageError, ValueError)):
                out = backend.get_range("packs/06/pack", offset, length)
                pytest.fail(f"range ({offset}, {length}) returned {out!r}")

    # -- listing ----------------------------------------------------------------

    def test_list_many_keys(self, backend: Any) -> None:
        keys = [f"many/{i % 16:02x}/key-{i:06d}" for i in range(self.many_keys)]

        def worker(index: int) -> None:
            for key in keys[index::8]:
                backend.put(key, key.encode())

        run_in_threads(worker, 8)
        listed = _collect(backend, "many")
        assert len(listed) == len(keys), "a key was listed twice or not at all (paging bug?)"
        assert set(listed) == set(keys)
        assert sorted(_collect(backend, "many/")) == sorted(keys)
        assert sorted(_collect(backend, "")) == sorted(keys)

    def test_list_by_prefix(self, backend: Any) -> None:
        layout = {
            "config": b"c",
            "index/0001": b"i1",
            "index/0002": b"i2",
            "packs/00/p1": b"p1",
            "packs/00/p2": b"p2",
            "packs/01/p3": b"p3",
            "snapshots/s1": b"s1",
            "locks/l1": b"l1",
        }
        for key, value in layout.items():
            backend.put(key, value)
        for prefix in ("packs", "packs/"):
            assert sorted(_collect(backend, prefix)) == ["packs/00/p1", "packs/00/p2", "packs/01/p3"]
        assert sorted(_collect(backend, "packs/00")) == ["packs/00/p1", "packs/00/p2"]
        assert sorted(_collect(backend, "index/")) == ["index/0001", "index/0002"]
        assert _collect(backend, "nothing-here") == []
        assert _collect(backend, "nothing-here/") == []
        every = _collect(backend, "")
        assert sorted(every) == sorted(layout)
        for key in every:
            assert isinstance(key, str)
            assert backend.get(key) == layout[key], "a listed key must be gettable as listed"

    def test_deleted_keys_are_not_listed(self, backend: Any) -> None:
        backend.put("locks/a", b"a")
        backend.put("locks/b", b"b")
        backend.delete("locks/a")
        assert _collect(backend, "locks") == ["locks/b"]

    # -- missing keys ---------------------------------------------------------

    @pytest.mark.parametrize("key", ["missing", "deep/missing/key", "folder", "folder/child/grandchild"])
    def test_missing_key_raises_object_not_found(self, backend: Any, key: str) -> None:
        # "folder" only exists as the prefix of another key: on a filesystem it
        # is a directory, but it is not an object.
        backend.put("folder/child", b"present")
        with pytest.raises(ObjectNotFound):
            backend.get(key)
        with pytest.raises(ObjectNotFound):
            backend.get_range(key, 0, 1)
        with pytest.raises(ObjectNotFound):
            backend.size(key)
        with pytest.raises(ObjectNotFound):
            backend.delete(key)
        assert backend.exists(key) is False
        assert backend.get("folder/child") == b"present"

    def test_not_found_names_the_key(self, backend: Any) -> None:
        with pytest.raises(ObjectNotFound) as caught:
            backend.get("snapshots/0123abcd")
        assert "snapshots/0123abcd" in str(caught.value), "the message must say which key is missing"

    def test_delete_removes_the_object(self, backend: Any) -> None:
        backend.put("snapshots/gone", b"bye")
        backend.delete("snapshots/gone")
        assert backend.exists("snapshots/gone") is False
        with pytest.raises(ObjectNotFound):
            backend.get("snapshots/gone")
        with pytest.raises(ObjectNotFound):
            backend.delete("snapshots/gone")

    # -- overwrite and atomicity -----------------------------------------------

    def test_overwrite_replaces_the_content(self, backend: Any) -> None:
        big, small = random_bytes(300_000, seed=15), b"small"
        backend.put("index/over", big)
        backend.put("index/over", small)
        assert backend.get("index/over") == small
        assert backend.size("index/over") == len(small)
        backend.put("index/over", big)
        assert backend.get("index/over") == big
        backend.put("index/over", b"")
        assert backend.get("index/over") == b""
        assert _collect(backend, "index") == ["index/over"]

    def _write_while_watching(self, backend: Any, watch: Callable[[list[bytes], set[str]], None]) -> None:
        """Rewrite objects on one thread while ``watch`` runs on another until done."""
        size = self.atomic_object_size
        # Each version has its own length and fill byte, so a torn or short read
        # cannot pass for any of them.
        versions = [bytes([fill]) * (size + fill * 4096) for fill in (1, 2, 3)]
        keys = {"atomic/object"} | {f"atomic/new-{i}" for i in range(6)}
        done = threading.Event()
        errors: list[BaseException] = []

        def watcher() -> None:
            try:
                while not done.is_set():
                    watch(versions, keys)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=watcher)
        thread.start()
        try:
            for round_number in range(6):
                backend.put("atomic/object", versions[round_number % 3])
                backend.put(f"atomic/new-{round_number}", versions[(round_number + 1) % 3])
        finally:
            done.set()
            thread.join(timeout=120)
        assert not errors, f"the watcher saw: {errors[0]!r}"
        assert sorted(_collect(backend, "atomic")) == sorted(keys)

    def test_readers_never_see_a_partial_object(self, backend: Any) -> None:
        seen_once: set[str] = set()

        def read_all(versions: list[bytes], keys: set[str]) -> None:
            for key in sorted(keys):
                try:
                    data = backend.get(key)
                except ObjectNotFound:
                    # Absent before its first put, never after: an overwrite
                    # must not make the key vanish for a moment.
                    assert key not in seen_once, f"{key} disappeared during an overwrite"
                    continue
                seen_once.add(key)
                assert data and data[0] in (1, 2, 3), f"{key}: read {len(data)} bytes of an unknown version"
                assert data == versions[data[0] - 1], f"{key}: read a partial or mixed object"
                head = backend.get_range(key, 0, 4096)
                assert head in (bytes([1]) * 4096, bytes([2]) * 4096, bytes([3]) * 4096)

        self._write_while_watching(backend, read_all)

    def test_objects_being_written_are_never_listed(self, backend: Any) -> None:
        def list_all(versions: list[bytes], keys: set[str]) -> None:
            for key in _collect(backend, ""):
                assert key in keys, f"listing showed {key!r}, which was never put (a temporary file?)"
            for key in _collect(backend, "atomic/"):
                assert key in keys, f"listing showed {key!r}, which was never put (a temporary file?)"

        self._write_while_watching(backend, list_all)

    def test_a_write_in_progress_is_invisible(self, backend: Any) -> None:
        # Halfway through handing over the parts, another thread looks: the
        # new key must not exist yet and the key being overwritten must still
        # hold its old content, whole.
        put_parts = self._put_parts(backend)
        backend.put("atomic/old", b"old version")
        parts = [random_bytes(256 * KiB, seed=70 + i) for i in range(16)]
        seen: dict[str, Any] = {}

        def look() -> None:
            try:
                seen["new-exists"] = backend.exists("atomic/new")
                try:
                    seen["new-get"] = backend.get("atomic/new")
                except ObjectNotFound:
                    seen["new-get"] = None
                seen["old"] = backend.get("atomic/old")
                seen["listed"] = sorted(_collect(backend, "atomic"))
            except BaseException as exc:
                seen["error"] = exc

        def from_another_thread() -> None:
            thread = threading.Thread(target=look)
            thread.start()
            thread.join(timeout=60)
            assert not thread.is_alive(), "reading hung while a write was in progress"

        put_parts("atomic/new", _Parts(parts, from_another_thread))
        assert "error" not in seen, f"reading during a write raised {seen.get('error')!r}"
        assert seen["new-exists"] is False and seen["new-get"] is None, "a half-written object was visible"
        assert seen["old"] == b"old version"
        assert seen["listed"] == ["atomic/old"], f"listing showed {seen['listed']} during a write"
        assert backend.get("atomic/new") == b"".join(parts)

        seen.clear()
        put_parts("atomic/old", _Parts(parts, from_another_thread))
        assert seen["old"] == b"old version", "an overwrite in progress must leave the old version readable"
        assert backend.get("atomic/old") == b"".join(parts)

    def test_a_write_that_fails_half_way_leaves_nothing(self, backend: Any) -> None:
        put_parts = self._put_parts(backend)
        backend.put("atomic/kept", b"kept version")
        parts = [random_bytes(256 * KiB, seed=80 + i) for i in range(16)]

        def fail() -> None:
            raise InjectedFault("the data source broke half-way")

        for key in ("atomic/fresh", "atomic/kept"):
            with pytest.raises((InjectedFault, StorageError)):
                put_parts(key, _Parts(parts, fail))
        assert backend.exists("atomic/fresh") is False
        with pytest.raises(ObjectNotFound):
            backend.get("atomic/fresh")
        assert backend.get("atomic/kept") == b"kept version", "a failed overwrite damaged the old version"
        assert _collect(backend, "") == ["atomic/kept"], "a failed write left something listed"
        # and the same key can be written properly afterwards
        put_parts("atomic/fresh", parts)
        assert backend.get("atomic/fresh") == b"".join(parts)

    def test_concurrent_writers_from_eight_threads(self, backend: Any) -> None:
        payloads = [random_bytes(256 * KiB, seed=40 + i) for i in range(8)]

        def worker(index: int) -> None:
            for i in range(30):
                # Shared new folders: every thread races to create them.
                backend.put(f"conc/{i % 5}/{i}/t{index}", payloads[index][: 1000 + i])
            for _ in range(5):
                backend.put("conc-same/key", payloads[index])

        run_in_threads(worker, 8)
        expected = {f"conc/{i % 5}/{i}/t{t}" for t in range(8) for i in range(30)}
        assert set(_collect(backend, "conc")) == expected
        for key in expected:
            index, i = int(key.rsplit("/t", 1)[1]), int(key.split("/")[2])
            assert backend.get(key) == payloads[index][: 1000 + i]
        assert backend.get("conc-same/key") in payloads, "concurrent overwrites of one key mixed their data"

    # -- refusing unsafe keys ---------------------------------------------------

    @pytest.mark.parametrize("key", UNSAFE_KEYS)
    def test_unsafe_keys_are_refused(self, backend: Any, key: str) -> None:
        operations: list[tuple[str, Callable[[], object]]] = [
            ("put", lambda: backend.put(key, b"escape")),
            ("get", lambda: backend.get(key)),
            ("get_range", lambda: backend.get_range(key, 0, 1)),
            ("exists", lambda: backend.exists(key)),
            ("size", lambda: backend.size(key)),
            ("delete", lambda: backend.delete(key)),
        ]
        for label, operation in operations:
            with pytest.raises(StorageError):
                operation()
                pytest.fail(f"{label}({key!r}) was accepted")
        assert _collect(backend, "") == [], "a refused put must write nothing"

    @pytest.mark.parametrize("prefix", UNSAFE_PREFIXES)
    def test_unsafe_list_prefixes_are_refused(self, backend: Any, prefix: str) -> None:
        with pytest.raises(StorageError):
            _collect(backend, prefix)

    def _assert_refused(self, backend: Any, key: str) -> None:
        operations: list[tuple[str, Callable[[], object]]] = [
            ("put", lambda: backend.put(key, b"x")),
            ("get", lambda: backend.get(key)),
            ("get_range", lambda: backend.get_range(key, 0, 1)),
            ("exists", lambda: backend.exists(key)),
            ("size", lambda: backend.size(key)),
            ("delete", lambda: backend.delete(key)),
        ]
        put_parts = getattr(backend, "put_parts", None)
        if put_parts is not None:
            operations.append(("put_parts", lambda: put_parts(key, [b"x"])))
        for label, operation in operations:
            with pytest.raises(StorageError):
                operation()
                pytest.fail(f"{label}({key!r}) was accepted")

    def test_keys_outside_the_grammar_are_refused(self, backend: Any) -> None:
        for key in INVALID_KEYS:
            self._assert_refused(backend, key)
        for prefix in INVALID_PREFIXES:
            with pytest.raises(StorageError):
                _collect(backend, prefix)
                pytest.fail(f"list({prefix!r}) was accepted")
        assert _collect(backend, "") == [], "a refused key must write nothing"

    # -- error mapping --------------------------------------------------------------

    def test_an_object_used_as_a_folder_maps_to_storage_errors(self, backend: Any) -> None:
        # On a filesystem "config/child" runs through a file (ENOTDIR); the
        # library error must come out as vger's, never as a raw OSError.
        backend.put("config", b"an object, not a folder")
        with pytest.raises(ObjectNotFound):
            backend.get("config/child")
        with pytest.raises(ObjectNotFound):
            backend.get_range("config/child", 0, 1)
        with pytest.raises(ObjectNotFound):
            backend.size("config/child")
        with pytest.raises(ObjectNotFound):
            backend.delete("config/child")
        assert backend.exists("config/child") is False
        assert _collect(backend, "config/") == []
        try:
            backend.put("config/child", b"x")  # object stores allow it, filesystems cannot
        except StorageError as exc:
            assert isinstance(exc, TransientStorageError | PermanentStorageError), (
                f"{type(exc).__name__} is neither transient nor permanent"
            )
        assert backend.get("config") == b"an object, not a folder"

    def test_an_unreachable_location_fails_with_a_clear_error(
        self, unreachable_backend_factory: BackendFactory | None
    ) -> None:
        if unreachable_backend_factory is None:
            pytest.skip("no unreachable_backend_factory fixture (optional)")
        instance = unreachable_backend_factory()
        operations: list[tuple[str, Callable[[], object]]] = [
            ("create", instance.create),
            ("put", lambda: instance.put("config", b"x")),
            ("get", lambda: instance.get("config")),
            ("get_range", lambda: instance.get_range("config", 0, 1)),
            ("exists", lambda: instance.exists("config")),
            ("size", lambda: instance.size("config")),
            ("list", lambda: _collect(instance, "")),
        ]
        try:
            for label, operation in operations:
                started = time.monotonic()
                with pytest.raises((TransientStorageError, PermanentStorageError)) as caught:
                    operation()
                    pytest.fail(f"{label} on an unreachable location did not fail")
                elapsed = time.monotonic() - started
                assert elapsed < self.unreachable_seconds, f"{label} took {elapsed:.0f} s to fail"
                message = str(caught.value)
                assert "\n" not in message.strip(), f"{label}: the message must be one line: {message!r}"
                assert instance.location in message, f"{label}: {message!r} does not name {instance.location}"
        finally:
            instance.close()
