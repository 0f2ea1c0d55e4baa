"""The nesting of lifecycle steps inside the CLI's App, for the paths no command takes today.

Commands that loop over repositories collect their errors and raise after the
loop, so the CLI cannot show what happens when the loop body itself raises or
stops early; a plugin command may do either. Here App drives a real config and
a real repository (made by the CLI), with the real shell-hook plugin.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Vger

from vger.cli.app import App
from vger.errors import VgerError


def log_hook(text: str) -> str:
    return f"printf '%s\\n' \"{text}\" >> hooks.log"


@pytest.fixture
def app(vger: Vger, monkeypatch: pytest.MonkeyPatch) -> App:
    vger.run("init")
    vger.write_config(
        {
            "repositories": [
                {
                    "url": str(vger.tmp / "repo"),
                    "label": "main",
                    "hooks": {
                        "after": log_hook("repo after {command}"),
                        "failed": log_hook("repo failed {command}: {error}"),
                        "finally": log_hook("repo finally"),
                    },
                }
            ],
            "sources": [str(vger.tmp / "src")],
            "hooks": {"failed": log_hook("failed: {error}"), "after": log_hook("after {command}")},
        }
    )
    for name, value in vger.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(vger.tmp)
    return App(config_path=str(vger.config))


def lines(path: Path) -> list[str]:
    return (path / "hooks.log").read_text().splitlines()


def test_an_error_in_the_loop_body_fails_the_repository_step_it_happened_in(app: App, vger: Vger) -> None:
    with pytest.raises(VgerError, match=r"^boom$"), app.step("check"), app.each_repo() as repos:
        for _cfg, _repo in repos:
            raise VgerError("boom")
    assert lines(vger.tmp) == ["repo failed check: boom", "repo finally", "failed: boom"]


def test_stopping_the_loop_early_ends_the_repository_step_normally(app: App, vger: Vger) -> None:
    with app.step("list"), app.each_repo() as repos:
        for _cfg, _repo in repos:
            break
    assert lines(vger.tmp) == ["repo after list", "repo finally", "after list"]
