"""How the network commands print: text (``rich`` tables and spinners when installed and on a terminal,
plain aligned columns otherwise) or JSON lines (``--json``).

``rich`` comes with the ``cli`` extra (``pip install 'pye2[cli]'``); without it, or with
``PYE2_CLI_PLAIN=1``, or when stdout is not a terminal, output is plain text. Progress
(a spinner with a status text) goes to stderr, only on a terminal, and never in JSON mode,
so that a failure leaves exactly one ``error: ...`` line on stderr.
Every value a node controls must be passed through :func:`safe` before it is printed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from pye2.domain.logtext import clip

__all__ = ["Output", "Progress", "safe", "safe_lines"]


def safe(value: object, limit: int = 120) -> str:
    """A node-controlled value as one printable token (no terminal escapes), at most ``limit`` characters."""
    return "" if value is None else clip(value, limit)


def safe_lines(text: str, limit: int = 10_000) -> str:
    """Multi-line node-controlled text: each line made printable (no terminal escapes)."""
    return "\n".join(clip(line, limit) for line in text.splitlines())


def _rich() -> Any:
    if os.environ.get("PYE2_CLI_PLAIN", "") not in ("", "0"):
        return None
    try:
        import rich.console
    except ImportError:
        return None
    return rich


class Progress:
    """A status line while waiting (``update`` changes the text); silent off a terminal."""

    def __init__(self, status: Any = None, stream: TextIO | None = None) -> None:
        self._status = status
        self._stream = stream
        self._last = 0

    def update(self, text: str) -> None:
        if self._status is not None:
            self._status.update(text)
        elif self._stream is not None:
            pad = max(0, self._last - len(text))
            self._stream.write("\r" + text + " " * pad)
            self._stream.flush()
            self._last = len(text)

    def clear(self) -> None:
        if self._status is None and self._stream is not None and self._last:
            self._stream.write("\r" + " " * self._last + "\r")
            self._stream.flush()
            self._last = 0


class Output:
    """The printer of one command run."""

    def __init__(self, as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.json = as_json
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        rich = None if as_json else _rich()
        self._console: Any = None
        self._err_console: Any = None
        if rich is not None:
            console = rich.console.Console(file=self.out, highlight=False)
            if console.is_terminal:
                self._console = console
                self._err_console = rich.console.Console(file=self.err, highlight=False)
        self.rich = self._console is not None

    # -- records ---------------------------------------------------------------------
    def record(self, obj: dict[str, Any]) -> None:
        """One JSON line (``--json``)."""
        self.out.write(json.dumps(obj, default=str) + "\n")
        self.out.flush()

    def line(self, text: str, style: str | None = None) -> None:
        """A line of text (``style``: a rich style, ignored in plain text)."""
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text(text, style=style or ""))
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None,
              styles: Sequence[str | None] | None = None) -> None:
        """A table (rows of already-safe strings)."""
        self.render(self.make_table(columns, rows, title, styles))

    def make_table(self, columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None,
                   styles: Sequence[str | None] | None = None) -> Any:
        """A renderable table: a rich ``Table``, or the plain text of one."""
        if self._console is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left", header_style="bold")
            for name in columns:
                table.add_column(name, overflow="fold")
            for i, row in enumerate(rows):
                table.add_row(*row, style=(styles[i] if styles else None) or None)
            return table
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        lines = [title] if title else []
        lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
        lines.extend("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)
        return "\n".join(lines)

    def render(self, renderable: Any) -> None:
        if self._console is not None:
            self._console.print(renderable)
        else:
            self.out.write(str(renderable) + "\n")
            self.out.flush()

    @contextmanager
    def live(self) -> Iterator[Any]:
        """A region refreshed in place (``nodes --watch``): yields ``show(renderable)``."""
        if self._console is not None:
            from rich.live import Live

            with Live(console=self._console, auto_refresh=False) as live:
                yield lambda r: live.update(r, refresh=True)
        else:
            yield self.render

    # -- progress and errors -----------------------------------------------------------
    @contextmanager
    def progress(self, text: str) -> Iterator[Progress]:
        """A spinner with ``text`` on stderr while the block runs (a terminal only, not with ``--json``)."""
        if self.json or not self.err.isatty():
            yield Progress()
            return
        if self._err_console is not None:
            with self._err_console.status(text) as status:
                yield Progress(status)
            return
        bar = Progress(stream=self.err)
        bar.update(text)
        try:
            yield bar
        finally:
            bar.clear()

    def error(self, text: str) -> None:
        """The one line of a failure, on stderr."""
        self.err.write(f"error: {text}\n")
        self.err.flush()

    def warn(self, text: str) -> None:
        self.err.write(f"warning: {text}\n")
        self.err.flush()
