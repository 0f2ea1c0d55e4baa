"""The plugin manager: entry-point discovery, disabling, conflicts and load failures.

The last tests install a deliberately broken third-party distribution into a
throw-away virtual environment, because the promise "one broken plugin does not
break vger" is only worth something when the plugin comes from a real installed
distribution, found through its real entry point.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import vger
from vger import hookimpl
from vger.errors import PluginConflict, PluginError, PluginNotFound
from vger.pluginmanager import DISABLE_ENV, PluginSource, load_plugins

ROOT = Path(__file__).resolve().parents[2]

BUILTIN_COMPONENTS = {
    ("chunker", "fastcdc"),
    ("compressor", "lz4"),
    ("compressor", "zstd"),
    ("compressor", "none"),
    ("cipher", "aes256gcm"),
    ("cipher", "chacha20poly1305"),
    ("cipher", "none"),
    ("storage", "file"),
    ("storage", "s3"),
    ("storage", "sftp"),
    ("monitor", "healthchecks"),
    ("monitor", "ntfy"),
    ("monitor", "uptime_kuma"),
    ("monitor", "webhook"),
    ("dump", "command"),
    ("dump", "postgresql"),
    ("dump", "mariadb"),
    ("dump", "mysql"),
    ("dump", "sqlite"),
    ("dump", "mongodb"),
}


@pytest.fixture(autouse=True)
def _no_disable_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own VGER_DISABLE_PLUGINS must not change what these tests see.
    monkeypatch.delenv(DISABLE_ENV, raising=False)


def builtin_entry_points() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return dict(tomllib.load(fh)["project"]["entry-points"]["vger"])


def make_plugin(module_name: str, **hooks: Any) -> ModuleType:
    """An in-process plugin: a module whose attributes are hook implementations."""
    module = ModuleType(module_name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def source(plugin: str) -> PluginSource:
    return PluginSource(plugin=plugin, distribution=f"vger-{plugin}", version="1.0")


def compressor_class(name: str, tag: int) -> type[Any]:
    return type(f"Toy{tag}", (), {"name": name, "tag": tag, "options_schema": {"type": "object"}})


def storage_class(name: str, schemes: tuple[str, ...]) -> type[Any]:
    return type(f"Toy{name}", (), {"name": name, "schemes": schemes, "options_schema": {"type": "object"}})


# -- built-ins ------------------------------------------------------------------


def test_every_builtin_is_registered_from_the_vger_distribution() -> None:
    registry = load_plugins()
    assert not registry.failures, [failure.describe() for failure in registry.failures]
    assert not registry.conflicts
    for plugin in builtin_entry_points():
        assert registry.plugins[plugin].distribution == "vger"
        assert registry.plugins[plugin].version == vger.__version__
    for kind, name in BUILTIN_COMPONENTS:
        component_source = registry.source_of(kind, name)
        assert component_source is not None, f"{kind} {name} is not registered"
        assert component_source.distribution == "vger"
    assert len(builtin_entry_points()) == 21


def test_builtins_are_found_by_name_tag_and_scheme() -> None:
    registry = load_plugins()
    assert registry.get("compressor", "lz4").tag == 1
    assert registry.compressor_by_tag(2).name == "zstd"
    assert registry.compressor_by_tag(0).name == "none"
    assert registry.storage_for_scheme("file").name == "file"
    assert registry.storage_for_scheme("s3").name == "s3"
    assert registry.storage_for_scheme("sftp").name == "sftp"
    assert registry.names("cipher") == ["aes256gcm", "chacha20poly1305", "none"]


def test_each_run_gets_its_own_plugin_manager() -> None:
    assert load_plugins().pm is not load_plugins().pm


# -- disabling ------------------------------------------------------------------


def test_disable_env_removes_a_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, "compressor-zstd")
    registry = load_plugins()
    assert "zstd" not in registry.names("compressor")
    assert "compressor-zstd" not in registry.plugins
    assert "lz4" in registry.names("compressor")
    with pytest.raises(PluginNotFound, match="disabled") as excinfo:
        registry.get("compressor", "zstd")
    assert "compressor-zstd" in str(excinfo.value)
    with pytest.raises(PluginNotFound, match="compressor-zstd"):
        registry.compressor_by_tag(2)


def test_disable_env_accepts_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, " compressor-zstd , cipher-none,")
    registry = load_plugins()
    assert registry.disabled == {"compressor-zstd", "cipher-none"}
    assert "none" not in registry.names("cipher")


def test_config_disable_list_removes_a_plugin() -> None:
    registry = load_plugins(disable=["storage-file"])
    with pytest.raises(PluginNotFound, match="disabled plugins: storage-file"):
        registry.storage_for_scheme("file")


def test_missing_component_names_the_package_to_install() -> None:
    registry = load_plugins()
    with pytest.raises(PluginNotFound, match=r"install it with: pip install apprise"):
        registry.get("monitor", "apprise")
    with pytest.raises(
        PluginNotFound, match=r"no storage backend for 'gs://' urls is installed; available: file, s3, sftp"
    ):
        registry.storage_for_scheme("gs")
    with pytest.raises(PluginNotFound, match="available: lz4, none, zstd"):
        registry.get("compressor", "brotli")


# -- conflicts --------------------------------------------------------------------


def test_two_plugins_claiming_one_compressor_name_is_an_error_naming_both() -> None:
    first = make_plugin("toy_a", vger_register_compressors=lambda: [compressor_class("toy", 200)])
    second = make_plugin("toy_b", vger_register_compressors=lambda: [compressor_class("toy", 201)])
    registry = load_plugins(extra_plugins=[(source("toy-a"), first), (source("toy-b"), second)])
    with pytest.raises(PluginConflict) as excinfo:
        registry.get("compressor", "toy")
    message = str(excinfo.value)
    assert "compressor 'toy'" in message
    assert "vger-toy-a" in message and "vger-toy-b" in message


def test_a_plugin_reusing_a_builtin_name_is_an_error_naming_both() -> None:
    rogue = make_plugin("rogue", vger_register_compressors=lambda: [compressor_class("lz4", 250)])
    registry = load_plugins(extra_plugins=[(source("rogue"), rogue)])
    with pytest.raises(PluginConflict) as excinfo:
        registry.get("compressor", "zstd")
    message = str(excinfo.value)
    assert "'lz4'" in message and "from vger " in message and "vger-rogue" in message


def test_two_plugins_claiming_one_tag_is_an_error_naming_both() -> None:
    first = make_plugin("toy_a", vger_register_compressors=lambda: [compressor_class("toy-a", 200)])
    second = make_plugin("toy_b", vger_register_compressors=lambda: [compressor_class("toy-b", 200)])
    registry = load_plugins(extra_plugins=[(source("toy-a"), first), (source("toy-b"), second)])
    with pytest.raises(PluginConflict) as excinfo:
        registry.compressor_by_tag(200)
    message = str(excinfo.value)
    assert "tag 200" in message
    assert "'toy-a'" in message and "'toy-b'" in message
    assert "vger-toy-a" in message and "vger-toy-b" in message


def test_a_plugin_reusing_a_builtin_tag_is_an_error() -> None:
    rogue = make_plugin("rogue", vger_register_compressors=lambda: [compressor_class("fast", 1)])
    registry = load_plugins(extra_plugins=[(source("rogue"), rogue)])
    with pytest.raises(PluginConflict, match=r"tag 1 .*'lz4'.*'fast'"):
        registry.compressor_by_tag(1)


def test_two_plugins_claiming_one_url_scheme_is_an_error_naming_both() -> None:
    first = make_plugin("toy_a", vger_register_storage_backends=lambda: [storage_class("toy-a", ("toy",))])
    second = make_plugin(
        "toy_b", vger_register_storage_backends=lambda: [storage_class("toy-b", ("toys", "toy"))]
    )
    registry = load_plugins(extra_plugins=[(source("toy-a"), first), (source("toy-b"), second)])
    with pytest.raises(PluginConflict) as excinfo:
        registry.storage_for_scheme("toy")
    message = str(excinfo.value)
    assert "'toy://'" in message
    assert "vger-toy-a" in message and "vger-toy-b" in message


# -- broken plugins -----------------------------------------------------------------


def test_misspelled_hook_is_caught_by_check_pending() -> None:
    typo = make_plugin("typo", vger_register_compresors=lambda: [compressor_class("typo", 220)])
    with pytest.raises(PluginError, match="vger_register_compresors"):
        load_plugins(extra_plugins=[(source("typo"), typo)])


def test_hook_with_wrong_arguments_is_a_load_failure_not_a_crash() -> None:
    def vger_before(context: Any) -> None:  # the spec's argument is `ctx`
        return None

    wrong = make_plugin("wrong", vger_before=vger_before)
    registry = load_plugins(extra_plugins=[(source("wrong"), wrong)])
    assert [failure.source.distribution for failure in registry.failures] == ["vger-wrong"]
    assert registry.get("compressor", "lz4")


def test_registration_hook_that_raises_is_recorded_and_others_still_load() -> None:
    def explode() -> list[type[Any]]:
        raise RuntimeError("boom while registering")

    bad = make_plugin("bad", vger_register_compressors=explode)
    registry = load_plugins(extra_plugins=[(source("bad"), bad)])
    assert len(registry.failures) == 1
    assert "vger-bad" in registry.failures[0].describe()
    assert "boom while registering" in registry.failures[0].describe()
    assert set(registry.components) >= BUILTIN_COMPONENTS
    with pytest.raises(PluginNotFound, match="boom while registering"):
        registry.get("compressor", "whatever-bad-provided")


def test_class_without_a_name_is_recorded() -> None:
    nameless = make_plugin("nameless", vger_register_chunkers=lambda: [type("Nameless", (), {})])
    registry = load_plugins(extra_plugins=[(source("nameless"), nameless)])
    assert "has no name" in registry.failures[0].reason
    assert registry.failures[0].source.distribution == "vger-nameless"


# -- a broken third-party distribution in a real virtual environment --------------------

BROKEN_DIST = "vger-broken-plugin"
BROKEN_VERSION = "1.2.3"
BROKEN_ENTRY_POINT = "compressor-broken"
BROKEN_REASON = "vger-broken-plugin needs libbroken, which is not installed"

PROBE = """
import json
from vger.errors import PluginNotFound
from vger.pluginmanager import load_plugins

registry = load_plugins()
report = {
    "failures": [
        {"plugin": f.source.plugin, "distribution": f.source.distribution,
         "version": f.source.version, "reason": f.reason, "described": f.describe()}
        for f in registry.failures
    ],
    "components": sorted([kind, name, c.source.distribution] for (kind, name), c in registry.components.items()),
    "conflicts": registry.conflicts,
}
try:
    registry.get("compressor", "broken")
except PluginNotFound as exc:
    report["not_found"] = str(exc)
lz4 = registry.get("compressor", "lz4")({})
report["lz4_round_trip"] = lz4.decompress(lz4.compress(b"still works" * 100), 1100) == b"still works" * 100
print(json.dumps(report))
"""


def install_broken_distribution(site_packages: Path) -> None:
    """Write what ``pip install`` would leave behind, without network or build tools.

    The module raises at import, as a plugin wrapping a missing C library would.
    """
    package = site_packages / "vger_broken_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(f'"""Fails on purpose."""\n\nraise ImportError({BROKEN_REASON!r})\n')
    dist_info = site_packages / f"vger_broken_plugin-{BROKEN_VERSION}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {BROKEN_DIST}\nVersion: {BROKEN_VERSION}\nRequires-Dist: vger\n"
    )
    (dist_info / "entry_points.txt").write_text(f"[vger]\n{BROKEN_ENTRY_POINT} = vger_broken_plugin\n")
    (dist_info / "INSTALLER").write_text("vger-tests\n")
    (dist_info / "RECORD").write_text(
        "vger_broken_plugin/__init__.py,,\n"
        + "".join(
            f"{dist_info.name}/{name},,\n" for name in ("METADATA", "entry_points.txt", "INSTALLER", "RECORD")
        )
    )


@pytest.fixture(scope="module")
def broken_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv that sees this project (and its dependencies) plus the broken plugin.

    Our dependencies live in the project's venv, not in system site-packages, so
    ``--system-site-packages`` would not help: a ``.pth`` file adds the running
    interpreter's site-packages instead (``addsitedir`` also runs the editable
    install's own ``.pth`` hook, which is what makes ``vger`` importable).
    """
    venv = tmp_path_factory.mktemp("broken-plugin") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    dirs = [path for path in site.getsitepackages() if os.path.isdir(path)]
    (purelib / "_vger_project.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in dirs)
    )
    install_broken_distribution(purelib)
    return python


def venv_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in (DISABLE_ENV, "VGER_CONFIG")}
    # Nothing from the developer's own configuration may leak into the run.
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), VGER_PASSPHRASE="correct horse")
    return env


def test_broken_distribution_is_reported_and_builtins_still_load(broken_venv: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [broken_venv, "-c", PROBE], capture_output=True, text=True, env=venv_env(tmp_path), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["failures"] == [
        {
            "plugin": BROKEN_ENTRY_POINT,
            "distribution": BROKEN_DIST,
            "version": BROKEN_VERSION,
            "reason": f"ImportError: {BROKEN_REASON}",
            "described": f"plugin '{BROKEN_ENTRY_POINT}' from {BROKEN_DIST} {BROKEN_VERSION} failed to load: "
            f"ImportError: {BROKEN_REASON}",
        }
    ]
    assert {(kind, name) for kind, name, _dist in report["components"]} == BUILTIN_COMPONENTS
    assert {dist for _kind, _name, dist in report["components"]} == {"vger"}
    assert report["conflicts"] == []
    assert report["lz4_round_trip"] is True
    # Asking for what the broken plugin might have provided names it and why.
    assert BROKEN_DIST in report["not_found"] and BROKEN_REASON in report["not_found"]


def test_broken_distribution_is_invisible_outside_its_venv() -> None:
    # The guard that the test above proves something: our own environment is clean.
    assert all(failure.source.distribution != BROKEN_DIST for failure in load_plugins().failures)


def require_cli() -> None:
    try:
        import vger.cli.main  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"vger.cli does not import yet ({exc}); un-skip once `python -m vger plugins` exists")


def run_vger(python: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "vger", *args],
        capture_output=True,
        text=True,
        cwd=home,
        env=venv_env(home),
        timeout=300,
    )


def write_config(home: Path) -> Path:
    source_dir = home / "src"
    source_dir.mkdir()
    (source_dir / "hello.txt").write_text("hello from a machine with a broken plugin\n")
    config = home / "vger.yaml"
    config.write_text(
        f"repositories:\n  - url: {home / 'repo'}\nsources:\n  - {source_dir}\nencryption:\n  mode: none\n"
    )
    return config


def test_cli_plugins_json_lists_the_broken_distribution(broken_venv: Path, tmp_path: Path) -> None:
    require_cli()
    config = write_config(tmp_path)
    proc = run_vger(broken_venv, tmp_path, "-c", str(config), "plugins", "--json")
    if proc.returncode == 2:  # usage error: --json accepted only as a global option
        proc = run_vger(broken_venv, tmp_path, "-c", str(config), "--json", "plugins")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    broken = [entry for entry in document["failures"] if entry["distribution"] == BROKEN_DIST]
    assert len(broken) == 1, document["failures"]
    assert broken[0]["version"] == BROKEN_VERSION
    assert broken[0]["plugin"] == BROKEN_ENTRY_POINT
    assert BROKEN_REASON in broken[0]["reason"]
    listed = {(row["kind"], row["name"]): row for row in document["plugins"]}
    assert set(listed) == BUILTIN_COMPONENTS | {("lifecycle", "shell")}
    assert {row["distribution"] for row in listed.values()} == {"vger"}
    assert document["conflicts"] == []
    assert "Traceback" not in proc.stderr


def test_cli_plugins_warns_about_the_broken_distribution(broken_venv: Path, tmp_path: Path) -> None:
    require_cli()
    config = write_config(tmp_path)
    proc = run_vger(broken_venv, tmp_path, "-c", str(config), "plugins")
    assert proc.returncode == 0, proc.stderr
    assert BROKEN_DIST in proc.stderr and BROKEN_REASON in proc.stderr
    for _kind, name in BUILTIN_COMPONENTS:
        assert name in proc.stdout
    assert "Traceback" not in proc.stderr


def test_cli_backup_works_with_the_broken_plugin_installed(broken_venv: Path, tmp_path: Path) -> None:
    require_cli()
    config = write_config(tmp_path)
    for command in ("init", "backup", "check"):
        proc = run_vger(broken_venv, tmp_path, "-c", str(config), command)
        assert proc.returncode == 0, f"vger {command}: {proc.stderr}"
        assert "Traceback" not in proc.stderr
    restored = tmp_path / "restored"
    proc = run_vger(
        broken_venv, tmp_path, "-c", str(config), "restore", "--snapshot", "latest", "--dest", str(restored)
    )
    assert proc.returncode == 0, f"vger restore: {proc.stderr}"
    assert [path.read_text() for path in restored.rglob("hello.txt")] == [
        "hello from a machine with a broken plugin\n"
    ]


def test_cli_plugins_lists_every_builtin_including_the_shell_hooks(vger: Any) -> None:
    doc = json.loads(vger.run("--json", "plugins").stdout)
    listed = {(row["kind"], row["name"]) for row in doc["plugins"]}
    assert listed >= BUILTIN_COMPONENTS
    shell = next(row for row in doc["plugins"] if row["kind"] == "lifecycle")
    assert (shell["name"], shell["plugin"], shell["used"]) == ("shell", "lifecycle-shell", True)
