# -*- test-case-name: tests.test_testing_sink,tests.test_testing_tracker -*-
"""Test doubles for code that uses teltotwist, like ``treq.testing``.

- :class:`RecordingSink`: an in-memory sink whose deliveries you accept,
  hold or fail, to check what your code does in each case.
- :class:`FakeTracker`: plays a tracker against the gateway's protocol
  factory in memory, with no sockets.
"""

from teltotwist.testing._sink import PendingDelivery, RecordingSink
from teltotwist.testing._tracker import DEFAULT_IMEI, FakeTracker

__all__ = ["DEFAULT_IMEI", "FakeTracker", "PendingDelivery", "RecordingSink"]
