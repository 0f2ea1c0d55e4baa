"""Behaviour that needs a terminal or a mount point: the init prompt, one_file_system."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from tests.conftest import Vger


def _talk(vger: Vger, args: list[str], answers: list[bytes], env: dict[str, str]) -> tuple[int, bytes]:
    """Run vger on a pseudo-terminal, typing each answer when a prompt appears."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vger", "-c", str(vger.config), *args],
        env=env,
        cwd=vger.tmp,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    out = b""
    answered = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
            # Answer every prompt seen so far ("Passphrase for ...: ", "Repeat passphrase: "),
            # however the output was split into reads.
            while answered < min(
                out.count(b"assphrase for ") + out.count(b"Repeat passphrase"), len(answers)
            ):
                os.write(master, answers[answered] + b"\n")
                answered += 1
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), out


def test_init_asks_the_passphrase_twice_and_retries_on_mismatch(vger: Vger) -> None:
    env = {k: v for k, v in vger.env.items() if k != "VGER_PASSPHRASE"}
    code, shown = _talk(vger, ["init"], [b"one", b"two", b"s3cret", b"s3cret"], env)
    assert code == 0, shown
    assert shown.count(b"Passphrase for repository main") == 2
    assert b"do not match" in shown
    # The passphrase typed at the prompt is the one that opens the repository.
    assert vger.run("list", env={"VGER_PASSPHRASE": "s3cret"}).returncode == 0
    assert vger.run("list", check=False, env={"VGER_PASSPHRASE": "one"}).returncode == 1


def test_one_file_system_records_a_mount_point_but_not_its_contents(vger: Vger) -> None:
    src = vger.tmp / "src"
    (src / "here.txt").write_text("on the source's filesystem\n")
    mnt = src / "mnt"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt)], capture_output=True).returncode
    ):
        pytest.skip("needs root and permission to mount a tmpfs")
    try:
        (mnt / "elsewhere.txt").write_text("on another filesystem\n")
        vger.run("init")
        vger.run("backup")
        listed = vger.run("list", "--snapshot", "latest").stdout
        assert "/here.txt" in listed and listed.rstrip().count("/mnt") >= 1
        assert "elsewhere.txt" not in listed  # one_file_system is on by default
        cfg = vger.config.read_text() + "one_file_system: false\n"
        vger.config.write_text(cfg)
        vger.run("backup")
        assert "elsewhere.txt" in vger.run("list", "--snapshot", "latest").stdout
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
