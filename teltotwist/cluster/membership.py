# -*- test-case-name: tests.test_cluster_member -*-
"""The members one member knows of: those it heard from, less those that
left or stayed silent when asked. A question to every member waits for the
members known, and no longer than its bound for one that died unheard."""

from __future__ import annotations

from collections.abc import Iterable

MAX_MEMBERS = 1024
"""Members known at most; one heard beyond them is answered, not waited
for."""


class Membership:
    """The members known to *member_id* (itself always among them)."""

    def __init__(self, member_id: str) -> None:
        self._member_id = member_id
        self._others: set[str] = set()

    def known(self) -> frozenset[str]:
        """The ids of the members known now."""
        return frozenset({*self._others, self._member_id})

    def heard(self, member_id: str) -> None:
        """*member_id* sent a message: it is known from now on."""
        if member_id != self._member_id and len(self._others) < MAX_MEMBERS - 1:
            self._others.add(member_id)

    def left(self, member_ids: Iterable[str]) -> None:
        """*member_ids* left, or did not answer in time: forget them until
        they are heard again."""
        self._others.difference_update(member_ids)
