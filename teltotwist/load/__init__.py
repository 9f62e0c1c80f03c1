# -*- test-case-name: tests -*-
"""Load generation: many virtual trackers against one gateway.

A :class:`~teltotwist.load.plan.LoadPlan` says how many trackers, how fast
(at what :class:`~teltotwist.load.plan.Pace`) and for how long; a
:class:`~teltotwist.load.fleet.Fleet` runs it and counts what happened into a
:class:`~teltotwist.load.summary.Summary`.
"""

from teltotwist.load.fleet import Fleet
from teltotwist.load.plan import LoadPlan, Pace
from teltotwist.load.stats import LatencyHistogram
from teltotwist.load.summary import Summary

__all__ = ["Fleet", "LatencyHistogram", "LoadPlan", "Pace", "Summary"]
