# -*- test-case-name: tests.test_load_fleet,tests.test_load_burst -*-
"""Many virtual trackers run to a :class:`~teltotwist.load.plan.LoadPlan`."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorTime,
    IStreamClientEndpoint,
)

from teltotwist.device import (
    DeviceEvent,
    EventKind,
    ReadTime,
    TrackerSettings,
    VirtualTracker,
)
from teltotwist.load.ahead import PackAhead
from teltotwist.load.burst import BurstClock
from teltotwist.load.plan import LoadPlan, Pace
from teltotwist.load.progress import Snapshot
from teltotwist.load.summary import Summary

_ERRORS = (
    ("cannot connect", "connect failed"),
    ("link closed: no login reply", "login timeout"),
    ("link closed: no ACK", "ACK timeout"),
    ("link closed: connection lost", "connection lost"),
    ("link closed: login rejected", ""),
)
"""LINK_DOWN message prefixes and the error kind they count as ("": none,
counted already); anything else is a "protocol error"."""


def error_kind(event: DeviceEvent) -> str:
    """The error kind a LINK_DOWN, REJECTED or FLASH_FULL *event* counts as."""
    if event.kind is EventKind.REJECTED:
        return "login rejected"
    if event.kind is EventKind.FLASH_FULL:
        return "flash overwrite"
    for prefix, kind in _ERRORS:
        if event.message.startswith(prefix):
            return kind
    return "protocol error"


class _Device:
    """One tracker of the fleet and what the fleet knows of its state."""

    def __init__(self, fleet: Fleet, settings: TrackerSettings) -> None:
        self.fleet = fleet
        self.logged_in = False
        self.in_flight = False
        self.draining: IDelayedCall | None = None
        self.stopped: Deferred[None] | None = None
        self.tracker = VirtualTracker(
            fleet.endpoint,
            fleet.clock,
            settings,
            observer=self.observe,
            report_wire=False,
            read_time=fleet.read_time,
        )

    def observe(self, event: DeviceEvent) -> None:
        kind = event.kind
        summary = self.fleet.summary
        if kind is EventKind.ACKED:
            self.in_flight = False
            summary.packets_acked += 1
            summary.records_acked += event.records
            assert event.latency is not None
            summary.latency.add(event.latency)
            if self.draining is not None and self.draining.active():
                # Now, before the tracker sends its next packet.
                self.draining.cancel()
                self.stop()
        elif kind is EventKind.SENT:
            self.in_flight = True
            summary.packets_sent += 1
            if self.fleet.ahead is not None:
                self.fleet.ahead.add(self.tracker)
        elif kind is EventKind.RESEND:
            summary.resends += 1
        elif kind is EventKind.LOGGED_IN:
            self.logged_in = True
            self.fleet.connected += 1
        elif kind is EventKind.RECONNECTING:
            summary.reconnects += 1
        elif kind in (EventKind.LINK_DOWN, EventKind.REJECTED, EventKind.FLASH_FULL):
            if kind is EventKind.LINK_DOWN:
                self._logged_out()
            error = error_kind(event)
            if error:
                summary.errors[error] += 1

    def start(self) -> None:
        """Start the tracker: recording on its own clock when steady; held,
        its packets recorded by the burst clock, in bursts; its first packet
        packed now and each next one packed ahead, flat out."""
        pace = self.fleet.plan.pace
        if self.fleet.ahead is not None:
            self.fleet.ahead.now(self.tracker)
        recording = pace is Pace.STEADY
        self.tracker.start(recording=recording, held=pace is Pace.BURST)

    def finish(self, bound: float) -> Deferred[None]:
        """Stop once the packet in flight is ACKed, or after *bound* seconds."""
        if not self.in_flight:
            return self.stop()
        self.draining = self.fleet.clock.callLater(bound, self._give_up)
        self.stopped = Deferred()
        return self.stopped

    def _give_up(self) -> None:
        self.fleet.summary.unacked += 1
        self.stop()

    def stop(self) -> Deferred[None]:
        """Stop the tracker; fires once its link is closed."""
        self._logged_out()
        closed = self.tracker.stop()
        if self.stopped is not None:
            closed.chainDeferred(self.stopped)
        return closed

    def _logged_out(self) -> None:
        if self.logged_in:
            self.logged_in = False
            self.fleet.connected -= 1


class Fleet:
    """The trackers of *plan*, all connecting to *endpoint*."""

    def __init__(
        self, plan: LoadPlan, endpoint: IStreamClientEndpoint, clock: IReactorTime
    ) -> None:
        self.plan = plan
        self.endpoint = endpoint
        self.clock = clock
        self.summary = Summary(devices=plan.devices)
        self.read_time = ReadTime(clock)
        """Shared by the trackers: see :class:`~teltotwist.device.ReadTime`."""
        self.connected = 0
        """Trackers logged in right now."""
        self.ahead: PackAhead | None = None
        """Flat out: packs each tracker's next packet ahead."""
        if plan.pace is Pace.FLAT_OUT:
            self.ahead = PackAhead(clock, plan.records_per_packet)
        self._end: Deferred[None] = Deferred()
        self._devices = [
            _Device(self, self._settings(index)) for index in range(plan.devices)
        ]

    def _settings(self, index: int) -> TrackerSettings:
        plan = self.plan
        return TrackerSettings(
            imei=plan.imei(index),
            codec=plan.codec,
            records_per_packet=plan.records_per_packet,
            interval=plan.interval,
            ack_timeout=plan.ack_timeout,
            model=plan.model,
        )

    async def run(self, start_at: float | None = None) -> Summary:
        """Start the trackers over the ramp-up, stop them after the duration.

        The first starts at clock time *start_at* (default: now; workers
        sharing a load share it, so that their bursts coincide). Each tracker
        stops once its packet in flight is ACKed (waiting at most the ACK
        timeout); the summary's duration runs from the first start to the
        last stop.
        """
        clock, plan = self.clock, self.plan
        started_at = clock.seconds() if start_at is None else start_at

        def at(offset: float, call: Callable[[], None]) -> IDelayedCall:
            delay = started_at + offset - clock.seconds()
            return clock.callLater(max(0.0, delay), call)

        calls = [
            at(plan.start_delay(index), device.start)
            for index, device in enumerate(self._devices)
        ]
        calls.append(at(plan.duration, self.end))
        bursts = None
        if plan.pace is Pace.BURST:
            trackers = [device.tracker for device in self._devices]
            bursts = BurstClock(trackers, plan, clock, started_at)
            bursts.start()
        await self._end
        if bursts is not None:
            bursts.stop()
        if self.ahead is not None:
            self.ahead.stop()
        for call in calls:
            if call.active():
                call.cancel()
        await DeferredList(
            [device.finish(self.plan.ack_timeout) for device in self._devices]
        )
        self.summary.duration = max(0.0, clock.seconds() - started_at)
        return self.summary

    def snapshot(self) -> Snapshot:
        """The counters now, for the progress line."""
        summary = self.summary
        return Snapshot(
            devices=summary.devices,
            connected=self.connected,
            records_acked=summary.records_acked,
            reconnects=summary.reconnects,
            errors=sum(summary.errors.values()),
        )

    def end(self) -> None:
        """End the run now (it ends by itself after the duration)."""
        if not self._end.called:
            self._end.callback(None)
