"""The pure domain core of pye2.

Modules here import only the standard library and do no I/O: no sockets, no
files, no threads, no clock reads. They take bytes, dicts and an explicit
``now`` and return values. A test in ``tests/architecture`` enforces this.
"""
