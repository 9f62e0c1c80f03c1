"""The data path: sessions, the TCP and UDP adapters, dispatch to the sinks,
and the service that ties them together.

Its modules are imported one by one; importing this package imports no
Twisted.
"""
