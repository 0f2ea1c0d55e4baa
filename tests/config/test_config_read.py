"""Reading: ${VAR} expansion on raw text, YAML 1.2 scalars, parse errors with file:line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vger.config import RawConfig, disabled_plugins, read_config
from vger.errors import ConfigError

Write = Callable[..., Path]


def test_variables_and_defaults_are_expanded(write: Write) -> None:
    path = write(
        """
        a: ${SET}
        b: ${UNSET:-fallback}
        c: ${EMPTY:-used when empty}
        d: x${SET}y${SET}
        e: ${SET:-ignored}
        level: ${LEVEL}
        f: "${EMPTY}"
        g: $NOT_A_PLACEHOLDER
        """
    )
    raw = read_config(path, {"SET": "value", "EMPTY": "", "LEVEL": "7"})
    assert raw.data == {
        "a": "value",
        "b": "fallback",
        "c": "used when empty",
        "d": "xvalueyvalue",
        "e": "value",
        "level": 7,  # expansion happens before parsing, so numbers stay numbers
        "f": "",
        "g": "$NOT_A_PLACEHOLDER",
    }


def test_environ_defaults_to_the_process_environment(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VGER_TEST_VALUE", "from-env")
    assert read_config(write("a: ${VGER_TEST_VALUE}\n")).data == {"a": "from-env"}


def test_unset_variable_names_variable_file_and_line(write: Write) -> None:
    path = write("a: 1\nb: 2\npassword: ${DB_PASSWORD}\n")
    with pytest.raises(ConfigError) as info:
        read_config(path, {})
    message = str(info.value)
    assert message.startswith(f"{path}:3: ")
    assert "DB_PASSWORD" in message and "not set" in message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a: ${}\n", "empty variable name"),
        ("a: ${1X}\n", "'1X' is not a variable name"),
        ("a: ${NAME\nb: }\n", "unclosed"),
        ("a: ${A-default}\n", "'A-default' is not a variable name"),
        ("a: ${A:-${B}}\n", "nested"),
    ],
)
def test_malformed_placeholders_give_the_line(write: Write, text: str, why: str) -> None:
    path = write("first: line\n" + text)
    with pytest.raises(ConfigError) as info:
        read_config(path, {"A": "x", "B": "y", "NAME": "z"})
    message = str(info.value)
    assert message.startswith(f"{path}:2: malformed placeholder")
    assert why in message


def test_comment_lines_are_not_expanded(write: Write) -> None:
    raw = read_config(write("# old: ${GONE}\na: 1  # ${SET}\n"), {"SET": "x"})
    assert raw.data == {"a": 1}


def test_line_numbers_survive_multiline_values(write: Write) -> None:
    path = write("a: ${MULTI}\nb: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        read_config(path, {"MULTI": "|\n  one\n  two"})
    # The error is on expanded line 4, which is file line 2.
    assert str(info.value).startswith(f"{path}:2:")


def test_yaml_syntax_error_has_file_and_line(write: Write) -> None:
    path = write("repositories:\n  - url: /x\n sources: [\n")
    with pytest.raises(ConfigError) as info:
        read_config(path, {})
    assert str(info.value).startswith(f"{path}:3:")


def test_only_true_and_false_are_booleans(write: Write) -> None:
    path = write(
        """
        label: no
        a: yes
        b: on
        c: off
        d: Y
        e: true
        f: False
        g: TRUE
        h: 0755
        i: 1:30
        j: 2024-01-01
        k: 0x1f
        l: 0o17
        m: 1.5
        n: ~
        o: 1_000
        """
    )
    data = read_config(path, {}).data
    assert data["label"] == "no"
    assert (data["a"], data["b"], data["c"], data["d"]) == ("yes", "on", "off", "Y")
    assert (data["e"], data["f"], data["g"]) == (True, False, True)
    assert data["h"] == 755  # YAML 1.2: decimal, not octal
    assert data["i"] == "1:30"  # not sexagesimal 90
    assert data["j"] == "2024-01-01"  # not a date object
    assert (data["k"], data["l"], data["m"], data["n"]) == (31, 15, 1.5, None)
    assert data["o"] == "1_000"


def test_duplicate_keys_are_an_error(write: Write) -> None:
    path = write("sources: [/a]\nrepositories: []\nsources: [/b]\n")
    with pytest.raises(ConfigError, match=r":3: duplicate key 'sources' \(first on line 1\)"):
        read_config(path, {})


def test_merge_keys_still_work(write: Write) -> None:
    data = read_config(write("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n"), {}).data
    assert data["other"] == {"x": 1, "y": 2}


def test_keys_must_be_text(write: Write) -> None:
    with pytest.raises(ConfigError, match=r":2: a mapping key must be text, found 123"):
        read_config(write("a: 1\n123: x\n"), {})


def test_empty_file_and_non_mapping_documents(write: Write) -> None:
    with pytest.raises(ConfigError, match="empty"):
        read_config(write("# nothing\n"), {})
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_config(write("- a\n- b\n"), {})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_config(tmp_path / "absent.yaml", {})


def test_locations_record_lines(write: Write) -> None:
    raw = read_config(write("repositories:\n  - url: /x\n    label: a\nsources: [/y]\n"), {})
    assert raw.locations.line_of(("repositories", 0, "label")) == 3
    assert raw.locations.line_of(("sources", 0)) == 4
    # unknown paths fall back to the nearest ancestor
    assert raw.locations.line_of(("repositories", 0, "nope", 1)) == 2


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"plugins": {"disable": ["a", "b"]}}, ["a", "b"]),
        ({"plugins": {"disable": "a"}}, []),
        ({"plugins": {"disable": [1]}}, []),
        ({"plugins": None}, []),
        ({}, []),
    ],
)
def test_disabled_plugins_is_tolerant(data: dict, expected: list[str]) -> None:
    assert disabled_plugins(RawConfig(Path("x.yaml"), data)) == expected
