"""The ``teltonika`` twistd plugin: ``twistd -n teltonika --port 5027``.

Imported on every plugin scan, so it imports nothing heavy: the options and
the service live in :mod:`teltotwist.tap`.
"""

from twisted.application.service import ServiceMaker

teltonika = ServiceMaker(
    "teltotwist",
    "teltotwist.tap",
    "Teltonika tracker gateway: decode Codec 8/8E/16 and deliver to sinks.",
    "teltonika",
)
