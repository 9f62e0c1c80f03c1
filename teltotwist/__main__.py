# -*- test-case-name: tests.test_cli_decode -*-
"""``python -m teltotwist``: the same as the ``teltotwist`` command."""

import sys

from teltotwist.cli import main

sys.exit(main())
