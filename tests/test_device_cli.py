"""``teltotwist device`` as a user runs it: a subprocess against ``twistd``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from teltotwist.cli import main
from teltotwist.cli.device_options import seconds_range
from tests.conftest import Twistd, running_twistd

DEVICE = [sys.executable, "-m", "teltotwist", "device"]
IMEI = "356307042441013"


def test_two_packets_reach_twistd_then_the_device_exits(
    twistd: Twistd,
    tmp_path: Path,
) -> None:
    finished = subprocess.run(
        [
            *DEVICE,
            "--server",
            f"tcp:127.0.0.1:{twistd.port}",
            "--imei",
            IMEI,
            "--codec",
            "16",
            "--model",
            "fmb640",
            "--records-per-packet",
            "3",
            "--interval",
            "0.3",
            "--count",
            "2",
            "-v",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    messages = [line.split(" ", 1)[1] for line in lines]
    assert messages[:3] == [
        "connecting",
        "> 000f333536333037303432343431303133",
        "< 01",
    ]
    assert f"logged in as {IMEI}" in messages
    assert sum(message.startswith("packet 1 sent: 3 records") for message in messages)
    assert sum("acked: 3 records in" in message for message in messages) == 2
    twistd.process.terminate()
    twistd.process.communicate(timeout=30)
    records = [
        json.loads(line)
        for line in (tmp_path / "records.jsonl").read_text().splitlines()
    ]
    assert len(records) == 6
    assert {(record["imei"], record["codec"]) for record in records} == {(IMEI, "16")}
    assert all(record["io"]["239"] == 1 for record in records)
    odometer = [record["io"]["216"] for record in records]  # FMB640's total odometer
    assert odometer == sorted(odometer)


def test_a_gateway_told_the_model_names_the_virtual_trackers_io(
    tmp_path: Path,
) -> None:
    (tmp_path / "models.csv").write_text(f"{IMEI},FMB640\n")
    with running_twistd(tmp_path, "--models", "models.csv") as twistd:
        finished = subprocess.run(
            [
                *DEVICE,
                "--server",
                f"tcp:127.0.0.1:{twistd.port}",
                "--imei",
                IMEI,
                "--model",
                "FMB640",
                "--interval",
                "0.2",
                "--count",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert finished.returncode == 0, finished.stderr
        twistd.process.terminate()
        twistd.process.communicate(timeout=30)

    records = [
        json.loads(line)
        for line in (tmp_path / "records.jsonl").read_text().splitlines()
    ]
    assert records
    for record in records:
        attributes, io = record["attributes"], record["io"]
        # FMB640's own ids, named and scaled as its catalogue rows say.
        assert attributes["ignition"] == io["239"] == 1
        assert attributes["total_odometer"] == io["216"]
        assert attributes["external_voltage"] == io["66"]  # mV: no multiplier
        assert 11_000 <= attributes["external_voltage"] <= 15_000
        assert attributes["gnss_status"] == io["71"]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["--route", "missing.csv"], "cannot read route missing.csv"),
        (["--imei", "not-an-imei"], "IMEI must be up to 32 digits"),
        (["--answer-delay", "1.5-0.2"], "answer delay must be 0 <= 1.5 <= 0.2"),
    ],
)
def test_usage_errors_exit_2_without_connecting(
    capsys: pytest.CaptureFixture[str], arguments: list[str], error: str
) -> None:
    status = main(["device", "--server", "tcp:127.0.0.1:1", "--imei", IMEI, *arguments])

    assert status == 2
    assert error in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "error"),
    [
        (["--count", "0"], "must be positive, not 0"),
        (["--answer-delay", "soon"], "expected SECONDS or MIN-MAX"),
    ],
)
def test_bad_option_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], option: list[str], error: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["device", "--server", "tcp:127.0.0.1:1", "--imei", IMEI, *option])

    assert exited.value.code == 2
    assert error in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "delay"), [("0.3", (0.3, 0.3)), ("0.2-1.5", (0.2, 1.5)), ("0", (0, 0))]
)
def test_the_answer_delay_is_one_time_or_a_range(
    text: str, delay: tuple[float, float]
) -> None:
    assert seconds_range(text) == delay


def test_an_unknown_model_is_a_usage_error_with_near_matches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "device",
                "--server",
                "tcp:127.0.0.1:1",
                "--imei",
                IMEI,
                "--model",
                "FMB64",
            ]
        )

    error = capsys.readouterr().err
    assert exited.value.code == 2
    assert "unknown tracker model 'FMB64'" in error
    assert "FMB640" in error


def test_a_bad_server_endpoint_is_a_usage_error() -> None:
    finished = subprocess.run(
        [*DEVICE, "--server", "127.0.0.1:5027", "--imei", IMEI],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 2
    assert "--server '127.0.0.1:5027': Unknown endpoint type" in finished.stderr
