# -*- test-case-name: tests.test_sinks_webhook -*-
"""The ``webhook`` sink: each packet's records POSTed as one JSON array.

A delivery is accepted on a 2xx answer. Connection errors, timeouts and 5xx
answers are retried with exponential backoff and jitter until the attempts
run out or the gateway's sink timeout cancels the delivery; any other answer
(4xx, 3xx) fails it at once. With a secret, every request carries an
HMAC-SHA256 signature of its timestamp and body.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
from collections.abc import Callable, Coroutine, Mapping, Sequence
from itertools import count
from typing import Any, NoReturn, TypeVar, cast
from urllib.parse import urlsplit

import attrs
from treq.client import HTTPClient
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredSemaphore, fail, succeed
from twisted.internet.interfaces import IConsumer, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from zope.interface import implementer

from teltotwist.gateway.items import Item, json_line
from teltotwist.sinks.interfaces import IRecordSink, SinkConfigurationError
from teltotwist.sinks.readiness import not_running

SECRET_VARIABLE = "TELTOTWIST_WEBHOOK_SECRET"
"""The environment variable holding the signing secret (never the command line)."""
SIGNATURE_HEADER = b"X-Teltotwist-Signature"
TIMESTAMP_HEADER = b"X-Teltotwist-Timestamp"
EXCERPT_SIZE = 200
"""How many bytes of a refusing answer's body go into the error."""

_log = Logger()
_Result = TypeVar("_Result")


def signature(secret: bytes, timestamp: bytes, body: bytes) -> bytes:
    """``sha256=<hex>``: HMAC-SHA256, keyed by *secret*, of ``TIMESTAMP.BODY``."""
    digest = hmac.new(secret, timestamp + b"." + body, hashlib.sha256).hexdigest()
    return b"sha256=" + digest.encode("ascii")


@attrs.frozen
class WebhookSettings:
    """How long, how often and how many at once the sink tries."""

    request_timeout: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    """Seconds one attempt may take, from connecting to the answer's last byte."""
    max_concurrent: int = attrs.field(default=32, validator=attrs.validators.ge(1))
    """Requests in flight at most; more deliveries wait for a free slot."""
    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    """Attempts per delivery, the first included."""
    first_retry_delay: float = attrs.field(
        default=0.5, validator=attrs.validators.gt(0)
    )
    max_retry_delay: float = attrs.field(default=4.0, validator=attrs.validators.gt(0))

    def retry_delay(self, retry: int, jitter: float) -> float:
        """Seconds to wait before retry number *retry* (1 for the first).

        The delay doubles from :attr:`first_retry_delay` up to
        :attr:`max_retry_delay`, then *jitter* (in [0, 1)) takes up to half
        of it off, so that deliveries failing together do not retry together.
        """
        ceiling = min(self.max_retry_delay, self.first_retry_delay * 2.0 ** (retry - 1))
        return ceiling * (1 - jitter / 2)


class WebhookError(Exception):
    """The webhook did not accept a delivery, or the sink is not running."""


class WebhookRejectedError(WebhookError):
    """The webhook answered with a status a retry would not change (4xx, 3xx)."""

    def __init__(self, url: str, status: int, phrase: str, excerpt: str) -> None:
        super().__init__(f"{url} answered HTTP {status} {phrase}: {excerpt!r}")
        self.status = status
        self.excerpt = excerpt


class _ServerError(Exception):
    """A 5xx answer: worth another attempt."""


@implementer(IBodyProducer)
class _WholeBody:
    """A request body written in one go: a packet is a few kilobytes of JSON."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:
        """Nothing to pause: the whole body is written already."""

    def resumeProducing(self) -> None:
        """Nothing to resume: the whole body is written already."""

    def stopProducing(self) -> None:
        """Nothing to stop: the whole body is written already."""


class _BodyExcerpt(Protocol):
    """Reads an answer's body to its end (so its connection can be reused),
    keeping its first :data:`EXCERPT_SIZE` bytes as text."""

    def __init__(self) -> None:
        self._kept = b""
        self.read: Deferred[str] = Deferred(self._abort)

    def dataReceived(self, data: bytes) -> None:
        self._kept += data[: EXCERPT_SIZE + 1 - len(self._kept)]

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:  # noqa: B008
        if reason.check(ResponseDone, PotentialDataLoss):
            text = self._kept[:EXCERPT_SIZE].decode("utf-8", "replace")
            self.read.callback(text + "..." if len(self._kept) > EXCERPT_SIZE else text)
        else:
            self.read.errback(reason)

    def _abort(self, _: Deferred[str]) -> None:
        if self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]


class _Delivery:
    """One packet's POST, attempted by *post*: :attr:`done` fires with its
    outcome; cancelling :attr:`done` abandons the attempts."""

    def __init__(
        self, body: bytes, post: Callable[[_Delivery], Coroutine[Any, Any, None]]
    ) -> None:
        self.body = body
        self.abandoned = False
        self.done: Deferred[None] = Deferred(self._abandon)
        self._posting = Deferred.fromCoroutine(post(self))
        self._posting.addBoth(self._settle)

    def _abandon(self, _: Deferred[None]) -> None:
        """Stop the request in flight, or the pause before the next one.

        Whatever that makes the attempt fail with, :attr:`done` fails with
        ``CancelledError``, as the dispatcher expects of a cancelled delivery.
        """
        self.abandoned = True
        self._posting.cancel()

    def _settle(self, result: Failure | None) -> None:
        if self.abandoned:
            return
        if isinstance(result, Failure):
            self.done.errback(result)
        else:
            self.done.callback(None)


@implementer(IRecordSink)
class WebhookSink(Service):
    """POSTs each delivery's items to *url* as a JSON array of record objects.

    Connections are kept open and reused. With *secret*, requests are signed
    (:func:`signature`). *agent* replaces the sink's own pooled ``Agent``,
    e.g. with ``treq.testing.RequestTraversalAgent`` in tests.
    """

    def __init__(
        self,
        url: str,
        reactor: IReactorTime,
        *,
        secret: bytes | None = None,
        settings: WebhookSettings = WebhookSettings(),
        agent: IAgent | None = None,
    ) -> None:
        self.url = url
        self._shown_url = _without_query(url)
        self.name = f"webhook:{self._shown_url}"
        self.settings = settings
        self._clock = reactor
        self._secret = secret
        self._pool: HTTPConnectionPool | None = None
        if agent is None:
            self._pool = HTTPConnectionPool(reactor, persistent=True)
            self._pool.maxPersistentPerHost = settings.max_concurrent
            agent = Agent(reactor, pool=self._pool)
        self._client = HTTPClient(agent)
        self._slots = DeferredSemaphore(settings.max_concurrent)
        self._in_flight: set[Deferred[None]] = set()

    def stopService(self) -> Deferred[None]:
        """Abandon the deliveries still in flight; close the idle connections.

        The gateway stops its sinks once its own drain is over: what is still
        in flight then will not be acknowledged anyway.
        """
        Service.stopService(self)
        for delivery in list(self._in_flight):
            delivery.cancel()
        if self._pool is None:
            return succeed(None)
        closed: Deferred[None] = self._pool.closeCachedConnections()
        return closed

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        if not self.running:
            return fail(WebhookError(not_running(f"the {self.name} sink")))
        done = _Delivery(_json_array(items), self._post).done
        if not done.called:
            self._in_flight.add(done)
            done.addBoth(self._settled, done)
        return done

    def _settled(self, result: _Result, done: Deferred[None]) -> _Result:
        self._in_flight.discard(done)
        return result

    async def _post(self, delivery: _Delivery) -> None:
        """Attempt until accepted, refused, out of attempts or abandoned."""
        for attempt in count(1):
            try:
                await self._slots.run(self._attempt, delivery.body)
                return
            except WebhookRejectedError:
                raise
            except Exception as error:
                if delivery.abandoned:
                    raise
                delay = self._retry_delay(attempt, error)
            await deferLater(self._clock, delay)

    def _retry_delay(self, attempt: int, error: Exception) -> float:
        """The pause before the next attempt, or the final error."""
        reason = _describe(error)
        if attempt >= self.settings.max_attempts:
            tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
            raise WebhookError(
                f"{self._shown_url}: no success in {tries}; the last: {reason}"
            ) from error
        delay = self.settings.retry_delay(attempt, random.random())
        _log.warn(
            "{sink}: attempt {attempt} failed ({reason}); retrying in {delay:.2f} s",
            sink=self.name,
            attempt=attempt,
            reason=reason,
            delay=delay,
        )
        return delay

    def _attempt(self, body: bytes) -> Deferred[None]:
        exchange = Deferred.fromCoroutine(self._exchange(body))
        return exchange.addTimeout(
            self.settings.request_timeout, self._clock, _timed_out
        )

    async def _exchange(self, body: bytes) -> None:
        response: IResponse = await self._client.post(
            self.url,
            data=_WholeBody(body),
            headers=self._headers(body),
            allow_redirects=False,
            unbuffered=True,
        )
        reading = _BodyExcerpt()
        response.deliverBody(reading)
        excerpt = await reading.read
        if 200 <= response.code < 300:
            return
        phrase = response.phrase.decode("latin-1")
        if response.code >= 500:
            raise _ServerError(f"HTTP {response.code} {phrase}: {excerpt!r}")
        raise WebhookRejectedError(self._shown_url, response.code, phrase, excerpt)

    def _headers(self, body: bytes) -> dict[bytes | str, list[bytes | str]]:
        headers: dict[bytes | str, list[bytes | str]] = {
            b"Content-Type": [b"application/json"]
        }
        if self._secret is not None:
            timestamp = b"%d" % self._clock.seconds()
            headers[TIMESTAMP_HEADER] = [timestamp]
            headers[SIGNATURE_HEADER] = [signature(self._secret, timestamp, body)]
        return headers


def _json_array(items: Sequence[Item]) -> bytes:
    return b"[" + b",".join([json_line(item) for item in items]) + b"]"


def _timed_out(result: object, timeout: float) -> NoReturn:
    raise TimeoutError(f"no complete answer within {timeout:g} s")


def _describe(error: Exception) -> str:
    """What went wrong, without Twisted's nested Failure reprs."""
    if isinstance(
        error, ResponseFailed | ResponseNeverReceived | RequestTransmissionFailed
    ):
        reasons = cast(list[Failure], error.reasons)
        causes = "; ".join(reason.getErrorMessage() for reason in reasons)
        return f"{type(error).__name__}: {causes}"
    return str(error) or type(error).__name__


def _without_query(url: str) -> str:
    """*url* without its query and fragment, which may hold a token: for
    the log and error messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _checked_url(argument: str) -> str:
    """*argument* if it is an absolute http(s) URL the sink can POST to.

    :raises SinkConfigurationError: saying what is wrong with it.
    """
    if not argument:
        raise SinkConfigurationError(
            "the webhook sink needs a URL: --sink webhook:https://HOST/PATH"
        )
    try:
        parts = urlsplit(argument)
        parts.port  # noqa: B018 - raises ValueError when out of range
    except ValueError as error:
        raise SinkConfigurationError(
            f"the webhook URL {argument!r} is not valid: {error}"
        ) from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SinkConfigurationError(
            f"the webhook sink needs an http:// or https:// URL, not {argument!r}"
        )
    if parts.username is not None:
        raise SinkConfigurationError(
            "the webhook URL must not hold user:password@ (every local user "
            "can read a command line): set TELTOTWIST_WEBHOOK_SECRET to sign "
            "the requests instead"
        )
    return argument


def _secret_from_environment(environment: Mapping[str, str]) -> bytes | None:
    """The signing secret in :data:`SECRET_VARIABLE`, as UTF-8; None if unset.

    :raises SinkConfigurationError: when the variable is set but empty.
    """
    secret = environment.get(SECRET_VARIABLE)
    if secret is None:
        return None
    if not secret:
        raise SinkConfigurationError(
            f"{SECRET_VARIABLE} is set but empty: unset it to send unsigned "
            "requests, or give it a secret"
        )
    return secret.encode("utf-8")


def sink_from_argument(argument: str) -> WebhookSink:
    """The sink of ``--sink webhook:URL``, on the global reactor, signing with
    ``$TELTOTWIST_WEBHOOK_SECRET`` when it is set."""
    url = _checked_url(argument)
    secret = _secret_from_environment(os.environ)
    # Imported here: importing it installs the default reactor, which must
    # not happen before twistd installs the one its --reactor option names.
    from twisted.internet import reactor  # noqa: PLC0415

    return WebhookSink(url, cast(IReactorTime, reactor), secret=secret)
