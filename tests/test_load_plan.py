"""Load plans and the ``teltotwist load`` options that make them."""

from __future__ import annotations

import pytest

from teltotwist.cli import build_parser, main
from teltotwist.cli.load import plan_from
from teltotwist.codec import Codec
from teltotwist.load import LoadPlan, Pace
from teltotwist.load.workers import worker_command

SERVER = ["load", "--server", "tcp:127.0.0.1:1"]


def plan_of(*arguments: str) -> LoadPlan:
    return plan_from(build_parser().parse_args([*SERVER, *arguments]))


def test_each_tracker_has_its_own_fifteen_digit_imei_and_start_time() -> None:
    plan = plan_of("--devices", "2000", "--imei-base", "1000", "--ramp-up", "4")

    assert [plan.imei(n) for n in (0, 1999)] == [
        "000000000001000",
        "000000000002999",
    ]
    assert [plan.start_delay(n) for n in (0, 1000)] == [0.0, 2.0]


def test_the_defaults_send_ten_records_a_second_and_ramp_up_500_a_second() -> None:
    plan = plan_of("--devices", "2000")

    assert (plan.interval, plan.records_per_packet, plan.duration) == (1.0, 10, 60)
    assert plan.ramp_up == 4.0
    assert plan.offered_rate == 20_000
    assert plan_of("--devices", "2000", "--duration", "6").ramp_up == 3.0


def test_rate_sets_the_interval() -> None:
    plan = plan_of("--devices", "100", "--rate", "5000", "--records-per-packet", "5")

    assert plan.interval == 0.1
    assert plan.offered_rate == 5000


def test_processes_share_the_trackers_and_their_imeis() -> None:
    plan = plan_of("--devices", "5", "--imei-base", "100", "--ramp-up", "2")

    parts = plan.split(2)

    assert [(part.devices, part.imei_base) for part in parts] == [(3, 100), (2, 103)]
    assert {part.ramp_up for part in parts} == {2}


@pytest.mark.parametrize(
    ("arguments", "pace"),
    [([], Pace.STEADY), (["--burst"], Pace.BURST), (["--flat-out"], Pace.FLAT_OUT)],
)
def test_the_pace_options(arguments: list[str], pace: Pace) -> None:
    assert plan_of("--devices", "10", *arguments).pace is pace


def test_bursts_come_one_interval_after_the_ramp_up_then_every_interval() -> None:
    plan = plan_of("--devices", "10", "--burst", "--ramp-up", "2", "--interval", "5")

    assert [plan.burst_at(n) for n in (1, 2, 3)] == [7, 12, 17]


def test_the_model_the_trackers_send_the_io_of() -> None:
    assert plan_of("--devices", "1").model == "FMB920"
    assert plan_of("--devices", "1", "--model", "fmb640").model == "FMB640"


@pytest.mark.parametrize(
    "plan",
    [
        LoadPlan(devices=7, duration=30, interval=0.25, ramp_up=1.5, imei_base=10),
        LoadPlan(
            devices=7, duration=30, ramp_up=2, pace=Pace.BURST, codec=Codec.CODEC8E
        ),
        LoadPlan(devices=7, duration=9.5, pace=Pace.FLAT_OUT, model="FMB640"),
    ],
    ids=["steady", "burst", "flat out"],
)
def test_a_worker_runs_the_plan_it_was_given(plan: LoadPlan) -> None:
    command = worker_command(plan, "tcp:127.0.0.1:1")

    assert command[3] == "load"
    assert plan_from(build_parser().parse_args(command[3:])) == plan


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["--devices", "2", "--processes", "3"], "processes must be 1..2"),
        (["--devices", "2", "--burst", "--flat-out"], "--burst needs an interval"),
        (
            ["--devices", "2", "--burst", "--duration", "3", "--ramp-up", "2"],
            "the first burst comes at 3 s",
        ),
        (["--devices", "2", "--imei-base", "999999999999999"], "do not fit in 15"),
        (["--devices", "2", "--ramp-up", "60"], "shorter than the duration (60 s)"),
        (["--devices", "2", "--records-per-packet", "256"], "must be 1..255"),
    ],
)
def test_plans_that_cannot_run_exit_2_before_connecting(
    capsys: pytest.CaptureFixture[str], arguments: list[str], error: str
) -> None:
    assert main([*SERVER, *arguments]) == 2
    assert error in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["--devices", "0"], "must be positive, not 0"),
        (["--devices", "1", "--interval", "1", "--rate", "5"], "not allowed with"),
        (["--devices", "1", "--flat-out", "--interval", "1"], "not allowed with"),
        (["--devices", "1", "--model", "FMB9999"], "FMB9999"),
        (["--duration", "5"], "required: --devices"),
    ],
)
def test_bad_option_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], arguments: list[str], error: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*SERVER, *arguments])

    assert exited.value.code == 2
    assert error in capsys.readouterr().err


def test_the_plan_refuses_what_the_options_cannot_catch() -> None:
    with pytest.raises(ValueError, match="devices must be at least 1"):
        LoadPlan(devices=0, duration=1)
    with pytest.raises(ValueError, match="interval must be positive"):
        LoadPlan(devices=1, duration=1, interval=0)
