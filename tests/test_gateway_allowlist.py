"""``--allow-imeis``: who may log in, and how edits to the file take effect."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from teltotwist.gateway.allowlist import AllowlistError, ImeiAllowlist, parse_allowlist

FIRST = "356307042441013"
SECOND = "352093081452251"


def test_one_imei_per_line_with_comments_and_blanks() -> None:
    text = f"# fleet A\n{FIRST}  # van 12\n\n  {SECOND}\n"

    assert parse_allowlist(text, "fleet.txt") == {FIRST, SECOND}


def test_a_line_that_is_no_imei_names_its_line() -> None:
    with pytest.raises(AllowlistError, match=r"fleet.txt:2: '35630704244101x'"):
        parse_allowlist(f"{FIRST}\n35630704244101x\n", "fleet.txt")


def write(path: Path, text: str, mtime: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime, mtime))


@pytest.fixture
def allowlist_file(tmp_path: Path) -> Path:
    path = tmp_path / "imeis.txt"
    write(path, f"{FIRST}\n", 1_000_000_000)
    return path


def test_a_changed_file_is_picked_up_by_the_poll(allowlist_file: Path) -> None:
    clock = MemoryReactorClock()
    allowlist = ImeiAllowlist(allowlist_file, clock, check_interval=5)
    allowlist.startService()
    assert allowlist(FIRST) and not allowlist(SECOND)

    write(allowlist_file, f"{SECOND}\n", 2_000_000_000)
    clock.advance(5)

    assert allowlist(SECOND) and not allowlist(FIRST)
    allowlist.stopService()


def test_a_broken_edit_keeps_the_previous_list(allowlist_file: Path) -> None:
    allowlist = ImeiAllowlist(allowlist_file, MemoryReactorClock())

    write(allowlist_file, "oops\n", 2_000_000_000)
    allowlist.reload()

    assert allowlist(FIRST)
    assert len(allowlist) == 1


def test_unreadable_file_at_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AllowlistError, match="cannot read"):
        ImeiAllowlist(tmp_path / "missing.txt", MemoryReactorClock())


def test_only_a_successful_reload_tells_its_listeners(allowlist_file: Path) -> None:
    allowlist = ImeiAllowlist(allowlist_file, MemoryReactorClock())
    seen: list[bool] = []
    allowlist.on_reload(lambda: seen.append(allowlist(FIRST)))

    write(allowlist_file, "oops\n", 2_000_000_000)
    allowlist.reload()
    write(allowlist_file, f"{SECOND}\n", 3_000_000_000)
    allowlist.reload()

    assert seen == [False]
