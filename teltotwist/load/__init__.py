# -*- test-case-name: tests -*-
"""Load generation: many virtual trackers against one gateway.

A :class:`~teltotwist.load.plan.LoadPlan` says how many trackers, how fast and
for how long; a :class:`~teltotwist.load.fleet.Fleet` runs it and counts what
happened into a :class:`~teltotwist.load.summary.Summary`.
"""

from teltotwist.load.fleet import Fleet
from teltotwist.load.plan import LoadPlan
from teltotwist.load.stats import LatencyHistogram
from teltotwist.load.summary import Summary

__all__ = ["Fleet", "LatencyHistogram", "LoadPlan", "Summary"]
