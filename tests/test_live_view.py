"""The live view in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium), on the real ``twistd -n
teltonika`` with a virtual tracker (``teltotwist device``) connected.

Without Chromium or Selenium these tests fail under CI (``.ci/run``
installs them) and are skipped elsewhere, with the reason. Set
``LIVE_VIEW_SCREENSHOT=PATH`` to save a screenshot of the page (the one in
``docs/live-view.rst`` is made so).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import pytest

from tests.conftest import running_twistd

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "a-token-for-the-live-view-tests"
IMEI = "356307042441013"
UNREACHABLE_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"
"""Tiles nothing serves: the page must work without them."""


def _require_browser() -> Any:
    """Selenium's webdriver module, if Chromium can be driven; else fail
    (CI) or skip."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    webdriver: Any = None
    try:
        from selenium import webdriver  # noqa: PLC0415
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = "the live view's browser tests need " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must install them: see .ci/run)")
        pytest.skip(reason + " (apt-get install chromium chromium-driver)")
    return webdriver


class Lines:
    """The lines of a subprocess's output, read as they come (so its pipe
    never fills)."""

    def __init__(self, stream: IO[str], already: list[str]) -> None:
        self.lines = list(already)
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            time.sleep(0.05)
        pytest.fail(f"never logged {text!r}:\n" + "".join(self.lines))


@pytest.fixture
def browser() -> Iterator[Any]:
    webdriver = _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1400,900"):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


@attrs.frozen
class Live:
    """The page's URL, and the port of its gateway's trackers."""

    url: str
    port: int


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """The live view of a real gateway with a virtual tracker connected."""
    monkeypatch.setenv("TELTOTWIST_API_TOKEN", TOKEN)
    with running_twistd(
        tmp_path,
        "--api",
        "tcp:0:interface=127.0.0.1",
        "--map-tiles",
        UNREACHABLE_TILES,
    ) as gateway:
        assert gateway.process.stdout is not None
        log = Lines(gateway.process.stdout, gateway.log)
        api = log.wait_for("HTTP API on").rsplit("HTTP API on ", 1)[1].strip()
        tracker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "teltotwist",
                "device",
                "--server",
                f"tcp:127.0.0.1:{gateway.port}",
                "--imei",
                IMEI,
                "--interval",
                "1",
                "--answer-delay",
                "0.1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield Live(api, gateway.port)
        finally:
            tracker.kill()
            tracker.wait()


def wait(driver: Any, timeout: float, condition: Callable[[Any], Any]) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def newest_record_id(records: Path, known: int) -> str | None:
    """The id of a record filed after the first *known* ones, if any."""
    import json  # noqa: PLC0415

    lines = records.read_text().splitlines() if records.exists() else []
    return json.loads(lines[-1])["id"] if len(lines) > known else None


def test_the_page_shows_the_tracker_its_traffic_and_a_command_answer(
    browser: Any, live: Live, tmp_path: Path
) -> None:
    browser.get(live.url)
    token = wait(browser, 10, lambda d: by_css(d, "#token"))[0]
    token.send_keys(TOKEN)
    by_css(browser, "#token-form button")[0].click()

    row = wait(browser, 15, lambda d: by_css(d, f'#trackers tr[data-imei="{IMEI}"]'))[0]
    wait(browser, 15, lambda d: by_css(d, "path.tracker-marker"))
    assert "km/h" in wait(browser, 15, lambda d: "km/h" in row.text and row.text), (
        "the row shows the last position and speed"
    )
    search = by_css(browser, "#filter")[0]
    search.send_keys("999")
    wait(browser, 5, lambda d: not by_css(d, "#trackers tbody tr"))
    search.clear()
    search.send_keys(IMEI[:6])
    row = wait(browser, 5, lambda d: by_css(d, f'#trackers tr[data-imei="{IMEI}"]'))[0]
    row.click()
    wait(browser, 15, lambda d: by_css(d, "#traffic tr.data"))

    records = tmp_path / "records.jsonl"
    known = len(records.read_text().splitlines())
    deadline = time.monotonic() + 10
    while (record_id := newest_record_id(records, known)) is None:
        assert time.monotonic() < deadline, "no new record was filed"
        time.sleep(0.01)
    # Filed before its ACK: within 2 s of the ACK, the page shows it.
    shown = wait(
        browser,
        2,
        lambda d: [r for r in by_css(d, "#traffic tr.data") if record_id in r.text],
    )[0]
    hex_cell = shown.find_elements("css selector", "td.hex")[0].text
    assert hex_cell.startswith("00000000")
    assert by_css(browser, "#traffic tr.ack")

    command = by_css(browser, "#command")[0]
    command.send_keys("getinfo")
    by_css(browser, "#send")[0].click()
    result = wait(
        browser,
        15,
        lambda d: "answered" in (text := by_css(d, "#command-result")[0].text) and text,
    )
    assert "RTC:" in result
    wait(browser, 5, lambda d: by_css(d, "#traffic tr.command"))

    screenshot = os.environ.get("LIVE_VIEW_SCREENSHOT")
    if screenshot:
        browser.save_screenshot(screenshot)


def test_a_downloaded_capture_decodes_and_replays(
    browser: Any, live: Live, tmp_path: Path
) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": str(downloads)},
    )
    browser.get(live.url)
    wait(browser, 10, lambda d: by_css(d, "#token"))[0].send_keys(TOKEN)
    by_css(browser, "#token-form button")[0].click()
    wait(browser, 15, lambda d: by_css(d, f'#trackers tr[data-imei="{IMEI}"]'))[
        0
    ].click()
    wait(browser, 15, lambda d: len(by_css(d, "#traffic tr.ack")) >= 2)

    by_css(browser, "#download")[0].click()
    capture = downloads / f"capture-{IMEI}.txt"
    wait(browser, 10, lambda d: capture.exists() and capture.stat().st_size > 0)
    decoded = subprocess.run(
        [sys.executable, "-m", "teltotwist", "decode"],
        stdin=capture.open(),
        capture_output=True,
        text=True,
        check=False,
    )
    replayed = subprocess.run(
        [
            *(sys.executable, "-m", "teltotwist", "device", "--replay", str(capture)),
            *("--imei", "352093081452251", "--server", f"tcp:127.0.0.1:{live.port}"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert decoded.returncode == 0, decoded.stdout
    assert '"records"' in decoded.stdout
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "frames acknowledged" in replayed.stdout
