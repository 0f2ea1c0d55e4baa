"""The contract every dump plugin must pass (see :class:`vger.interfaces.DumpSource`).

Why these tests: a DBA finds out whether a dump plugin works on the day they
restore. By then a dump that was silently truncated, a tool failure that was
committed as a good snapshot, a name that escapes the dump folder or a
password left in ``ps`` output cannot be fixed. So the suite dumps real data
through the plugin, restores it through the plugin's own restorer and asks
the subclass to compare, and checks that failures surface as
:class:`vger.errors.VgerError` from ``finish()`` (the point where vger decides
not to commit).

The suite drives the component directly (no repository, no CLI), so it runs
in a plugin's own CI in seconds.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from vger.errors import VgerError
from vger.interfaces import DumpRestore, DumpSource, DumpStream
from vger.testing._support import check_component_name, check_options_schema

_BLOCK = 256 * 1024


def read_stream(stream: DumpStream) -> bytes:
    """Open, read to the end in blocks, finish: what vger does with every stream."""
    reader = stream.open()
    try:
        parts = []
        while block := reader.read(_BLOCK):
            parts.append(bytes(block))
    except BaseException:
        stream.abort()
        raise
    stream.finish()
    return b"".join(parts)


def record_of(source: Any, stream: DumpStream) -> dict[str, Any]:
    """The dump record vger stores in the snapshot (what ``restorer`` gets back)."""
    return {**dict(stream.metadata), "type": type(source).name, "name": stream.name}


class DumpSourceContract:
    """Subclass this in a module named ``test_*.py`` under a class named ``Test*``.

    Override:

    ``dump_class`` (required)
        The class your ``vger_register_dump_sources`` hook returns.
    ``dump_options`` fixture (required)
        Options (as a user's ``dumps:`` entry, ``type`` included) that dump
        something real -- create a small database with known rows here, and
        drop it at teardown.
    ``failing_options`` fixture
        Options whose dump MUST fail (a database that does not exist, a tool
        that exits non-zero). Default None: that test is skipped.
    ``restore_overrides(record)``
        The ``--host/--port/--username/--database`` values to restore with,
        usually another database so the original can be compared. Default ``{}``.
    ``check_restored(record, overrides, dumped)`` (required)
        Assert that the restore put back what ``dump_options`` created.
    ``secret``
        A password your options carry; it MUST NOT appear in a dump record or
        in ``describe()``. Default None.
    """

    dump_class: ClassVar[type[Any] | None] = None
    secret: ClassVar[str | None] = None

    @pytest.fixture
    def dump_options(self) -> Mapping[str, Any]:
        # A contract class that forgot its options is misconfigured, like one without dump_class.
        raise TypeError(f"{type(self).__name__}: override the `dump_options` fixture")

    @pytest.fixture
    def failing_options(self) -> Mapping[str, Any] | None:
        return None

    def restore_overrides(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def check_restored(self, record: Mapping[str, Any], overrides: Mapping[str, Any], dumped: bytes) -> None:
        raise TypeError(f"{type(self).__name__}: implement `check_restored`")

    # -- helpers -------------------------------------------------------------
    def _component_class(self) -> type[Any]:
        if self.dump_class is None:
            raise TypeError(f"{type(self).__name__}: set `dump_class`")
        return self.dump_class

    def build(self, options: Mapping[str, Any]) -> Any:
        return self._component_class()({"type": self._component_class().name, **dict(options)})

    # -- identity ------------------------------------------------------------
    def test_satisfies_the_protocol(self, dump_options: Mapping[str, Any]) -> None:
        source = self.build(dump_options)
        assert isinstance(source, DumpSource)
        check_component_name(type(source).name)

    def test_options_schema_is_valid_and_accepts_the_test_options(
        self, dump_options: Mapping[str, Any]
    ) -> None:
        import jsonschema

        schema = self._component_class().options_schema
        check_options_schema(schema)
        options = {k: v for k, v in dump_options.items() if k != "type"}
        errors = list(jsonschema.Draft202012Validator(dict(schema)).iter_errors(options))
        assert not errors, f"the schema rejects the options this test dumps with: {errors[0].message}"

    def test_builds_from_the_type_alone(self) -> None:
        # restore-dump builds the class with {"type": name} when the config no
        # longer has an entry for it: the constructor must not require options.
        self._component_class()({"type": self._component_class().name})

    # -- dumping -------------------------------------------------------------
    def test_dumps_have_clean_unique_names_and_json_records(self, dump_options: Mapping[str, Any]) -> None:
        source = self.build(dump_options)
        names = []
        for stream in source.dumps():
            assert isinstance(stream, DumpStream)
            name = stream.name
            assert isinstance(name, str) and name
            assert not name.startswith("/") and all(p not in ("", ".", "..") for p in name.split("/")), name
            names.append(name)
            record = record_of(source, stream)
            text = json.dumps(record)  # must survive msgpack and `list --dumps --json`
            if self.secret:
                assert self.secret not in text, "a password ended up in the dump record"
            stream.abort()  # never opened: must be harmless
        assert names, "dumps() yielded nothing for options that name something to dump"
        assert len(names) == len(set(names)), f"duplicate dump names: {names}"

    def test_a_dump_streams_to_its_end_and_finishes(self, dump_options: Mapping[str, Any]) -> None:
        source = self.build(dump_options)
        for stream in source.dumps():
            data = read_stream(stream)
            assert data, f"{stream.name}: an empty dump of a database holding rows"
            stream.abort()  # after finish(): must be harmless

    def test_abort_in_the_middle_stops_cleanly(self, dump_options: Mapping[str, Any]) -> None:
        source = self.build(dump_options)
        stream = next(iter(source.dumps()))
        reader = stream.open()
        reader.read(1)
        stream.abort()
        stream.abort()

    def test_a_failing_dump_raises_vger_error_by_finish(
        self, failing_options: Mapping[str, Any] | None
    ) -> None:
        if failing_options is None:
            pytest.skip("no `failing_options` given")
        source = self.build(failing_options)
        with pytest.raises(VgerError):
            for stream in source.dumps():
                read_stream(stream)

    # -- restoring -----------------------------------------------------------
    def test_restore_puts_the_data_back(self, dump_options: Mapping[str, Any]) -> None:
        source = self.build(dump_options)
        dumped = []
        for stream in source.dumps():
            dumped.append((record_of(source, stream), read_stream(stream)))
        for record, data in dumped:
            overrides = self.restore_overrides(record)
            # restore-dump builds a fresh instance from the config entry.
            restorer = self.build(dump_options).restorer(record, overrides)
            if restorer is None:
                continue
            assert isinstance(restorer, DumpRestore)
            shown = restorer.describe()
            assert isinstance(shown, str) and shown
            if self.secret:
                assert self.secret not in shown, "--dry-run would print the password"
            restorer.run(io.BufferedReader(io.BytesIO(data)))
            self.check_restored(record, overrides, data)
