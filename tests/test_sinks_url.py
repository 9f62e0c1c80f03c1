"""The URL rules the network sinks share: user, password, options, the
URL as the logs show it."""

from __future__ import annotations

import pytest

from teltotwist.sinks import SinkConfigurationError
from teltotwist.sinks._url import boolean, options, password, shown, user

VARIABLE = "TELTOTWIST_TEST_PASSWORD"


def test_user_and_password_are_percent_decoded() -> None:
    assert user("gate%40way") == "gate@way"
    assert user(None) is None
    assert password("p%3Ass%23", VARIABLE, {}) == "p:ss#"


def test_the_password_comes_from_the_environment_when_the_url_has_none() -> None:
    assert password(None, VARIABLE, {VARIABLE: "s3cret"}) == "s3cret"
    assert password(None, VARIABLE, {}) is None


def test_a_password_given_twice_or_empty_is_refused_without_quoting_it() -> None:
    with pytest.raises(SinkConfigurationError, match="given twice") as twice:
        password("inline", VARIABLE, {VARIABLE: "s3cret"})
    with pytest.raises(SinkConfigurationError, match="set but empty"):
        password(None, VARIABLE, {VARIABLE: ""})
    assert "s3cret" not in str(twice.value)
    assert "inline" not in str(twice.value)


def test_options_are_percent_decoded_and_a_plus_stays_a_plus() -> None:
    found = options("topic=a+b%2Fc&version=5", ("topic", "version"), "MQTT")
    assert found == {"topic": "a+b/c", "version": "5"}
    assert options("", ("topic",), "MQTT") == {}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("qos=1", "unknown AMQP URL option 'qos'; the options are topic"),
        ("topic=a&topic=b", "the AMQP URL option 'topic' is given twice"),
        ("topic", "the AMQP URL has 'topic' in its query, not NAME=VALUE"),
    ],
)
def test_unusable_options_are_refused_with_the_reason(query: str, message: str) -> None:
    with pytest.raises(SinkConfigurationError, match=message):
        options(query, ("topic",), "AMQP")


def test_the_shown_url_quotes_the_user_and_brackets_ipv6() -> None:
    assert shown("mqtts", "gate@way", "::1", 8884) == "mqtts://gate%40way@[::1]:8884"
    assert shown("amqp", None, "rabbit.example", 5672) == "amqp://rabbit.example:5672"


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("Yes", True), ("1", True), ("FALSE", False), ("no", False)],
)
def test_a_boolean_option_reads_the_usual_words(text: str, value: bool) -> None:
    assert boolean("declare", text) is value


def test_a_boolean_option_names_itself_when_it_is_neither() -> None:
    with pytest.raises(SinkConfigurationError, match="declare must be true or false"):
        boolean("declare", "maybe")
