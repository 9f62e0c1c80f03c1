"""Decoding speed of ``teltotwist.decode`` against the shared yardstick.

Both decoders run in this one process on the same packets, interleaved, best
of several rounds; the ratio is teltotwist's records/s over the yardstick's
(higher is faster; the target is at least 2.0).

Run from the repository root:  python bench/bench_decode.py [--rounds 7]

It times whichever teltotwist Python imports, and says whether its AVL decoder
is the pure-Python one or the optional mypyc build (``TELTOTWIST_COMPILE=1``,
see docs/performance.rst), and whether that build's C decoder (``_fastavl``)
decoded the packets timed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import teltotwist
from teltotwist.codec import avl, check_envelope
from teltotwist.codec.frame import PAYLOAD_START

SHARED_BENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "bench"


def load_yardstick(path: Path) -> ModuleType:
    """Import the yardstick module from its file."""
    spec = importlib.util.spec_from_file_location("yardstick", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the yardstick from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_rate(
    decode: Callable[[bytes], object], packet: bytes, records: int, seconds: float
) -> float:
    """Records per second of the fastest of the timed batches."""
    batch = 1
    while True:
        started = time.perf_counter()
        for _ in range(batch):
            decode(packet)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return batch * records / elapsed
        batch *= 2


def describe_decoder(packets: list[bytes]) -> str:
    """Which AVL decoder decodes *packets*: pure Python, or the mypyc build,
    and whether its C decoder took every one of them."""
    if avl.__file__.endswith(".py"):
        return "pure Python"
    if avl.compiled_decoder() is None:
        return "compiled (mypyc), no C decoder"
    taken = [
        avl.decode_avl_payload_in_c(packet, PAYLOAD_START, check_envelope(packet))
        is not None
        for packet in packets
    ]
    if all(taken):
        return "compiled (mypyc), C decoder (_fastavl) taken"
    return f"compiled (mypyc), C decoder left {taken.count(False)} packets to Python"


def measure(name: str, packet: bytes, yardstick: ModuleType, rounds: int) -> float:
    """Print both decoders' best rates on *packet*; return the ratio."""
    records = len(yardstick.decode(packet))
    if len(teltotwist.decode(packet).records) != records:  # type: ignore[union-attr]
        raise SystemExit(f"{name}: the decoders disagree on the record count")
    ours = theirs = 0.0
    for _ in range(rounds):
        theirs = max(theirs, best_rate(yardstick.decode, packet, records, 0.2))
        ours = max(ours, best_rate(teltotwist.decode, packet, records, 0.2))
    ratio = ours / theirs
    print(
        f"{name:<34} yardstick {theirs:>10,.0f} rec/s   "
        f"teltotwist {ours:>10,.0f} rec/s   ratio {ratio:.2f}x"
    )
    return ratio


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; exit 1 when a ratio is below the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-bench", type=Path, default=SHARED_BENCH)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--target", type=float, default=2.0)
    arguments = parser.parse_args(argv)
    yardstick = load_yardstick(arguments.shared_bench / "yardstick.py")
    big = bytes.fromhex(
        (arguments.shared_bench / "c8-14records.hex").read_text().strip()
    )
    decoder = describe_decoder([yardstick.WIKI, big])
    print(
        f"Python {sys.version.split()[0]}, best of {arguments.rounds} rounds, "
        f"AVL decoder {decoder}"
    )
    ratios = [
        measure(
            "wiki Codec 8, 1 record, 66 B", yardstick.WIKI, yardstick, arguments.rounds
        ),
        measure("c8-14records, 14 records, 1037 B", big, yardstick, arguments.rounds),
    ]
    return 0 if min(ratios) >= arguments.target else 1


if __name__ == "__main__":
    sys.exit(main())
