# -*- test-case-name: tests.test_cluster_workers -*-
"""``/metrics`` with ``--workers``: the metrics of every worker, each
sample labelled with its worker's number (``worker="2"``).

Whichever worker answers the scrape asks its parent, which asks every
worker for its own exposition and hands them all back; that worker labels
and merges them. Each worker counts for itself, so a sum over the label is
the gateway's total; a worker that does not answer within
:data:`GATHER_TIMEOUT` seconds (it is restarting) is left out of that
scrape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.protocols import amp
from twisted.python.failure import Failure

from teltotwist.cluster.link import LargeBytes, LinkProtocol, fields

GATHER_TIMEOUT = 5.0
"""Seconds a worker has to hand its exposition to a scrape."""
WORKER_LABEL = "worker"


class Expose(amp.Command):
    """The parent asks a worker for its exposition."""

    response = fields(exposition=LargeBytes())


class Gather(amp.Command):
    """A worker asks the parent for every worker's exposition (a JSON
    object of texts, by worker number)."""

    response = fields(expositions=LargeBytes())


class ExpositionGatherer:
    """The parent's side: gathers its workers' expositions."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._links: dict[int, LinkProtocol] = {}

    def attach(self, number: int, link: LinkProtocol) -> None:
        """Worker *number* is at the other end of *link*."""
        self._links[number] = link
        link.answer(_Gathering(self))

        def closed(_: object) -> None:
            if self._links.get(number) is link:
                del self._links[number]

        link.closed.addCallback(closed)

    def gather(self) -> Deferred[dict[str, str]]:
        """Every worker's exposition that comes in time, by worker number."""
        numbers = sorted(self._links)
        asked = [
            self._links[number]
            .dispatcher.callRemote(Expose)  # type: ignore[no-untyped-call]
            .addTimeout(GATHER_TIMEOUT, self._clock)
            for number in numbers
        ]

        def collected(results: list[tuple[bool, Any]]) -> dict[str, str]:
            return {
                str(number): answer["exposition"].decode("utf-8")
                for number, (ok, answer) in zip(numbers, results, strict=True)
                if ok
            }

        gathered: Deferred[dict[str, str]] = DeferredList(
            asked, consumeErrors=True
        ).addCallback(collected)
        return gathered


class _Gathering(amp.CommandLocator):
    def __init__(self, gatherer: ExpositionGatherer) -> None:
        self._gatherer = gatherer

    @Gather.responder
    def gather(self) -> Deferred[dict[str, bytes]]:
        return self._gatherer.gather().addCallback(
            lambda found: {"expositions": json.dumps(found).encode()}
        )


class _Exposing(amp.CommandLocator):
    def __init__(self, local: Callable[[], bytes]) -> None:
        self._local = local

    @Expose.responder
    def expose(self) -> dict[str, bytes]:
        return {"exposition": self._local()}


class WorkersExposition:
    """A worker's ``/metrics``: every worker's, through *link* to the
    parent; *local* is this worker's own exposition. Without its parent,
    the worker's own only."""

    def __init__(self, link: LinkProtocol, number: int, local: Callable[[], bytes]):
        self._link = link
        self._number = number
        self._local = local
        link.answer(_Exposing(local))

    def exposition(self) -> Deferred[bytes]:
        asked: Deferred[dict[str, bytes]] = self._link.dispatcher.callRemote(  # type: ignore[no-untyped-call]
            Gather
        )

        def merged(answer: dict[str, bytes]) -> bytes:
            return labelled(json.loads(answer["expositions"]))

        def alone(_: Failure) -> bytes:
            return labelled({str(self._number): self._local().decode("utf-8")})

        return asked.addCallbacks(merged, alone)


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def labelled(expositions: Mapping[str, str]) -> bytes:
    """The expositions of several workers as one: each sample with its
    worker's number as the ``worker`` label, each family once."""
    families: dict[str, Metric] = {}
    for number, text in expositions.items():
        for family in text_string_to_metric_families(text):
            merged = families.setdefault(family.name, _family_like(family))
            merged.samples.extend(
                sample._replace(labels={**sample.labels, WORKER_LABEL: number})
                for sample in family.samples
            )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families.values())))
    return generate_latest(registry)


def _family_like(family: Metric) -> Metric:
    """An empty family of *family*'s name, help, type and unit."""
    return Metric(family.name, family.documentation, family.type, family.unit)
