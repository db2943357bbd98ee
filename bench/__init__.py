"""pye2's benchmark harness: pye2 and the incumbent ratio1 measured side by side.

Run ``python -m bench`` (see ``bench/README.md``). This package imports only
the standard library at import time: the ratio1 sink, which runs in the
ratio1 venv, uses some of its helper modules.
"""
