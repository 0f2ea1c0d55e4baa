"""The malloc setting the CLI applies at start-up must really reach glibc."""

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_malloc_arenas_are_limited_without_ctypes_util() -> None:
    # ctypes.util.find_library runs `ldconfig -p` and imports shutil and tempfile:
    # 20-30 ms of every command, for a library the process has already loaded.
    probe = "import sys; from vger.memory import limit_malloc_arenas; print(limit_malloc_arenas(), 'ctypes.util' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]
