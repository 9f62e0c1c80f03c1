"""``teltotwist decode``: what a user holding a capture sees."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest

from teltotwist.cli import main
from tests.vectors import WIKI_CODEC8_JSON, by_id

WIKI_CODEC8 = by_id("wiki-c8-tcp-1")
LOGIN_HEX = "000F333536333037303432343431303133"


def run_decode(
    capsys: pytest.CaptureFixture[str], *arguments: str
) -> tuple[int, list[dict[str, Any]]]:
    status = main(["decode", *arguments])
    lines = capsys.readouterr().out.splitlines()
    return status, [json.loads(line) for line in lines]


def test_frame_prints_the_record_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, [line] = run_decode(capsys, WIKI_CODEC8.entry["hex"])

    assert status == 0
    assert line == WIKI_CODEC8_JSON


def test_one_line_per_argument_and_status_1_when_any_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    nack = by_id("wiki-c14-nack").entry["hex"]
    status, lines = run_decode(capsys, LOGIN_HEX, "FF", nack, "not hex", "")

    assert status == 1
    assert lines[0] == {"imei": "356307042441013"}
    assert lines[1] == {"ping": True}
    assert "CRC" in lines[2]["error"] and "635e" in lines[2]["error"]
    assert lines[3] == {"error": "not hexadecimal: nothex"}
    assert lines[4] == {"error": "empty input"}


def test_command_frame_shows_type_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    vector = by_id("wiki-c12-getinfo-resp")
    status, [line] = run_decode(capsys, vector.entry["hex"])

    assert status == 0
    assert line["codec"] == "12"
    [message] = line["messages"]
    assert message["type"] == "response"
    assert message["text"] == vector.reference["messages"][0]["text"]


def test_udp_adds_imei_and_both_ids(capsys: pytest.CaptureFixture[str]) -> None:
    vector = by_id("wiki-c8e-udp-1")
    status, [line] = run_decode(capsys, "--udp", vector.entry["hex"])

    assert status == 0
    assert line["imei"] == vector.reference["imei"]
    assert line["packet_id"] == int(vector.reference["packet_id"], 16)
    assert line["avl_packet_id"] == vector.reference["avl_packet_id"]
    assert line["codec"] == "8E"
    assert len(line["records"]) == 1


def test_model_adds_attributes_beside_the_raw_io(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, [line] = run_decode(capsys, "--model", "FMB920", WIKI_CODEC8.entry["hex"])

    [record] = line["records"]
    assert status == 0
    assert record["io"] == {"21": 3, "1": 1, "66": 24079, "241": 24602, "78": 0}
    assert record["attributes"] == {
        "gsm_signal": 3,
        "digital_input_1": 1,
        "external_voltage": 24.079,
        "active_gsm_operator": 24602,
        "ibutton": 0,
    }


def test_model_reads_ids_its_own_way(capsys: pytest.CaptureFixture[str]) -> None:
    frame = by_id("traccar-08-avl").entry["hex"]
    _, [fmb920] = run_decode(capsys, "--model", "FMB920", frame)
    _, [fmb640] = run_decode(capsys, "--model", "fmb640", frame)

    assert fmb920["records"][0]["attributes"]["ble_battery_3"] == 3
    assert fmb640["records"][0]["attributes"]["data_mode"] == 3
    assert fmb640["records"][0]["attributes"]["external_voltage"] == 28713


def test_udp_with_model_names_the_records(capsys: pytest.CaptureFixture[str]) -> None:
    vector = by_id("wiki-c8e-udp-1")
    _, [line] = run_decode(capsys, "--udp", "--model", "FMB920", vector.entry["hex"])

    [record] = line["records"]
    assert set(record["attributes"]) and "io" in record


def test_without_model_no_attributes(capsys: pytest.CaptureFixture[str]) -> None:
    _, [line] = run_decode(capsys, WIKI_CODEC8.entry["hex"])

    assert "attributes" not in line["records"][0]


def test_unknown_model_is_a_usage_error_with_near_matches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["decode", "--model", "FMB92", WIKI_CODEC8.entry["hex"]])

    error = capsys.readouterr().err
    assert exited.value.code == 2
    assert "unknown tracker model 'FMB92'" in error
    assert "FMB920" in error


def test_glued_ping_and_login_in_one_input_is_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, [line] = run_decode(capsys, "FF" + LOGIN_HEX)

    assert status == 1
    assert "give one per input" in line["error"]


def test_truncated_login_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, [line] = run_decode(capsys, LOGIN_HEX[:-4])

    assert status == 1
    assert line["error"].startswith("truncated")


def test_stdin_skips_blanks_and_comments(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spaced = " ".join(
        WIKI_CODEC8.entry["hex"][i : i + 2]
        for i in range(0, len(WIKI_CODEC8.entry["hex"]), 2)
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"# capture\n\n{spaced}\nFF\n"))

    status, lines = run_decode(capsys)

    assert status == 0
    assert [sorted(line) for line in lines] == [["codec", "records"], ["ping"]]


def test_installed_command_runs_as_a_process() -> None:
    frames = f"{WIKI_CODEC8.entry['hex']}\n0000\n"
    result = subprocess.run(
        [sys.executable, "-m", "teltotwist", "decode"],
        input=frames,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["records"][0]["timestamp"] == "2019-06-10T10:04:46.000Z"
    assert "error" in second
    assert result.stderr == ""
