"""TOML text → a dict, by the fastest parser that reads TOML exactly as ``tomllib`` does.

``tomli`` is the library the standard library's ``tomllib`` was taken from; its wheels are
compiled (mypyc), and read a 10,000-LV spec in about half of ``tomllib``'s time
(bench/bench_plan.py). Only a TOML 1.0 ``tomli`` is taken (pyproject pins it below 2.3),
so it accepts exactly what ``tomllib`` accepts. A document it refuses is read again by
``tomllib``, whose error is the one raised: the message a user sees does not depend on which
parser is installed. Without ``tomli`` (a host that installed only the standard library's
parts), ``tomllib`` reads everything.
"""

from __future__ import annotations

import tomllib
from typing import Any

try:
    import tomli as _fast
except ImportError:  # pragma: no cover - the fallback is tomllib itself
    _fast = None

TOMLDecodeError = tomllib.TOMLDecodeError


def loads(text: str) -> dict[str, Any]:
    """Parse ``text``; raise ``tomllib.TOMLDecodeError`` (tomllib's own message) if invalid."""
    if _fast is None:
        return tomllib.loads(text)
    try:
        return _fast.loads(text)
    except _fast.TOMLDecodeError:
        pass
    return tomllib.loads(text)  # raises tomllib's error (or, were the two to differ, parses)
