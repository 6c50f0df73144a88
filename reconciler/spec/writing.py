"""Spec tables → TOML text (for ``reconcile adopt``): the few shapes a spec holds, nothing more.

Tables nest as ``[vg.NAME]`` / ``[vg.NAME.lv.LV]``; values are strings, integers, floats, booleans and
arrays of them (arrays of arrays for ``copies``). Keys that TOML does not allow bare are
quoted; strings are written as basic strings with every character that is not printable
escaped, so whatever a host's names hold, the file reads back as written (``tomllib``).
A table may carry comment lines, written under its header: each line is escaped the same way
and can never end the comment early.
"""

from __future__ import annotations

import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")
Value = str | int | float | bool | list


def key(name: str) -> str:
    return name if _BARE.fullmatch(name) else string(name)


def string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def value(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and v == v and abs(v) != float("inf"):
        return repr(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise TypeError(f"a spec value is a string, integer, boolean or array, not {type(v).__name__}")


def _comment(text: str) -> str:
    body = string(text)[1:-1] if not text.isprintable() else text
    return f"# {body}\n"


def dumps(doc: dict, notes: dict[tuple[str, ...], list[str]] | None = None,
          header: list[str] = ()) -> str:
    """``doc`` as TOML; ``notes[path]``: comment lines under the table at ``path``."""
    notes = notes or {}
    out = [_comment(line) for line in header]

    def table(path: tuple[str, ...], t: dict) -> None:
        plain = {k: v for k, v in t.items() if not isinstance(v, dict)}
        subs = {k: v for k, v in t.items() if isinstance(v, dict)}
        if path and (plain or not subs or path in notes):
            if out:
                out.append("\n")
            out.append("[" + ".".join(key(p) for p in path) + "]\n")
            out.extend(_comment(line) for line in notes.get(path, ()))
            out.extend(f"{key(k)} = {value(v)}\n" for k, v in plain.items())
        for k, v in subs.items():
            table(path + (k,), v)

    table((), doc)
    return "".join(out)
