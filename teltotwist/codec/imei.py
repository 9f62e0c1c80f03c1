# -*- test-case-name: tests.test_codec_imei -*-
"""The one place for IMEI rules: what a login may carry, how it is encoded,
and which identifiers a gateway accepts as plausible.

Two levels, on purpose. The codec frames any login of 1 to
:data:`MAX_LOGIN_LENGTH` ASCII digits, so it can say precisely what arrived.
Whether such a login is a plausible tracker is the gateway's
:class:`ImeiPolicy`: 15 digits (a real IMEI) unless the operator says
otherwise, for fleets with other identifiers.
"""

from __future__ import annotations

import attrs

from teltotwist.codec.errors import InvalidLoginError, ValueRangeError

MAX_LOGIN_LENGTH = 32
"""The longest login the codec frames at all, in digits; longer is hostile."""
IMEI_LENGTH = 15
"""Digits of a real IMEI (14 digits and the Luhn check digit)."""


def is_digits(identifier: bytes | str) -> bool:
    """Whether *identifier* is non-empty and all ASCII decimal digits."""
    return identifier.isdigit() and identifier.isascii()


def check_login_bytes(identifier: bytes, offset: int) -> None:
    """Raise :class:`InvalidLoginError` unless *identifier* (possibly only its
    first bytes, as they arrive) is ASCII digits; *offset* is where it starts."""
    if identifier and not is_digits(identifier):
        raise InvalidLoginError(f"IMEI {identifier!r} is not all digits", offset)


def check_login_length(length: int, offset: int) -> None:
    """Raise :class:`InvalidLoginError` unless a login of *length* bytes can be
    framed; *offset* is where the length field starts."""
    if length > MAX_LOGIN_LENGTH:
        raise InvalidLoginError(
            f"login of {length} bytes is longer than {MAX_LOGIN_LENGTH}", offset
        )
    if length < 1:
        raise InvalidLoginError("the login is empty", offset)


def encode_login(imei: str) -> bytes:
    """The login frame a tracker sends: a 2-byte length, then the digits."""
    if not (is_digits(imei) and len(imei) <= MAX_LOGIN_LENGTH):
        raise ValueRangeError(
            f"a login is 1 to {MAX_LOGIN_LENGTH} ASCII digits, not {imei!r}"
        )
    return len(imei).to_bytes(2, "big") + imei.encode("ascii")


@attrs.frozen
class ImeiPolicy:
    """Which identifiers the gateway takes for a tracker: all digits, with a
    length from *min_length* to *max_length* (15 and 15: a real IMEI)."""

    min_length: int = IMEI_LENGTH
    max_length: int = IMEI_LENGTH

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length <= MAX_LOGIN_LENGTH:
            raise ValueError(
                f"IMEI lengths {self.min_length}-{self.max_length} are not within "
                f"1-{MAX_LOGIN_LENGTH}"
            )

    @classmethod
    def parse(cls, text: str) -> ImeiPolicy:
        """``"15"`` or ``"1-32"``: the lengths an identifier may have.

        :raises ValueError: for anything else.
        """
        low, dash, high = text.partition("-")
        try:
            return cls(int(low), int(high) if dash else int(low))
        except ValueError as error:
            raise ValueError(
                f"{text!r} is not a length or a range such as 15 or 14-16: {error}"
            ) from None

    def describe(self) -> str:
        """``15 digits`` or ``1 to 32 digits``, for messages."""
        if self.min_length == self.max_length:
            return f"{self.min_length} digits"
        return f"{self.min_length} to {self.max_length} digits"

    def problem(self, identifier: str) -> str | None:
        """Why *identifier* is no plausible tracker, or None when it is."""
        if not is_digits(identifier):
            return f"{identifier!r} is not all ASCII digits"
        if not self.min_length <= len(identifier) <= self.max_length:
            return f"{identifier} has {len(identifier)} digits, not {self.describe()}"
        return None

    def __call__(self, identifier: str) -> bool:
        """Whether *identifier* is a plausible tracker."""
        return self.problem(identifier) is None
