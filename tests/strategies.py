"""Hypothesis strategies: AVL records, packets, command frames, datagrams, streams."""

from __future__ import annotations

from hypothesis import strategies as st

from teltotwist.codec import (
    AvlPacket,
    AvlRecord,
    Codec,
    CommandFrame,
    CommandMessage,
    Frame,
    Login,
    Ping,
    StreamEvent,
    UdpDatagram,
    encode_frame,
    encode_login,
    io_elements,
)

AVL_CODECS = (Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16)
COMMAND_CODECS = (Codec.CODEC12, Codec.CODEC13, Codec.CODEC14, Codec.CODEC15)

LAST_TIMESTAMP_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the JSON timestamp has four year digits."""
MAX_GROUP_SIZE = 4
"""Elements per IO group: small, so that 20 records stay far below 64 KiB."""
MAX_NX_SIZE = 64
MAX_RECORDS = 20


def unsigned(width: int) -> st.SearchStrategy[int]:
    """Integers that fit *width* bytes."""
    return st.integers(0, 2 ** (8 * width) - 1)


coordinates = st.integers(-(2**31), 2**31 - 1).map(lambda raw: raw / 1e7)
"""Degrees as the wire carries them: a signed 32-bit count of 1e-7 degrees."""

imeis = st.text(alphabet="0123456789", min_size=15, max_size=15)
logins = st.text(alphabet="0123456789", min_size=1, max_size=32)
"""What a login or a datagram may carry as its IMEI: 1 to 32 ASCII digits."""


@st.composite
def avl_records(draw: st.DrawFn, codec: Codec, *, io16: bool = False) -> AvlRecord:
    """A record that *codec* can carry; with *io16*, a Codec 8 record that has
    the non-standard 16-byte group."""
    id_width = 1 if codec is Codec.CODEC8 else 2
    fixed = [draw(st.integers(0, MAX_GROUP_SIZE)) for _ in range(4)]
    wide = draw(st.integers(0, MAX_GROUP_SIZE)) if io16 else 0
    variable = draw(st.integers(0, MAX_GROUP_SIZE)) if codec is Codec.CODEC8E else 0
    ids = iter(
        draw(
            st.lists(
                unsigned(id_width),
                min_size=sum(fixed) + wide + variable,
                max_size=sum(fixed) + wide + variable,
                unique=True,
            )
        )
    )
    io1, io2, io4, io8 = (
        {next(ids): draw(unsigned(width)) for _ in range(count)}
        for width, count in zip((1, 2, 4, 8), fixed, strict=True)
    )
    io16_group = {
        next(ids): draw(st.binary(min_size=16, max_size=16)) for _ in range(wide)
    }
    iox = {next(ids): draw(st.binary(max_size=MAX_NX_SIZE)) for _ in range(variable)}
    io, io_layout = io_elements(
        io1=io1, io2=io2, io4=io4, io8=io8, io16=io16_group, iox=iox
    )
    return AvlRecord(
        timestamp_ms=draw(st.integers(0, LAST_TIMESTAMP_MS)),
        priority=draw(unsigned(1)),
        longitude=draw(coordinates),
        latitude=draw(coordinates),
        altitude=draw(st.integers(-(2**15), 2**15 - 1)),
        angle=draw(unsigned(2)),
        satellites=draw(unsigned(1)),
        speed=draw(unsigned(2)),
        event_id=draw(unsigned(id_width)),
        io=io,
        io_layout=io_layout,
        generation_type=draw(unsigned(1)) if codec is Codec.CODEC16 else None,
    )


@st.composite
def avl_packets(
    draw: st.DrawFn,
    codecs: tuple[Codec, ...] = AVL_CODECS,
    max_records: int = MAX_RECORDS,
) -> AvlPacket:
    codec = draw(st.sampled_from(codecs))
    records = draw(st.lists(avl_records(codec), max_size=max_records))
    return AvlPacket(codec, tuple(records))


@st.composite
def io16_packets(draw: st.DrawFn, max_records: int = MAX_RECORDS) -> AvlPacket:
    """Codec 8 packets whose records all carry the 16-byte IO group."""
    records = draw(st.lists(avl_records(Codec.CODEC8, io16=True), max_size=max_records))
    return AvlPacket(Codec.CODEC8, tuple(records), io16=True)


@st.composite
def command_messages(draw: st.DrawFn, codec: Codec) -> CommandMessage:
    timed = codec in (Codec.CODEC13, Codec.CODEC15)
    addressed = codec in (Codec.CODEC14, Codec.CODEC15)
    return CommandMessage(
        type=draw(unsigned(1)),
        payload=draw(st.binary(max_size=64)),
        timestamp=draw(unsigned(4)) if timed else None,
        imei=draw(imeis) if addressed else None,
    )


@st.composite
def command_frames(draw: st.DrawFn) -> CommandFrame:
    codec = draw(st.sampled_from(COMMAND_CODECS))
    messages = draw(st.lists(command_messages(codec), min_size=1, max_size=3))
    return CommandFrame(codec, tuple(messages))


@st.composite
def udp_datagrams(draw: st.DrawFn) -> UdpDatagram:
    return UdpDatagram(
        packet_id=draw(unsigned(2)),
        avl_packet_id=draw(unsigned(1)),
        imei=draw(logins),
        packet=draw(avl_packets(max_records=5)),
    )


frames = st.one_of(avl_packets(max_records=3), command_frames()).map(encode_frame)
"""Encoded TCP frames of every codec."""


def event_bytes(event: StreamEvent) -> bytes:
    """What a tracker writes for *event*."""
    if isinstance(event, Login):
        return encode_login(event.imei)
    if isinstance(event, Ping):
        return b"\xff"
    return event.data


stream_events: st.SearchStrategy[list[StreamEvent]] = st.lists(
    st.one_of(
        logins.map(Login),
        st.just(Ping()),
        frames.map(Frame),
    ),
    max_size=8,
)


@st.composite
def mutated(draw: st.DrawFn, originals: st.SearchStrategy[bytes]) -> bytes:
    """*originals* with one to three byte flips, truncations, insertions, deletions."""
    data = bytearray(draw(originals))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if edit == "flip" and position < len(data):
            data[position] ^= draw(st.integers(1, 255))
        elif edit == "truncate":
            del data[position:]
        elif edit == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[position : position + draw(st.integers(1, 8))]
    return bytes(data)
