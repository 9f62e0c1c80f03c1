from teltotwist.codec.model import AvlPacket, AvlRecord, Codec

def decode_avl_payload(
    buffer: bytes,
    start: int,
    end: int,
    record_type: type[AvlRecord],
    packet_type: type[AvlPacket],
    codecs: tuple[Codec, ...],
    /,
) -> AvlPacket | None: ...
