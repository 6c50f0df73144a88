"""Logging: loguru to stderr, one line per event, no colour unless on a TTY.

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

The product logs through ``logger`` here: loguru's API (``bind``, ``opt``, ``contextualize``,
``log``, ``debug`` ... ``exception``) in front of loguru, which is imported by the first
record a sink takes (its level at least ``setup``'s), not as the process starts. Importing
loguru costs about as much as pydantic's ``BaseModel`` (it imports ``asyncio``,
``multiprocessing``, ``decimal``...), and a pass that changes nothing logs only at DEBUG,
which the default level drops (issue 22). A record below ``setup``'s level is dropped
before loguru is imported and before its message is formatted. Once loguru is imported (by
a record, or by anyone else: tests add their own sinks to read records), every record goes
to it as is, and loguru alone decides what each sink takes.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

# Colour markup is turned into ANSI codes on a terminal and stripped everywhere else.
FORMAT = ("<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
          "{extra[pass_no]: >3} <cyan>{extra[obj]: <24}</cyan> {message}")
JOURNAL_FORMAT = "{extra[pass_no]: >3} {extra[obj]: <24} {message}"
STEP_SUFFIX = "<dim>  [step {extra[step]}]</dim>"

# loguru's levels and their numbers (``logger.level(name).no``)
_LEVEL_NO = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40,
             "CRITICAL": 50}

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
    if record["level"].no >= _LEVEL_NO["WARNING"]:
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
    """Send log lines at ``level`` (else ``RECONCILER_LOG_LEVEL``, else INFO) to stderr.

    loguru's sinks are replaced by this one: now if loguru is imported, else when it is
    (by ``logger``'s first record at ``level`` or above, see ``_loguru``)."""
    global _console, _pending, _threshold
    stream = stream or sys.stderr
    level_arg = bool(level)
    given = level or os.environ.get("RECONCILER_LOG_LEVEL") or "INFO"
    level = given.strip().upper()
    if level not in LEVELS:
        where = "--log-level" if level_arg else "RECONCILER_LOG_LEVEL"
        raise LogLevelError(f"{where}: unknown log level {given!r}; use one of "
                            f"{', '.join(LEVELS)}")
    _console = None
    if to_journal(stream):
        def add(real: Any) -> None:
            real.configure(extra={"pass_no": "-", "obj": "-", "step": "-"})
            real.add(_journal_sink(stream), level=level, format=_journal_format,
                     colorize=False, filter=_shown, backtrace=False, diagnose=False)
    else:
        tty = stream.isatty()
        colorize = tty and not os.environ.get("NO_COLOR")
        console = _console = _Console(stream) if tty else None

        def add(real: Any) -> None:
            real.configure(extra={"pass_no": "-", "obj": "-", "step": "-"})
            real.add(console.write if console else stream, level=level, format=_format,
                     filter=_shown, colorize=colorize, backtrace=False, diagnose=False)
    with _handing_over:
        _threshold = _LEVEL_NO[level]
        if "loguru" in sys.modules:
            _pending = None
            from loguru import logger as real
            real.remove()
            add(real)
        else:
            _pending = add


def attach() -> None:
    """Import loguru and give it ``setup``'s sink now, not at the first record: adding a
    sink builds loguru's exception formatter, which reads every install scheme's paths
    (``sysconfig``), 0.04 s of a no-op pass under TCG at DEBUG
    (bench_lab: the pass beside its own fullreport went from 0.06 s to 0.02 s; issue 22)."""
    _loguru()


def writes_every_pass() -> bool:
    """Whether ``setup``'s level takes DEBUG records, which every pass writes (the CLI then
    imports loguru with the process, not inside its first pass)."""
    return _threshold <= _LEVEL_NO["DEBUG"]


# The sink ``setup`` made while loguru was not imported, given to it when it is (``_loguru``).
_pending: Callable[[Any], None] | None = None
# The lowest level a sink takes while loguru is not imported: ``setup``'s; before any
# ``setup``, every record imports loguru (its default sink decides, as it always did).
_threshold = 0
# ``logger.contextualize``'s fields: every record made inside carries them (under its own).
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "reconciler_logs_context", default={})
# ``_pending`` handed to loguru once, whichever thread's record comes first (the daemon's)
_handing_over = threading.Lock()


def _loguru() -> Any:
    """loguru's logger, imported now if it was not, with ``setup``'s sink if it waits for it.

    Imported here: that sink replaces loguru's default one, as ``setup`` would have done had
    loguru been imported then. Imported by someone else since ``setup`` (a test that reads
    records): the sink goes in beside theirs, as it would have been, unless they removed
    every sink since (loguru's default one is gone), which would have removed it too."""
    global _pending
    if _pending is None and "loguru" in sys.modules:
        from loguru import logger as real
        return real
    with _handing_over:
        already = "loguru" in sys.modules
        from loguru import logger as real
        add, _pending = _pending, None
        if add is not None:
            try:
                real.remove(0)  # the default sink ``import loguru`` added
            except ValueError:
                if already:
                    return real
                real.remove()
            add(real)
    return real


class _Logger:
    """loguru's ``logger`` API in front of it (above): ``bind`` and ``opt`` make a new one,
    a record is handed to loguru with the caller's frame as its own."""

    __slots__ = ("_options", "_extra")

    def __init__(self, options: dict[str, Any], extra: dict[str, Any]):
        self._options = options
        self._extra = extra

    def bind(self, **extra: Any) -> _Logger:
        return _Logger(self._options, {**self._extra, **extra})

    def opt(self, **options: Any) -> _Logger:
        """As loguru's: the options given replace those of before; the bound fields stay."""
        return _Logger(options, self._extra)

    @contextlib.contextmanager
    def contextualize(self, **extra: Any) -> Iterator[None]:
        token = _context.set({**_context.get(), **extra})
        try:
            yield
        finally:
            _context.reset(token)

    def _emit(self, level: str | int, options: dict[str, Any], message: str,
              args: tuple, kwargs: dict[str, Any]) -> None:
        if "loguru" not in sys.modules:
            no = level if isinstance(level, int) else _LEVEL_NO.get(level, _threshold)
            if no < _threshold:
                return  # no sink takes it: loguru not imported, the message not formatted
        real = _loguru()
        extra = {**_context.get(), **self._extra}
        if extra:
            real = real.bind(**extra)
        # depth 2: the frame that called the method below (the record's module, function
        # and line are the caller's, as with loguru's own logger)
        real.opt(**{**options, "depth": options.get("depth", 0) + 2}).log(
            level, message, *args, **kwargs)

    def log(self, level: str | int, message: str, *args: Any, **kwargs: Any) -> None:
        self._emit(level, self._options, message, args, kwargs)

    def trace(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._emit("TRACE", self._options, message, args, kwargs)

    def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._emit("DEBUG", self._options, message, args, kwargs)

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._emit("INFO", self._options, message, args, kwargs)

    def success(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._emit("SUCCESS", self._options, message, args, kwargs)

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._emit("WARNING", self._options, message, args, kwargs)

    def error(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._emit("ERROR", self._options, message, args, kwargs)

    def critical(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._emit("CRITICAL", self._options, message, args, kwargs)

    def exception(self, message: str, *args: Any, **kwargs: Any) -> None:
        """An ERROR with the exception being handled, as loguru's."""
        self._emit("ERROR", {**self._options, "exception": True}, message, args, kwargs)


logger = _Logger({}, {})


def progress(lines: list[str]) -> bool:
    """Show ``lines`` as the block under the log lines; False (nothing shown) off a TTY."""
    if _console is None:
        return False
    _console.progress(lines)
    return True
