"""The IMEI rules: login framing limits, the login encoding, the policy."""

from __future__ import annotations

import pytest

from teltotwist.codec import (
    ImeiPolicy,
    InvalidLoginError,
    Login,
    StreamFramer,
    ValueRangeError,
    encode_login,
)


def test_encode_login_is_length_then_digits() -> None:
    assert encode_login("356307042441013") == b"\x00\x0f356307042441013"


def test_encoded_login_frames_back_to_the_same_imei() -> None:
    assert StreamFramer().feed(encode_login("12345")) == [Login("12345")]


@pytest.mark.parametrize("bad", ["", "35630704244101x", "٣٥٦", "1" * 33])
def test_encode_login_refuses_what_no_tracker_could_send(bad: str) -> None:
    with pytest.raises(ValueRangeError):
        encode_login(bad)


def test_the_default_policy_takes_15_digits_only() -> None:
    policy = ImeiPolicy()
    assert policy("356307042441013")
    assert not policy("35630704244101")
    assert not policy("3563070424410131")
    assert policy.problem("1234") == "1234 has 4 digits, not 15 digits"


def test_a_policy_range_for_fleets_with_other_identifiers() -> None:
    policy = ImeiPolicy.parse("1-32")
    assert policy("7")
    assert policy("9" * 32)
    assert policy.describe() == "1 to 32 digits"


def test_the_policy_refuses_non_ascii_digits() -> None:
    assert ImeiPolicy.parse("3").problem("٣٥٦") == "'٣٥٦' is not all ASCII digits"


@pytest.mark.parametrize("text", ["", "x", "0", "16-15", "1-33", "15-"])
def test_a_policy_that_cannot_be_met_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text)):
        ImeiPolicy.parse(text)


def test_a_login_longer_than_32_is_refused_before_its_digits_arrive() -> None:
    with pytest.raises(InvalidLoginError, match="longer than 32"):
        StreamFramer().feed(b"\x00\x21")
