# -*- test-case-name: tests.test_codec_crc -*-
"""CRC-16/IBM (a.k.a. CRC-16/ARC): the checksum of every Teltonika TCP frame.

Polynomial 0x8005 reflected (0xA001), init 0, no final xor; check("123456789")
is 0xBB3D. The C extension of ``crcmod-plus`` computes it; a table-driven
pure-Python version is kept as a fallback and as the reference it is tested
against.
"""

from __future__ import annotations

from collections.abc import Callable


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_ibm_pure(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/IBM in pure Python."""
    crc = 0
    table = _TABLE
    for byte in bytes(data):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def _native() -> Callable[[bytes], int] | None:
    try:
        from crcmod.predefined import mkPredefinedCrcFun  # noqa: PLC0415
    except ImportError:  # pragma: no cover - crcmod-plus is a hard dependency
        return None
    function: Callable[[bytes], int] = mkPredefinedCrcFun("crc-16")
    return function


_native_crc = _native()

crc16_ibm: Callable[[bytes], int] = _native_crc or crc16_ibm_pure
"""CRC-16/IBM of *data*: native when ``crcmod-plus`` is importable."""
