"""Search order of config.md: --config, VGER_CONFIG, ./vger.yaml, XDG/~/.config, /etc."""

from __future__ import annotations

from pathlib import Path

import pytest

from vger.config import locate_config, reader
from vger.errors import ConfigError


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Every search location pointed into tmp_path, none existing yet."""
    home, work, xdg = tmp_path / "home", tmp_path / "work", tmp_path / "xdg"
    for folder in (home, work, xdg):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("VGER_CONFIG", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.chdir(work)
    monkeypatch.setattr(reader, "SYSTEM_CONFIG", tmp_path / "etc" / "vger" / "config.yaml")
    return {
        "explicit": tmp_path / "explicit.yaml",
        "env": tmp_path / "env.yaml",
        "local": work / "vger.yaml",
        "xdg": xdg / "vger" / "config.yaml",
        "home": home / ".config" / "vger" / "config.yaml",
        "system": tmp_path / "etc" / "vger" / "config.yaml",
    }


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")
    return path


def test_each_place_wins_over_the_ones_after_it(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in places.values():
        touch(path)
    monkeypatch.setenv("VGER_CONFIG", str(places["env"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(places["xdg"].parent.parent))

    assert locate_config(str(places["explicit"])) == places["explicit"]
    assert locate_config(None) == places["env"]
    monkeypatch.delenv("VGER_CONFIG")
    assert locate_config(None) == places["local"]
    places["local"].unlink()
    assert locate_config(None) == places["xdg"]
    places["xdg"].unlink()
    # XDG_CONFIG_HOME is set but holds no file: ~/.config is not searched then.
    assert locate_config(None) == places["system"]
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert locate_config(None) == places["home"]


def test_relative_xdg_config_home_is_ignored(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(places["home"])
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert locate_config(None) == places["home"]


def test_explicit_path_that_does_not_exist_is_named(places: dict[str, Path]) -> None:
    touch(places["local"])  # must not be used instead
    with pytest.raises(ConfigError, match=r"nowhere\.yaml \(from --config\) does not exist"):
        locate_config("nowhere.yaml")


def test_vger_config_pointing_nowhere_is_an_error(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(places["local"])
    monkeypatch.setenv("VGER_CONFIG", "/no/such/file.yaml")
    with pytest.raises(ConfigError, match=r"/no/such/file\.yaml \(from \$VGER_CONFIG\)"):
        locate_config(None)


def test_nothing_found_lists_every_place_and_suggests_vger_config(places: dict[str, Path]) -> None:
    with pytest.raises(ConfigError) as info:
        locate_config(None)
    message = str(info.value)
    for key in ("local", "home", "system"):
        assert str(places[key]) in message
    assert "--config" in message and "VGER_CONFIG" in message
    assert "vger config" in message


def test_result_is_absolute(places: dict[str, Path]) -> None:
    touch(places["local"])
    assert locate_config("vger.yaml").is_absolute()
    assert locate_config(None).is_absolute()
