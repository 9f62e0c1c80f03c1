"""The pure Python AVL decoder, even where the package's is compiled: the
reference the compiled decoders are compared with."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from teltotwist.codec import avl


def load_pure_decoder() -> ModuleType:
    """``avl.py`` run from its source as a module of its own."""
    source = Path(avl.__file__ or "").with_name("avl.py")
    spec = importlib.util.spec_from_file_location("pure_avl", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PURE = load_pure_decoder()
"""The pure decoder, loaded once for every test module."""
