"""The failures users will meet: exit codes, one clear line on stderr, no traceback, nothing half-written."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Vger, restored_root, write_file
from e2e.helpers import assert_clean_error, is_root, json_out

import vger as vger_pkg


def repo_fingerprint(repo: Path) -> dict[str, str]:
    """Every file below ``repo`` with a hash of its bytes: equal fingerprints mean untouched."""
    out = {}
    for dirpath, dirs, files in os.walk(repo):
        for name in dirs:
            out[os.path.relpath(os.path.join(dirpath, name), repo) + "/"] = "dir"
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, repo)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def run_bare(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m vger`` exactly as given (no implicit ``-c``), stdin not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "vger", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def initialized(vger: Vger) -> Vger:
    write_file(vger.tmp / "src" / "a.txt", b"alpha\n")
    vger.run("init")
    return vger


def test_wrong_passphrase(vger: Vger) -> None:
    initialized(vger)
    vger.run("backup")
    for command in (["list"], ["backup"], ["restore", "--snapshot", "latest", "--dest", str(vger.tmp / "d")]):
        proc = vger.run(*command, check=False, env={"VGER_PASSPHRASE": "not the passphrase"})
        err = assert_clean_error(proc, 1)
        assert len(err.strip().splitlines()) == 1, err
        assert "wrong passphrase" in err.lower(), err
    assert not (vger.tmp / "d").exists()
    assert len(json_out(vger.run("--json", "list"))) == 1  # the failed backup committed nothing


def test_config_typo_names_the_key_and_writes_nothing(vger: Vger) -> None:
    repo = vger.tmp / "repo"
    vger.write_config(
        {
            "repositories": [{"url": str(repo), "label": "main"}],
            "sources": [str(vger.tmp / "src")],
            "compression": {"algorithm": "zstd", "zstd_levle": 3},
        }
    )
    proc = vger.run("init", check=False)
    err = assert_clean_error(proc, 1)
    assert "compression.zstd_levle" in err, err
    assert str(vger.config) in err  # which file
    assert not repo.exists()

    # The same typo inside a repository override: the message gives the full key path.
    vger.write_config(
        {
            "repositories": [
                {"url": str(repo), "label": "main", "compression": {"algorithm": "zstd", "zstd_levle": 3}}
            ],
            "sources": [str(vger.tmp / "src")],
        }
    )
    err = assert_clean_error(vger.run("init", check=False), 1)
    assert "repositories[0].compression.zstd_levle" in err, err
    assert not repo.exists()


def test_missing_environment_variable(vger: Vger) -> None:
    var = "VGER_TEST_SURELY_UNSET_VARIABLE"
    assert var not in vger.env
    vger.config.write_text(f"repositories:\n  - url: ${{{var}}}/repo\nsources:\n  - {vger.tmp / 'src'}\n")
    err = assert_clean_error(vger.run("init", check=False), 1)
    assert var in err, err
    assert ":2" in err or "line 2" in err, err  # the line it is used on
    assert not any(p.name.startswith("$") or p.name == "repo" for p in vger.tmp.iterdir())

    # With a default, the same file works.
    vger.config.write_text(vger.config.read_text().replace(f"${{{var}}}", f"${{{var}:-{vger.tmp}}}"))
    vger.run("init")
    assert (vger.tmp / "repo" / "config").is_file()


def test_no_config_found(vger: Vger, tmp_path: Path) -> None:
    if Path("/etc/vger/config.yaml").exists():
        pytest.skip("this machine has a system-wide vger config")
    empty = tmp_path / "empty-cwd"
    empty.mkdir()
    env = {k: v for k, v in vger.env.items() if k != "VGER_CONFIG"}
    proc = run_bare(["list"], env, empty)
    err = assert_clean_error(proc, 1)
    assert str(empty / "vger.yaml") in err, err
    assert str(Path(env["XDG_CONFIG_HOME"]) / "vger" / "config.yaml") in err, err
    assert "/etc/vger/config.yaml" in err, err
    assert "VGER_CONFIG" in err, err
    assert "vger config" in err, err

    # And the first place in the list is honoured once something is there.
    (empty / "vger.yaml").write_text(vger.config.read_text())
    proc = run_bare(["list"], env, empty)
    assert "no configuration file found" not in proc.stderr
    assert "vger init" in proc.stderr  # it got as far as the (missing) repository


def test_repository_missing_says_init(vger: Vger) -> None:
    write_file(vger.tmp / "src" / "a.txt", b"alpha\n")
    for command in (["list"], ["backup"], ["info"], ["restore", "--snapshot", "latest"]):
        err = assert_clean_error(vger.run(*command, check=False), 1)
        assert "vger init" in err, (command, err)
    assert not (vger.tmp / "repo").exists()


def test_init_twice_refuses_and_touches_nothing(vger: Vger) -> None:
    initialized(vger)
    vger.run("backup")
    before = repo_fingerprint(vger.tmp / "repo")
    err = assert_clean_error(vger.run("init", check=False), 1)
    assert "exists" in err, err
    assert repo_fingerprint(vger.tmp / "repo") == before
    # Even with another passphrase, the existing key is not replaced.
    assert_clean_error(vger.run("init", check=False, env={"VGER_PASSPHRASE": "other"}), 1)
    assert repo_fingerprint(vger.tmp / "repo") == before
    assert len(json_out(vger.run("--json", "list"))) == 1


def test_unknown_repository_label(vger: Vger) -> None:
    err = assert_clean_error(vger.run("-R", "nosuch", "init", check=False), 1)
    assert "nosuch" in err and "main" in err, err  # names what is configured
    assert not (vger.tmp / "repo").exists()


def test_init_refuses_a_non_empty_folder(vger: Vger) -> None:
    repo = vger.tmp / "repo"
    write_file(repo / "precious.txt", b"not a repository\n")
    assert_clean_error(vger.run("init", check=False), 1)
    assert sorted(p.name for p in repo.iterdir()) == ["precious.txt"]


def test_unknown_snapshot_points_to_list(vger: Vger) -> None:
    initialized(vger)
    vger.run("backup")
    dest = vger.tmp / "dest"
    err = assert_clean_error(vger.run("restore", "--snapshot", "ffff", "--dest", str(dest), check=False), 1)
    assert "ffff" in err and "vger list" in err, err
    assert not dest.exists()
    err = assert_clean_error(vger.run("list", "--snapshot", "ffff", check=False), 1)
    assert "vger list" in err, err


def test_snapshot_prefix_rules(vger: Vger) -> None:
    """Prefixes of 4+ hex characters resolve; shorter ones are refused with the rule."""
    initialized(vger)
    first = json_out(vger.run("--json", "backup"))[0]["snapshot"]
    vger.run("backup")
    err = assert_clean_error(vger.run("restore", "--snapshot", first[:3], check=False), 1)
    assert "4" in err, err
    dest = vger.tmp / "dest"
    vger.run("restore", "--snapshot", first[:6].upper(), "--dest", str(dest))
    assert (restored_root(dest, vger.tmp / "src") / "a.txt").read_bytes() == b"alpha\n"
    entries = json_out(vger.run("--json", "list", "--snapshot", first[:4]))
    assert any(e["path"].endswith("src/a.txt") for e in entries)


def test_no_passphrase_and_no_terminal_fails_fast(vger: Vger) -> None:
    initialized(vger)
    env = {k: v for k, v in vger.env.items() if k != "VGER_PASSPHRASE"}
    for command in (["list"], ["backup"]):
        proc = run_bare(["-c", str(vger.config), *command], env, vger.tmp, timeout=20)
        err = assert_clean_error(proc, 1)
        assert "VGER_PASSPHRASE" in err, err
    assert len(json_out(vger.run("--json", "list"))) == 0

    # init without a passphrase leaves nothing behind (not even an empty folder).
    other = vger.tmp / "other.yaml"
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo2")}],
            "sources": [str(vger.tmp / "src")],
            "encryption": {"mode": "chacha20poly1305"},
        },
        other,
    )
    proc = run_bare(["-c", str(other), "init"], env, vger.tmp, timeout=20)
    err = assert_clean_error(proc, 1)
    assert "VGER_PASSPHRASE" in err, err
    assert not (vger.tmp / "repo2").exists()


def _partial_backup_checks(vger: Vger, bad: str, proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 3, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert bad in proc.stderr, proc.stderr
    snaps = json_out(vger.run("--json", "list"))
    assert len(snaps) == 1, "the snapshot must be committed despite the unreadable file"
    assert snaps[0]["stats"]["files"] >= 1
    dest = vger.tmp / "dest"
    vger.run("restore", "--snapshot", "latest", "--dest", str(dest))
    assert (restored_root(dest, vger.tmp / "src") / "a.txt").read_bytes() == b"alpha\n"


@pytest.mark.skipif(is_root(), reason="root reads files whatever their mode")
def test_unreadable_file_gives_partial_success(vger: Vger) -> None:
    initialized(vger)
    secret = write_file(vger.tmp / "src" / "locked.txt", b"no access\n")
    secret.chmod(0o000)
    try:
        proc = vger.run("backup", check=False)
    finally:
        secret.chmod(0o600)
    _partial_backup_checks(vger, str(secret), proc)


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_file_that_fails_to_read_gives_partial_success(vger: Vger) -> None:
    """Works as root too: reading ``/proc/self/mem`` at offset 0 fails with EIO for everyone."""
    initialized(vger)
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
            "sources": [{"paths": [str(vger.tmp / "src"), "/proc/self/mem"], "label": "mixed"}],
        }
    )
    proc = vger.run("backup", check=False)
    _partial_backup_checks(vger, "/proc/self/mem", proc)
    doc = json_out(vger.run("--json", "backup", check=False))
    assert [e["path"] for e in doc[0]["errors"]] == ["/proc/self/mem"]


def test_config_starter_file(vger: Vger, tmp_path: Path) -> None:
    dest = tmp_path / "conf" / "starter.yaml"
    proc = vger.run("config", "--dest", str(dest))
    assert dest.is_file()
    assert "vger init" in proc.stdout
    text = dest.read_text()
    assert text.lstrip().startswith("#")  # commented

    # Refuses to overwrite without --force.
    dest.write_text(text + "# my edit\n")
    err = assert_clean_error(vger.run("config", "--dest", str(dest), check=False), 1)
    assert "--force" in err, err
    assert dest.read_text().endswith("# my edit\n")
    vger.run("config", "--dest", str(dest), "--force")
    assert dest.read_text() == text

    # Point the live paths at temp folders: --check accepts it, and it really backs up.
    import yaml

    live = yaml.safe_load(text)
    old_repo = live["repositories"][0]["url"]
    old_source = live["sources"][0] if isinstance(live["sources"][0], str) else live["sources"][0]["path"]
    src = write_file(tmp_path / "starter-src" / "f.txt", b"from the starter\n").parent
    dest.write_text(text.replace(old_repo, str(tmp_path / "starter-repo")).replace(old_source, str(src)))
    check = run_bare(["config", "--check", "-c", str(dest)], vger.env, vger.tmp)  # -c after the command
    assert check.returncode == 0, check.stderr
    assert "valid" in check.stdout
    assert str(tmp_path / "starter-repo") in check.stdout
    assert str(src) in check.stdout
    vger.run("init", config=dest)
    vger.run("backup", config=dest)
    assert len(json_out(vger.run("--json", "list", config=dest))) == 1

    # `vger config` without --dest writes ./vger.yaml (in the cwd), with the same refusal.
    cwd_file = vger.tmp / "vger.yaml"  # the runner's own config lives there already
    before = cwd_file.read_text()
    assert_clean_error(vger.run("config", check=False), 1)
    assert cwd_file.read_text() == before


def test_config_check_masks_the_passphrase(vger: Vger) -> None:
    vger.write_config(
        {
            "repositories": [{"url": str(vger.tmp / "repo"), "label": "main"}],
            "sources": [str(vger.tmp / "src")],
            "encryption": {"mode": "aes256gcm", "passphrase": "hunter2-very-secret"},
        }
    )
    proc = vger.run("config", "--check")
    assert "hunter2-very-secret" not in proc.stdout + proc.stderr
    assert "passphrase" in proc.stdout
    assert "zstd_level" not in proc.stdout or "compression" in proc.stdout
    # The passphrase from the config is really used (VGER_PASSPHRASE unset).
    env = {k: v for k, v in vger.env.items() if k != "VGER_PASSPHRASE"}
    assert run_bare(["-c", str(vger.config), "init"], env, vger.tmp).returncode == 0
    bad = run_bare(["-c", str(vger.config), "list"], {**env, "VGER_PASSPHRASE": "wrong"}, vger.tmp)
    assert "passphrase" in assert_clean_error(bad, 1)


def test_config_check_reports_invalid(vger: Vger) -> None:
    vger.config.write_text(vger.config.read_text() + "retention: {keep_daily: many}\n")
    err = assert_clean_error(vger.run("config", "--check", check=False), 1)
    assert "retention.keep_daily" in err, err


def test_version(vger: Vger) -> None:
    proc = run_bare(["--version"], vger.env, vger.tmp)
    assert proc.returncode == 0
    assert "vger" in proc.stdout and vger_pkg.__version__ in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--no-such-option"],
        ["backup", "--no-such-option"],
        ["restore"],
        ["list", "--last", "0"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(vger: Vger, args: list[str]) -> None:
    proc = vger.run(*args, check=False)
    assert proc.returncode == 2, f"{args}: exit {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert "Usage" in proc.stderr or "Error" in proc.stderr
    assert not (vger.tmp / "repo").exists()
