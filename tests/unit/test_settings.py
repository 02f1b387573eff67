"""Each setting is declared once (config.py): the CLI's options are made from it, every flag and
environment variable that ever worked still does, and the README documents every one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from inferwatch import cli
from inferwatch.config import SETTINGS, Settings, env_of, flag_of

README = Path(__file__).resolve().parents[2] / "README.md"

# The flags and environment variables of `serve` before the settings were declared once.
KEPT = {
    "--host": "INFERWATCH_HOST", "--port": "INFERWATCH_PORT", "--data-dir": "INFERWATCH_DATA_DIR",
    "--store": "INFERWATCH_STORE", "--queue-max-rows": "INFERWATCH_QUEUE_MAX_ROWS",
    "--device-offline-after": "INFERWATCH_DEVICE_OFFLINE_AFTER", "--image-store": "INFERWATCH_IMAGE_STORE",
    "--rate-limit": "INFERWATCH_RATE_LIMIT", "--rate-limit-burst": "INFERWATCH_RATE_LIMIT_BURST",
    "--header-timeout": "INFERWATCH_HEADER_TIMEOUT", "--body-timeout": "INFERWATCH_BODY_TIMEOUT",
    "--keep-alive-timeout": "INFERWATCH_KEEP_ALIVE_TIMEOUT", "--proxy-upstream": "INFERWATCH_PROXY_UPSTREAM",
    "--proxy-workspace": "INFERWATCH_PROXY_WORKSPACE", "--alert-interval": "INFERWATCH_ALERT_INTERVAL",
    "--evaluator": "INFERWATCH_EVALUATOR", "--smtp-url": "INFERWATCH_SMTP_URL",
    "--smtp-from": "INFERWATCH_SMTP_FROM", "--retention-interval": "INFERWATCH_RETENTION_INTERVAL",
}


def _serve() -> Any:
    return typer.main.get_command(cli.app).commands["serve"]  # type: ignore[attr-defined]


def _parse(args: list[str]) -> dict[str, object]:
    with _serve().make_context("serve", args) as ctx:
        return dict(ctx.params)


def test_every_setting_is_an_option_of_serve_with_its_environment_variable() -> None:
    options = {p.name: p for p in _serve().params}
    assert set(options) == {f.name for f in SETTINGS}
    for f in SETTINGS:
        assert options[f.name].envvar == env_of(f)
        assert options[f.name].help == f.metadata["help"]
    flags = {opt: p.envvar for p in options.values() for opt in p.opts}
    for flag, env in KEPT.items():
        assert flags.get(flag) == env, flag
    assert "--no-evaluator" in options["evaluator"].secondary_opts


def test_defaults_flags_and_environment_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(**_parse([])) == Settings()  # type: ignore[arg-type]
    monkeypatch.setenv("INFERWATCH_RATE_LIMIT", "2.5")
    monkeypatch.setenv("INFERWATCH_EVALUATOR", "false")
    parsed = Settings(**_parse(["--store", "chdb:///x", "--header-timeout", "3"]))  # type: ignore[arg-type]
    assert (parsed.rate_limit, parsed.evaluator, parsed.store_url, parsed.header_timeout_s) == (
        2.5, False, "chdb:///x", 3.0)


@pytest.mark.parametrize("args", [["--rate-limit-burst", "0"], ["--header-timeout", "0"],
                                  ["--device-offline-after", "0.5"], ["--rate-limit", "-1"],
                                  ["--commit-timeout", "0"]])
def test_bounds_are_enforced(args: list[str]) -> None:
    with pytest.raises(typer.BadParameter):
        _parse(args)


def test_the_readme_documents_every_setting() -> None:
    text = README.read_text()
    section = text[text.index("\n## Configuration"):]
    section = section[:section.index("\n## ", 1)]
    for f in SETTINGS:
        flag = flag_of(f).partition("/")[0]
        assert re.search(rf"`{re.escape(flag)}[`/]", section), f"README Configuration lacks {flag}"
        assert f"`{env_of(f)}`" in section, f"README Configuration lacks {env_of(f)}"
