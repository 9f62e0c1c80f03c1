"""Build script; the metadata is in setup.cfg.

A plain build is pure Python and needs no compiler. With ``TELTOTWIST_COMPILE=1``
in the environment it also compiles the AVL decoder, ``teltotwist/codec/avl.py``,
with mypyc into a C extension that Python imports in its place, and builds two
C extensions: ``teltotwist/codec/_fastavl.c``, which decodes the AVL payloads
the Python decoder accepts in the standard layout and leaves the rest (errors
included) to it, and ``teltotwist/gateway/_fastitems.c``, which makes the
items of a packet's records (their attributes, ids and JSON lines) where the
pure build does it in Python. That needs mypy, a C compiler and the Python
headers where the package is built:

    python -m pip install mypy setuptools wheel
    TELTOTWIST_COMPILE=1 python -m pip install --no-build-isolation .

See docs/performance.rst ("Decoding", "Compiled items") for what it gains.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

COMPILED_MODULES = ["teltotwist/codec/avl.py"]
"""The modules compiled with ``TELTOTWIST_COMPILE=1``: the decoder's hot loop."""

C_EXTENSIONS = [
    Extension("teltotwist.codec._fastavl", ["teltotwist/codec/_fastavl.c"]),
    Extension("teltotwist.gateway._fastitems", ["teltotwist/gateway/_fastitems.c"]),
]
"""Built with ``TELTOTWIST_COMPILE=1``: the decoder of standard AVL payloads
(``avl.decode_standard_avl_payload``) and ``items.tracker_records`` in C."""


def compiled_extensions() -> list[Extension]:
    """The extensions to build, mypyc's and C: none unless ``TELTOTWIST_COMPILE=1``."""
    if os.environ.get("TELTOTWIST_COMPILE") != "1":
        return []
    try:
        from mypyc.build import mypycify  # noqa: PLC0415 - only when compiling
    except ImportError:
        raise SystemExit(
            "TELTOTWIST_COMPILE=1 needs mypy where the package is built: "
            "python -m pip install mypy setuptools wheel, then "
            "python -m pip install --no-build-isolation ."
        ) from None
    # Without setup.cfg's [mypy] section, whose plugins compiling the decoder
    # does not need; the rest of the package is type-checked by the mypy runs.
    options = ["--config-file=", "--follow-imports=silent"]
    extensions: list[Extension] = mypycify([*options, *COMPILED_MODULES])
    return extensions + C_EXTENSIONS


setup(ext_modules=compiled_extensions())
