from collections.abc import Mapping
from typing import Any

from teltotwist.codec import AvlRecord, Codec

def tracker_records(
    cls: type[Any],
    records: tuple[AvlRecord, ...],
    imei: str,
    codec: Codec,
    label: str,
    received_at_ms: int,
    received_at: str,
    table: Mapping[int, tuple[str, Any, Any, Any]] | None,
    /,
) -> tuple[Any, ...] | None: ...
