"""The tracker session state machine, driven byte by byte with real frames."""

from __future__ import annotations

from unittest import mock

import pytest

from teltotwist.codec import (
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
    ImeiPolicy,
    encode_frame,
    encode_login,
    login_reply,
    tcp_ack,
)
from teltotwist.gateway.events import LoginResult, Rejection
from teltotwist.gateway.items import TrackerRecord, UnparsedFrame
from teltotwist.gateway.session import (
    Action,
    ClaimLogin,
    Close,
    CommandAnswered,
    CommandReceived,
    CommandsReady,
    Deliver,
    Discard,
    LoggedIn,
    Send,
    SendCommand,
    State,
    TrackerSession,
)
from tests.vectors import by_id, frame_payload, payload_of

IMEI = "356307042441013"
LOGIN = encode_login(IMEI)
CODEC8 = by_id("wiki-c8-tcp-1").data
CODEC8E_TWO_RECORDS = by_id("traccar-01-avl").data
GETINFO_RESPONSE = by_id("wiki-c12-getinfo-resp").data
CODEC7 = by_id("traccar-31-avl-gh3000").data
RECEIVED_AT = 1_763_715_600_000
ANY_REASON: str = mock.ANY


def new_session(allowed: frozenset[str] = frozenset({IMEI})) -> TrackerSession:
    return TrackerSession(allowed.__contains__, lambda: RECEIVED_AT, 64 * 1024)


def state_of(session: TrackerSession) -> State:
    """The state now (spares mypy from narrowing across calls)."""
    return session.state


def logged_in() -> TrackerSession:
    session = new_session()
    assert session.data_received(LOGIN) == [Send(login_reply(True)), LoggedIn(IMEI)]
    return session


def only_delivery(actions: list[Action]) -> Deliver:
    [action] = actions
    assert isinstance(action, Deliver)
    return action


def test_login_then_frame_is_delivered_then_acked() -> None:
    session = logged_in()

    delivery = only_delivery(session.data_received(CODEC8))
    [item] = delivery.items
    assert isinstance(item, TrackerRecord)
    assert item.imei == IMEI
    assert item.received_at_ms == RECEIVED_AT
    assert item.to_json()["timestamp"] == "2019-06-10T10:04:46.000Z"
    assert session.state is State.DELIVERING

    assert session.delivery_succeeded() == [Send(tcp_ack(1)), CommandsReady()]
    assert state_of(session) is State.STREAMING


def test_nothing_is_written_before_the_sinks_accept() -> None:
    session = logged_in()

    actions = session.data_received(CODEC8E_TWO_RECORDS)

    assert not [action for action in actions if isinstance(action, Send)]
    assert session.delivery_succeeded() == [Send(tcp_ack(2)), CommandsReady()]


def test_ping_glued_before_login_and_between_frames_is_ignored() -> None:
    session = new_session()

    actions = session.data_received(b"\xff" + LOGIN + b"\xff")
    assert actions == [Send(b"\x01"), LoggedIn(IMEI)]
    only_delivery(session.data_received(b"\xff" + CODEC8))


def test_byte_by_byte_gives_the_same_actions() -> None:
    session = new_session()
    actions: list[Action] = []
    for byte in LOGIN + CODEC8:
        actions += session.data_received(bytes([byte]))

    assert actions[:2] == [Send(b"\x01"), LoggedIn(IMEI)]
    assert isinstance(actions[2], Deliver) and len(actions) == 3


def test_frames_glued_together_wait_for_the_previous_ack() -> None:
    session = logged_in()

    first = only_delivery(session.data_received(CODEC8 + CODEC8E_TWO_RECORDS))
    assert len(first.items) == 1

    ack, second = session.delivery_succeeded()
    assert ack == Send(tcp_ack(1))
    assert isinstance(second, Deliver) and len(second.items) == 2
    assert session.delivery_succeeded() == [Send(tcp_ack(2)), CommandsReady()]


def test_unknown_imei_gets_00_and_is_closed() -> None:
    session = new_session(allowed=frozenset())

    send, close = session.data_received(LOGIN)

    assert send == Send(b"\x00")
    assert isinstance(close, Close) and IMEI in close.reason
    assert session.state is State.CLOSED
    assert session.data_received(CODEC8) == []


@pytest.mark.parametrize("login", ["35630704244101", "3563070424410130", "7"])
def test_an_implausible_imei_is_refused_even_when_allowed(login: str) -> None:
    session = new_session(allowed=frozenset({login}))

    send, close = session.data_received(encode_login(login))

    assert send == Send(b"\x00")
    assert isinstance(close, Close)
    assert (
        close.reason == f"login refused: {login} has {len(login)} digits, not 15 digits"
    )


def test_a_policy_for_other_identifiers_lets_them_log_in() -> None:
    session = TrackerSession(
        lambda imei: True, lambda: RECEIVED_AT, 64 * 1024, ImeiPolicy.parse("1-20")
    )

    assert session.data_received(encode_login("7")) == [Send(b"\x01"), LoggedIn("7")]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (CODEC8, "before the IMEI login"),
        (LOGIN + LOGIN, "second login"),
        (LOGIN + CODEC8[:-1] + b"\x00", "CRC"),
        (LOGIN + b"\x00\x00\x00\x01", "preamble"),
        (LOGIN + bytes(4) + (1 << 20).to_bytes(4, "big"), "cap"),
        (b"\x00\x40" + b"1" * 64, "longer than 32"),
        (LOGIN + bytes(12), "codec id and two counts"),
        (LOGIN + frame_payload(b"\x08\x01"), "codec id and two counts"),
    ],
    ids=[
        "frame-first",
        "second-login",
        "bad-crc",
        "bad-preamble",
        "oversize",
        "login",
        "all-zero-frame",
        "no-second-count",
    ],
)
def test_bad_input_closes_without_an_ack(data: bytes, reason: str) -> None:
    session = new_session()

    actions = session.data_received(data)

    assert isinstance(actions[-1], Close)
    assert reason in actions[-1].reason
    assert not [a for a in actions if isinstance(a, Send) and len(a.data) == 4]
    assert session.state is State.CLOSED


def test_crc_valid_undecodable_frame_is_kept_raw_then_acked() -> None:
    """Codec 7 (GH3000) is not decoded, but a real tracker must not be wedged."""
    session = logged_in()

    [item] = only_delivery(session.data_received(CODEC7)).items

    assert isinstance(item, UnparsedFrame)
    assert item.raw == CODEC7
    assert item.to_json()["unparsed"] is True
    assert item.to_json()["hex"] == CODEC7.hex()
    assert "codec 0x07" in item.error
    assert session.delivery_succeeded() == [Send(tcp_ack(CODEC7[9])), CommandsReady()]


def test_records_that_cannot_be_made_are_kept_raw_then_acked() -> None:
    """Decoded records whose naming fails (here, a naming that is not one)
    must not close the connection: the tracker would resend them forever."""
    session = TrackerSession(
        lambda imei: True,
        lambda: RECEIVED_AT,
        max_frame_size=2048,
        naming=lambda imei: object(),  # type: ignore[arg-type,return-value]
    )
    session.data_received(LOGIN)

    [item] = only_delivery(session.data_received(CODEC8)).items

    assert isinstance(item, UnparsedFrame)
    assert item.raw == CODEC8
    assert item.error.startswith("records not made: AttributeError(")
    assert session.delivery_succeeded() == [Send(tcp_ack(1)), CommandsReady()]


def test_shortest_crc_valid_content_is_kept_raw_then_acked() -> None:
    """A codec id and two counts: content, however unknown the codec."""
    session = logged_in()
    frame = frame_payload(b"\x07\x00\x00")

    [item] = only_delivery(session.data_received(frame)).items

    assert isinstance(item, UnparsedFrame)
    assert session.delivery_succeeded() == [Send(tcp_ack(0)), CommandsReady()]


def test_command_response_is_reported_never_acked_and_session_goes_on() -> None:
    session = logged_in()

    [action] = session.data_received(GETINFO_RESPONSE)

    assert isinstance(action, CommandReceived)
    assert action.frame.messages[0].text is not None
    assert action.frame.messages[0].text.startswith("INI:2019/7/22")
    only_delivery(session.data_received(CODEC8))


def test_undecodable_command_frame_is_discarded_without_ack() -> None:
    session = logged_in()
    broken = frame_payload(payload_of(GETINFO_RESPONSE)[:-2] + b"\x01")

    [action] = session.data_received(broken)

    assert isinstance(action, Discard)
    assert session.state is State.STREAMING


def test_failed_delivery_closes_without_an_ack() -> None:
    session = logged_in()
    session.data_received(CODEC8 + CODEC8)

    [close] = session.delivery_failed("disk full")

    assert isinstance(close, Close) and "disk full" in close.reason
    assert session.delivery_succeeded() == []


def test_resent_frame_has_the_same_ids() -> None:
    first = only_delivery(logged_in().data_received(CODEC8E_TWO_RECORDS)).items
    again = only_delivery(logged_in().data_received(CODEC8E_TWO_RECORDS)).items

    assert [item.id for item in first] == [item.id for item in again]
    assert len({item.id for item in first}) == 2


@pytest.mark.parametrize("method", ["timed_out", "replaced"])
def test_timeout_and_replacement_close_even_mid_delivery(method: str) -> None:
    session = logged_in()
    session.data_received(CODEC8)

    actions = session.timed_out("idle") if method == "timed_out" else session.replaced()

    assert isinstance(actions[-1], Close)
    assert session.delivery_succeeded() == []


def test_a_claimed_imei_gets_00_and_is_closed_with_the_claims_reason() -> None:
    session = TrackerSession(
        lambda imei: True,
        lambda: RECEIVED_AT,
        64 * 1024,
        claim=lambda imei: f"{imei} is active elsewhere",
    )

    assert session.data_received(LOGIN) == [
        Send(login_reply(False)),
        Close(f"{IMEI} is active elsewhere", LoginResult.DUPLICATE),
    ]
    assert session.imei is None


def claiming_elsewhere() -> TrackerSession:
    """A session whose login is claimed elsewhere: it waits, unanswered."""
    session = TrackerSession(
        lambda imei: True,
        lambda: RECEIVED_AT,
        64 * 1024,
        claims_elsewhere=lambda imei: True,
    )
    assert session.data_received(LOGIN) == [ClaimLogin(IMEI)]
    assert session.imei is None
    return session


def test_a_login_claimed_elsewhere_is_answered_once_let_go_frames_waiting() -> None:
    session = claiming_elsewhere()
    # A tracker that does not wait for its reply: its frame waits too.
    assert session.data_received(CODEC8) == []

    actions = session.login_claimed(None)

    assert actions[:2] == [Send(login_reply(True)), LoggedIn(IMEI)]
    assert only_delivery(actions[2:]).items[0].imei == IMEI
    assert session.login_claimed(None) == []


def test_a_login_claimed_elsewhere_is_refused_with_the_holders_reason() -> None:
    session = claiming_elsewhere()

    assert session.login_claimed("IMEI 1 is logged in on gw-2") == [
        Send(login_reply(False)),
        Close("IMEI 1 is logged in on gw-2", LoginResult.DUPLICATE),
    ]
    assert session.imei is None


def test_the_gateway_can_close_a_session_mid_delivery_and_nothing_is_acked() -> None:
    session = logged_in()
    session.data_received(CODEC8)

    assert session.close("no longer allowed") == [Close("no longer allowed")]
    assert session.delivery_succeeded() == []
    assert session.close("again") == []


@pytest.mark.parametrize(
    ("allowed", "data", "cause"),
    [
        ({IMEI}, encode_login("7"), LoginResult.IMPLAUSIBLE),
        (set(), LOGIN, LoginResult.NOT_ALLOWED),
        ({IMEI}, CODEC8, Rejection.FRAMING),
        ({IMEI}, LOGIN + LOGIN, Rejection.FRAMING),
        ({IMEI}, LOGIN + b"\x00\x00\x00\x01", Rejection.FRAMING),
        ({IMEI}, LOGIN + CODEC8[:-1] + b"\x00", Rejection.CRC),
        ({IMEI}, LOGIN + bytes(12), Rejection.CRC),
    ],
    ids=[
        "implausible",
        "not-allowed",
        "frame-first",
        "second-login",
        "bad-preamble",
        "bad-crc",
        "no-data-field",
    ],
)
def test_a_close_says_how_the_events_count_it(
    allowed: set[str], data: bytes, cause: LoginResult | Rejection
) -> None:
    close = new_session(frozenset(allowed)).data_received(data)[-1]

    assert isinstance(close, Close)
    assert close.cause is cause


def test_timeouts_and_shedding_are_rejections_other_closes_judge_nothing() -> None:
    delivering = logged_in()
    delivering.data_received(CODEC8)

    assert logged_in().timed_out("idle") == [Close("idle", Rejection.TIMEOUT)]
    assert logged_in().shed("budget") == [Close("budget", Rejection.BUDGET)]
    assert logged_in().close("operator") == [Close("operator")]
    assert logged_in().replaced() == [Close(ANY_REASON)]
    assert delivering.delivery_failed("sink down") == [Close(ANY_REASON)]


GETINFO = CommandFrame(
    Codec.CODEC12, (CommandMessage(CommandType.COMMAND, b"getinfo"),)
)
GETINFO_COMMAND = by_id("wiki-c12-getinfo-cmd").data
GETVER_14 = CommandFrame(
    Codec.CODEC14, (CommandMessage(CommandType.COMMAND, b"getver", imei=IMEI),)
)
GETVER_14_ACK = by_id("wiki-c14-getver-ack").data
NACK_14 = encode_frame(
    CommandFrame(Codec.CODEC14, (CommandMessage(CommandType.NACK, b"", imei=IMEI),))
)


def ready() -> TrackerSession:
    """Logged in, its first packet ACKed: commands may go."""
    session = logged_in()
    session.data_received(CODEC8)
    assert session.delivery_succeeded() == [Send(tcp_ack(1)), CommandsReady()]
    return session


def test_a_command_waits_for_the_first_ack_after_the_login() -> None:
    session = logged_in()

    assert session.send_command(GETINFO) == []
    only_delivery(session.data_received(CODEC8))

    assert session.delivery_succeeded() == [
        Send(tcp_ack(1)),
        CommandsReady(),
        SendCommand(GETINFO_COMMAND),
    ]


def test_a_quiet_tracker_takes_commands_without_sending_a_packet() -> None:
    session = logged_in()
    session.send_command(GETINFO)

    assert session.quiet() == [CommandsReady(), SendCommand(GETINFO_COMMAND)]


def test_no_command_while_a_packet_is_delivering() -> None:
    session = ready()
    only_delivery(session.data_received(CODEC8))

    assert session.send_command(GETINFO) == []
    assert session.delivery_succeeded() == [
        Send(tcp_ack(1)),
        SendCommand(GETINFO_COMMAND),
    ]


def test_no_command_while_a_frame_is_half_received() -> None:
    session = ready()
    session.data_received(CODEC8[:10])

    assert session.send_command(GETINFO) == []
    only_delivery(session.data_received(CODEC8[10:]))
    assert session.delivery_succeeded()[-1] == SendCommand(GETINFO_COMMAND)


def test_quiet_does_not_open_the_gate_in_the_middle_of_a_frame() -> None:
    session = logged_in()
    session.data_received(CODEC8[:10])

    assert session.quiet() == []
    assert not session.commands_ready


def test_the_codec_12_response_answers_the_outstanding_command() -> None:
    session = ready()
    session.send_command(GETINFO)

    [answer] = session.data_received(GETINFO_RESPONSE)

    assert isinstance(answer, CommandAnswered) and answer.executed
    assert answer.message.text is not None
    assert answer.message.text.startswith("INI:2019/7/22")
    assert not session.command_written


def test_a_codec_14_ack_and_nack_answer_the_outstanding_command() -> None:
    session = ready()
    session.send_command(GETVER_14)
    [answer] = session.data_received(GETVER_14_ACK)
    assert isinstance(answer, CommandAnswered) and answer.executed

    session.send_command(GETVER_14)
    [nack] = session.data_received(NACK_14)
    assert nack == CommandAnswered(
        CommandMessage(CommandType.NACK, b"", imei=IMEI), executed=False, data=NACK_14
    )


def test_a_response_of_another_codec_or_none_outstanding_stays_unsolicited() -> None:
    session = ready()
    [unsolicited] = session.data_received(GETINFO_RESPONSE)
    assert isinstance(unsolicited, CommandReceived)

    session.send_command(GETVER_14)
    [other_codec] = session.data_received(GETINFO_RESPONSE)
    assert isinstance(other_codec, CommandReceived)
    assert session.command_written


def test_one_command_at_a_time_until_answered_or_abandoned() -> None:
    session = ready()
    session.send_command(GETINFO)

    with pytest.raises(RuntimeError):
        session.send_command(GETINFO)
    session.abandon_command()
    [late] = session.data_received(GETINFO_RESPONSE)

    assert isinstance(late, CommandReceived)
    assert session.send_command(GETINFO) == [SendCommand(GETINFO_COMMAND)]
