"""Find the config file and turn its text into data (not yet validated).

Reading is split from validation because the plugin set depends on the file:
``plugins.disable`` must be known before plugins are loaded, and the schema
depends on which plugins loaded. So the CLI reads, loads plugins, then validates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vger.config.expand import Expanded, expand_env
from vger.config.locations import Locations
from vger.errors import ConfigError

CONFIG_ENV = "VGER_CONFIG"
LOCAL_NAME = "vger.yaml"
#: Last place searched; a module attribute so tests can point it elsewhere.
SYSTEM_CONFIG = Path("/etc/vger/config.yaml")


@dataclass(frozen=True)
class RawConfig:
    """A parsed, env-expanded config document that has not been validated yet.

    ``locations`` maps key paths to file lines so later errors can cite them.
    """

    path: Path
    data: dict[str, Any]
    locations: Locations = field(default_factory=Locations, compare=False, repr=False)


def _user_config_path(environ: Mapping[str, str]) -> Path:
    # The XDG base-directory spec says a relative XDG_CONFIG_HOME is invalid
    # and must be ignored.
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "vger" / "config.yaml"
    return Path.home() / ".config" / "vger" / "config.yaml"


def search_path() -> list[Path]:
    """The implicit places, in order (after ``--config`` and ``VGER_CONFIG``)."""
    return [Path.cwd() / LOCAL_NAME, _user_config_path(os.environ), SYSTEM_CONFIG]


def locate_config(explicit: str | None) -> Path:
    """Return the config file to use; first hit of config.md's search order wins.

    An explicit ``--config`` or ``VGER_CONFIG`` that names a missing file is an
    error rather than a fall-through: silently using another file than the one
    the user pointed at could back up the wrong things to the wrong place.
    """
    if explicit:
        return _must_exist(Path(explicit).expanduser(), f"config file {explicit} (from --config)")
    from_env = os.environ.get(CONFIG_ENV, "")
    if from_env:
        return _must_exist(Path(from_env).expanduser(), f"config file {from_env} (from ${CONFIG_ENV})")
    searched = search_path()
    for candidate in searched:
        if candidate.is_file():
            return candidate.absolute()
    places = [f"--config, ${CONFIG_ENV} (not set)", *(str(p) for p in searched)]
    raise ConfigError(
        "no configuration file found; searched: "
        + ", ".join(places)
        + ". Run `vger config` to write a starter file."
    )


def _must_exist(path: Path, what: str) -> Path:
    if path.is_file():
        return path.absolute()
    if path.exists():
        raise ConfigError(f"{what} is not a regular file")
    raise ConfigError(f"{what} does not exist; run `vger config --dest {path}` to write a starter file")


def read_config(path: Path, environ: Mapping[str, str] | None = None) -> RawConfig:
    """Read, expand ``${VAR}`` placeholders, and parse; raise ConfigError with file:line."""
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    expanded = expand_env(text, env, path)
    data, locations = _parse(expanded, path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty; run `vger config` to see a starter file")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1: expected a mapping of keys (repositories:, sources:, ...) at the top, "
            f"found {type(data).__name__}"
        )
    return RawConfig(path=path, data=data, locations=locations)


def disabled_plugins(raw: RawConfig) -> list[str]:
    """``plugins.disable`` if well-formed, else []: malformed values are reported by validation.

    Tolerant on purpose: this runs before validation (the schema needs the plugin
    set), and a type error here should surface as a proper validation message.
    """
    plugins = raw.data.get("plugins")
    if not isinstance(plugins, dict):
        return []
    disable = plugins.get("disable")
    if isinstance(disable, list) and all(isinstance(item, str) for item in disable):
        return list(disable)
    return []


# -- a cache of parsed configs ---------------------------------------------------
# PyYAML's import is 6-8 ms of every command (its reader compiles a large
# Unicode regex), about 3 % of a no-change backup. A config parsed before is
# taken from <cache>/parsed-configs, keyed by a digest of its expanded text:
# JSON, which the process has imported anyway. Only documents without secrets
# are kept (the rule of the validation memo: no passphrase, token or url
# password in a cache file, nor a fast hash of one), and only those that come
# back from JSON exactly as parsed. Key lines for error messages are found by
# parsing again, only when an error is reported. Losing the file costs one parse.
_PARSED_FILE = "parsed-configs"
_KEEP_PARSED = 16


def _parse(expanded: Expanded, path: Path) -> tuple[Any, Locations]:
    import json

    key = _parsed_key(expanded.text)
    cached = _read_parsed().get(key)
    if cached is not None:
        return cached, Locations(compute=lambda: _parse_yaml(expanded, path)[1].lines)
    data, locations = _parse_yaml(expanded, path)
    try:
        same = json.loads(json.dumps(data)) == data
    except (TypeError, ValueError):
        same = False
    if same and isinstance(data, dict):
        from vger.config.effective import mask_secrets

        if mask_secrets(data) == data:
            _write_parsed(key, data)
    return data, locations


def _parse_yaml(expanded: Expanded, path: Path) -> tuple[Any, Locations]:
    from vger.config.yamlload import parse_yaml

    return parse_yaml(expanded, path)


def _parsed_key(text: str) -> str:
    import hashlib

    from vger import __version__

    return hashlib.blake2b(f"{__version__}\0{text}".encode(), digest_size=16).hexdigest()


def _read_parsed() -> dict[str, Any]:
    from vger.cachedir import read_json_memo

    return read_json_memo(_PARSED_FILE)


def _write_parsed(key: str, data: dict[str, Any]) -> None:
    from vger.cachedir import write_json_memo

    known = _read_parsed()
    known.pop(key, None)
    known[key] = data
    write_json_memo(_PARSED_FILE, known, _KEEP_PARSED)
