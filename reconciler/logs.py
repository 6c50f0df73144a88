"""Logging setup: loguru to stderr, one line per event, no colour unless on a TTY.

Every line carries the pass number and the object it is about, and a line written while a
step runs ends with ``[step KEY]`` (the step's plan key), so a journal read with
``journalctl -u reconciler`` can be filtered by pass, step or object without parsing free
text.

Three renderings of the same line:

* on a terminal: time, level, tags and message, in colour (unless ``NO_COLOR`` is set);
* piped or redirected: the same, never with colour codes;
* under systemd with stderr connected to the journal (``JOURNAL_STREAM`` names our stderr):
  no timestamp (the journal has its own) and a ``<N>`` syslog priority prefix, which
  journald turns into the entry's priority, so ``journalctl -p warning`` works.

``muted(predicate)`` hides, for a while, the log lines a caller already shows otherwise
(``--once --wait`` shows in-flight operations as bars or one line per change of state, so
the per-pass "in flight" lines would only repeat them); warnings and errors always pass.

On a terminal, ``progress()`` keeps a small block of progress lines (``--once --wait``'s
bars) under the log lines: each log line is written above it and the block redrawn.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TextIO

from loguru import logger

# Colour markup is turned into ANSI codes on a terminal and stripped everywhere else.
FORMAT = ("<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
          "{extra[pass_no]: >3} <cyan>{extra[obj]: <24}</cyan> {message}")
JOURNAL_FORMAT = "{extra[pass_no]: >3} {extra[obj]: <24} {message}"
STEP_SUFFIX = "<dim>  [step {extra[step]}]</dim>"

# syslog priorities (sd-daemon(3)), by loguru level
_PRIORITY = {"TRACE": 7, "DEBUG": 7, "INFO": 6, "SUCCESS": 5, "WARNING": 4, "ERROR": 3,
             "CRITICAL": 2}


def to_journal(stream: TextIO, environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Whether ``stream`` is the journal's stream socket systemd connected us to."""
    value = environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class _Console:
    """stderr shared by log lines and a transient block of progress lines (TTY only)."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.block: list[str] = []
        self.lock = threading.Lock()

    def _clear(self) -> None:
        if self.block:
            # cursor to the start of the block's first line, then erase to the end of screen
            self.stream.write(f"\x1b[{len(self.block)}F\x1b[J")

    def _draw(self) -> None:
        for line in self.block:
            self.stream.write(line + "\n")

    def write(self, message: str) -> None:
        with self.lock:
            self._clear()
            self.stream.write(message)
            self._draw()
            self.stream.flush()

    def progress(self, lines: list[str]) -> None:
        with self.lock:
            self._clear()
            self.block = list(lines)
            self._draw()
            self.stream.flush()


_console: _Console | None = None
_mutes: list[Callable[[dict], bool]] = []


def _shown(record: dict) -> bool:
    if record["extra"].get("forecast"):
        # a pass replayed on a simulated copy (``forecasting``): its story is the forecast
        return False
    if record["level"].no >= logging.WARNING:
        return True
    return not any(mute(record) for mute in _mutes)


@contextlib.contextmanager
def muted(predicate: Callable[[dict], bool]) -> Iterator[None]:
    """Drop the DEBUG/INFO records ``predicate`` accepts while the block runs."""
    _mutes.append(predicate)
    try:
        yield
    finally:
        _mutes.remove(predicate)


class LogLevelError(ValueError):
    """``--log-level``/``RECONCILER_LOG_LEVEL`` names no level."""


LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def _step(record: dict) -> str:
    return STEP_SUFFIX if record["extra"].get("step", "-") != "-" else ""


def _format(record: dict) -> str:
    return FORMAT + _step(record) + "\n{exception}"


def _journal_format(record: dict) -> str:
    return JOURNAL_FORMAT + _step(record) + "\n{exception}"


def _journal_sink(stream: TextIO) -> Callable[[object], None]:
    """Every line of a record with its ``<N>`` priority: journald reads the prefix per line,
    and a continuation line without one (a multi-line error, a traceback) would be stored at
    the default priority, out of ``journalctl -p err``'s sight."""
    def write(message) -> None:
        prefix = f"<{_PRIORITY.get(message.record['level'].name, 6)}>"
        stream.write("".join(prefix + line + "\n" for line in str(message).rstrip("\n").split("\n")))
        stream.flush()
    return write


def setup(level: str | None = None, *, stream: TextIO | None = None) -> None:
    """Send log lines at ``level`` (else ``RECONCILER_LOG_LEVEL``, else INFO) to stderr."""
    global _console
    stream = stream or sys.stderr
    level_arg = bool(level)
    given = level or os.environ.get("RECONCILER_LOG_LEVEL") or "INFO"
    level = given.strip().upper()
    if level not in LEVELS:
        where = "--log-level" if level_arg else "RECONCILER_LOG_LEVEL"
        raise LogLevelError(f"{where}: unknown log level {given!r}; use one of "
                            f"{', '.join(LEVELS)}")
    logger.remove()
    logger.configure(extra={"pass_no": "-", "obj": "-", "step": "-"})
    _console = None
    if to_journal(stream):
        logger.add(_journal_sink(stream), level=level, format=_journal_format, colorize=False,
                   filter=_shown,
                   backtrace=False, diagnose=False)
        return
    tty = stream.isatty()
    if tty:
        _console = _Console(stream)
    logger.add(_console.write if _console else stream, level=level, format=_format,
               filter=_shown, colorize=tty and not os.environ.get("NO_COLOR"), backtrace=False,
               diagnose=False)


def progress(lines: list[str]) -> bool:
    """Show ``lines`` as the block under the log lines; False (nothing shown) off a TTY."""
    if _console is None:
        return False
    _console.progress(lines)
    return True
