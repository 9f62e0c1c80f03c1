# -*- test-case-name: tests.test_control_api -*-
"""The HTTP API's bearer token: where it comes from, and how it is checked."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path

import attrs

TOKEN_VARIABLE = "TELTOTWIST_API_TOKEN"
"""The environment variable holding the token (the CLI reads it too)."""

MIN_TOKEN_LENGTH = 16
"""Characters a chosen token needs at least: short ones can be guessed."""

_SCHEME = b"bearer "


class TokenError(ValueError):
    """A configured token that cannot be used; the message says why."""


@attrs.frozen(repr=False)
class ApiToken:
    """The secret every ``/v1`` request must present; never in a repr.

    :ivar generated: True when made up at start, for want of a chosen one.
    """

    value: str
    generated: bool = False

    @classmethod
    def generate(cls) -> ApiToken:
        """A random token, for a gateway started without one."""
        return cls(secrets.token_urlsafe(32), generated=True)

    @classmethod
    def chosen(cls, value: str, source: str) -> ApiToken:
        """*value* from *source* (named in the error), if it is usable.

        :raises TokenError: when it is too short or not one printable
            ASCII word (it travels in a header).
        """
        if not (value.isascii() and value.isprintable()) or " " in value:
            raise TokenError(f"{source}: the token must be printable ASCII, no spaces")
        if len(value) < MIN_TOKEN_LENGTH:
            raise TokenError(
                f"{source}: the token has {len(value)} characters; "
                f"use at least {MIN_TOKEN_LENGTH}"
            )
        return cls(value)

    def admits(self, authorization: bytes | None) -> bool:
        """True when *authorization* (the header) is ``Bearer`` and this
        token; compared in constant time."""
        if authorization is None or authorization[:7].lower() != _SCHEME:
            return False
        return hmac.compare_digest(authorization[7:].strip(), self.value.encode())

    def __repr__(self) -> str:
        return f"ApiToken(generated={self.generated})"


def configured_token(
    environ: Mapping[str, str], token_file: Path | None
) -> ApiToken | None:
    """The token the operator chose: *token_file*'s content (stripped), or
    else the environment's :data:`TOKEN_VARIABLE`; None when neither is set.

    :raises TokenError: when the file cannot be read or either token is
        unusable.
    """
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise TokenError(f"--api-token-file: {error}") from None
        return ApiToken.chosen(text.strip(), f"--api-token-file {token_file}")
    value = environ.get(TOKEN_VARIABLE)
    if value is None:
        return None
    return ApiToken.chosen(value, TOKEN_VARIABLE)
