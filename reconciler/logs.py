"""Logging setup: loguru to stderr, one line per event, no colour unless on a TTY.

The format carries the pass number and the object a line is about, so a journal read with
``journalctl -u reconciler`` can be filtered by object without parsing free text.
"""

from __future__ import annotations

import os
import sys

from loguru import logger

FORMAT = ("{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} "
          "{extra[pass_no]: >3} {extra[obj]: <24} {message}")


def setup(level: str | None = None) -> None:
    level = (level or os.environ.get("RECONCILER_LOG_LEVEL") or "INFO").upper()
    logger.remove()
    logger.configure(extra={"pass_no": "-", "obj": "-"})
    logger.add(sys.stderr, level=level, format=FORMAT, colorize=sys.stderr.isatty(),
               backtrace=False, diagnose=False)
