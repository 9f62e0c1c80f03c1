"""``teltotwist --version`` and ``twistd teltonika --version``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError

import pytest
from twisted.copyright import version as twisted_version
from twisted.python import usage

import teltotwist.version as version_module
from teltotwist.tap import Options
from teltotwist.version import teltotwist_version


def test_the_command_prints_its_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "teltotwist", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0
    assert result.stdout == f"teltotwist {teltotwist_version()}\n"


def test_an_installed_teltotwist_reports_its_installed_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(version_module, "installed_version", lambda name: "1.2.3")

    assert teltotwist_version() == "1.2.3"


def test_a_checkout_reports_the_version_it_declares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(version_module, "installed_version", not_installed)

    assert teltotwist_version() == "0.1.0.dev0 (not installed)"


def test_twistd_teltonika_version_names_both_versions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        usage.Options.parseOptions(Options(), ["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == (
        f"teltotwist {teltotwist_version()}, Twisted {twisted_version}\n"
    )
