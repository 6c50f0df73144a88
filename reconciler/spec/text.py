"""How spec values, keys and file names appear in messages: escaped, cut, in TOML's words.

A spec is written by people and read back to them in messages, logs, status and metrics. A
name may hold a newline or a terminal escape sequence, and a value may be 50 MB long: neither
may reach a message raw (a forged log line, a terminal rewritten, a journal flooded). So every
piece of a spec shown to a person goes through ``shown`` (repr-style escapes, cut with its
length) or ``key_path`` (TOML's dotted keys, ``[i]`` for array items, odd keys quoted).
"""

from __future__ import annotations

import datetime
import re

SHOWN_LIMIT = 60  # characters of a value kept in a message
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def escaped(text: str) -> str:
    """``text`` with every character that is not printable written as an escape (\\n, \\x1b)."""
    if text.isprintable() and "\\" not in text:
        return text
    return repr(text)[1:-1] if "'" not in text else repr(text)[1:-1].replace("\\'", "'")


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """A value as a message shows it: repr-quoted and escaped, cut with its length if long."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(value)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def key(part: str | int, limit: int = SHOWN_LIMIT) -> str:
    """One key of a path: bare when TOML allows it bare, else quoted and escaped."""
    if isinstance(part, int):
        return f"[{part}]"
    if _BARE_KEY.fullmatch(part) and len(part) <= limit:
        return part
    cut = part if len(part) <= limit else part[:limit]
    body = escaped(cut).replace('"', '\\"')
    return f'"{body}"' if cut is part else f'"{body}…" ({len(part)} characters)'



def key_path(parts: tuple | list) -> str:
    """``("vg", "a", "pvs", 0)`` → ``vg.a.pvs[0]``; odd keys quoted: ``vg."a b".nodes``."""
    out = ""
    for part in parts:
        if part == "[key]":  # pydantic's marker for "the key itself was refused"
            continue
        piece = key(part)
        out += piece if piece.startswith("[") or not out else "." + piece
    return out


def toml_type(value: object) -> str:
    """The TOML name of a parsed value's type, for "must be X, not Y" messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, datetime.datetime):
        return "a date-time"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, datetime.time):
        return "a time"
    return "a value of another kind"


def file_name(path: str) -> str:
    """A file name for a message: escaped, and cut if absurdly long."""
    text = escaped(path)
    return text if len(text) <= 4 * SHOWN_LIMIT else f"{text[:4 * SHOWN_LIMIT]}… ({len(path)} characters)"
