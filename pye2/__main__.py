"""``python -m pye2``: the same as the ``pye2`` console script."""

from __future__ import annotations

from pye2.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
