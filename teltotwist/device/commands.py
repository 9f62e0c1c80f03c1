# -*- test-case-name: tests.test_device_tracker -*-
"""Answers to Codec 12 GPRS commands, in the style of an FMB tracker."""

from __future__ import annotations

from datetime import UTC, datetime

from teltotwist.codec import AvlRecord

FIRMWARE = "03.28.07.Rev.00"
HARDWARE = "FMB920"


def _clock_text(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y/%m/%d %H:%M:%S")


class CommandResponder:
    """Answers command texts from the tracker's state; ``setdigout`` changes
    the two digital outputs that ``getio`` reports.

    Command names are case-sensitive, as on a real tracker: ``GETINFO`` is an
    unknown command, answered with ``Unsupported command: GETINFO``.
    """

    def __init__(self, imei: str, started_at: float) -> None:
        self.imei = imei
        self.started_at = started_at
        self.outputs = [0, 0]

    def answer(self, command: str, now: float, last: AvlRecord | None) -> str:
        """The response text to *command* at time *now* (epoch seconds)."""
        name, _, argument = command.strip().partition(" ")
        uptime = round(now - self.started_at)
        match name:
            case "getinfo":
                satellites = last.satellites if last else 0
                return (
                    f"RTC:{_clock_text(now)} Init:{_clock_text(self.started_at)} "
                    f"UpTime:{uptime}s PWR:PwrVoltage RST:0 GPS:3 SAT:{satellites} "
                    "TTFF:12 TTLF:1 NOGPS:0:0 SR:0 FG:0 FL:0 SMS:0 REC:0 MD:1 DB:0"
                )
            case "getver":
                return (
                    f"Ver:{FIRMWARE} Hw:{HARDWARE} Mod:15 IMEI:{self.imei} "
                    f"Init:{_clock_text(self.started_at)} Uptime:{uptime} BL:1.10"
                )
            case "getgps":
                return self._gps(last)
            case "getio":
                return (
                    "DI1:0 DI2:0 DI3:0 AIN1:0 AIN2:0 "
                    f"DO1:{self.outputs[0]} DO2:{self.outputs[1]}"
                )
            case "setdigout":
                return self._set_outputs(argument.strip())
        return f"Unsupported command: {name}"

    def _gps(self, last: AvlRecord | None) -> str:
        if last is None:
            return "GPS:0 Sat:0 Lat:0 Long:0 Alt:0 Speed:0 Dir:0"
        return (
            f"GPS:1 Sat:{last.satellites} Lat:{last.latitude:.6f} "
            f"Long:{last.longitude:.6f} Alt:{last.altitude} Speed:{last.speed} "
            f"Dir:{last.angle} Date: {_clock_text(last.timestamp_ms / 1000)}"
        )

    def _set_outputs(self, argument: str) -> str:
        states = argument.split(" ", maxsplit=1)[0]
        if len(states) != len(self.outputs) or not set(states) <= set("01?"):
            return f"Wrong argument: {argument!r}; expected e.g. setdigout 10"
        for index, state in enumerate(states):
            if state != "?":
                self.outputs[index] = int(state)
        return " ".join(
            f"DOUT{index}:{state}" for index, state in enumerate(self.outputs, 1)
        )
