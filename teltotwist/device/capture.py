# -*- test-case-name: tests.test_device_replay -*-
"""Capture files, as the live view saves them: what a tracker sent, to replay.

A capture is text: a line of hex per frame, and ``#`` comment lines. A
comment ``# TIME DIRECTION KIND ...`` (DIRECTION ``in`` or ``out``) says which
way the next frame went; frames with no such comment before them count as
sent by the tracker. ``teltotwist decode`` reads the same file (it skips the
comments); the ACKs and login replies live only in comments, since they
are not frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from teltotwist.codec import (
    COMMAND_CODECS,
    CodecError,
    Frame,
    Login,
    StreamFramer,
    check_envelope,
)

_CODEC_OFFSET = 8
_COMMAND_CODEC_IDS = frozenset(int(codec) for codec in COMMAND_CODECS)
_DIRECTIONS = ("in", "out")


class CaptureError(ValueError):
    """A capture that cannot be replayed; the message says where and why."""


@attrs.frozen
class Capture:
    """What a tracker sent in a capture: its login and its AVL data frames
    in order; *skipped* counts its other frames (command answers, pings),
    which answer a past session and are not replayed."""

    imei: str
    frames: tuple[bytes, ...]
    skipped: int = 0


def read_capture(lines: Iterable[str]) -> Capture:
    """The tracker's side of the capture in *lines*.

    :raises CaptureError: for a line that is not hex, a frame that does not
        check out, or no login before the first data frame.
    """
    imei: str | None = None
    frames: list[bytes] = []
    skipped = 0
    for number, text in _from_tracker(lines):
        for event in _events(text, number):
            if isinstance(event, Login):
                imei = imei or event.imei
            elif not isinstance(event, Frame):
                skipped += 1
            elif imei is None:
                raise CaptureError(f"line {number}: a data frame before the login")
            elif event.data[_CODEC_OFFSET] in _COMMAND_CODEC_IDS:
                skipped += 1
            else:
                frames.append(event.data)
    if imei is None:
        raise CaptureError("the capture holds no login")
    return Capture(imei, tuple(frames), skipped)


def _from_tracker(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """The hex lines the tracker sent, with their line numbers."""
    direction = "in"
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if text.startswith("#"):
            words = text.split()
            if len(words) > 2 and words[2] in _DIRECTIONS:
                direction = words[2]
        elif text:
            if direction == "in":
                yield number, text
            direction = "in"


def _events(text: str, number: int) -> list[Login | Frame | object]:
    try:
        data = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise CaptureError(f"line {number}: not hexadecimal") from None
    framer = StreamFramer()
    try:
        events: list[Login | Frame | object] = list(framer.feed(data))
        for event in events:
            if isinstance(event, Frame):
                check_envelope(event.data)
    except CodecError as error:
        raise CaptureError(f"line {number}: {error}") from None
    if framer.buffered:
        raise CaptureError(f"line {number}: a frame cut short")
    return events
