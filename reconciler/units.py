"""Sizes: always whole bytes inside the program.

Specs say "128M" or "1.5T"; tools are asked for ``--units b`` and answer in bytes; this
module is the only place that turns one into the other. Suffixes are binary, as LVM uses
them (``1G`` = 1 GiB); ``GiB`` and ``GB`` are accepted as the same thing because an
administrator writing ``10GB`` in an LVM context means what ``lvcreate -L 10G`` means, and
silently giving them 7 % less would be worse than the ambiguity.
"""

from __future__ import annotations

import re

_POWERS = {"": 0, "B": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
# ASCII only, matched whole: \d would take Arabic-Indic or full-width digits, \s a newline or
# a no-break space, and ``$`` a trailing newline. Plain spaces around the unit are allowed.
_SIZE_RE = re.compile(r" *([0-9]+(?:\.[0-9]+)?) *([kKmMgGtTpPeE]?)(?:i?[bB])? *")

MAX_BYTES = 8 * 1024**6  # lvm2's limit: sizes are below 8 EiB (2^63 bytes)


def _shown(text: str, limit: int = 40) -> str:
    """A value as it may appear in a message: escaped (repr) and cut, with its length."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


class Size(int):
    """A byte count. Subclasses ``int`` so arithmetic and comparisons stay plain."""

    def __repr__(self) -> str:
        return f"Size({format_size(self)})"

    def __str__(self) -> str:
        return format_size(self)


def parse_size(text: str | int) -> Size:
    """Parse ``"128M"``, ``"1.5T"``, ``"4096"`` or an int (bytes). Raises ValueError."""
    if isinstance(text, bool):
        raise ValueError("a size must be a number or a string like '10G', not a boolean")
    if isinstance(text, int):
        value = text
        shown = str(text) if abs(text) < 10**30 else f"a {len(str(abs(text)))}-digit integer"
    else:
        shown = _shown(text)
        m = _SIZE_RE.fullmatch(text)
        if not m:
            raise ValueError(f"{shown} is not a size: digits 0-9 with an optional binary unit "
                             f"K M G T P E (examples: 512M, 10G, 1.5T, 4096)")
        number, unit = m.groups()
        if len(number) > 30:  # far above 8 EiB; int() of a huge string is slow or refused
            raise ValueError(f"size {shown} is not below LVM's limit of 8 EiB")
        mult = 1024 ** _POWERS[unit.upper()]
        if "." in number:
            whole, frac = number.split(".")
            scaled = int(frac) * mult
            if scaled % 10 ** len(frac):
                raise ValueError(f"{shown} is not a whole number of bytes")
            value = int(whole) * mult + scaled // 10 ** len(frac)
        else:
            value = int(number) * mult
    if value <= 0:
        raise ValueError(f"size must be positive, got {shown}")
    if value >= MAX_BYTES:
        raise ValueError(f"size {shown} is not below LVM's limit of 8 EiB")
    return Size(value)


def format_size(n: int) -> str:
    """Shortest exact binary form: 134217728 → '128M'; 1000 → '1000B'; 1.5G stays '1536M'."""
    n = int(n)  # a Size's own __str__ calls this: format a plain int, never recurse
    if n == 0:
        return "0B"
    for unit in "EPTGMK":
        mult = 1024 ** _POWERS[unit]
        if n % mult == 0:
            return f"{n // mult}{unit}"
    return f"{n}B"


def human(n: int) -> str:
    """Approximate, for progress lines: 1.4G, 250M."""
    for unit in "EPTGMK":
        mult = 1024 ** _POWERS[unit]
        if n >= mult:
            return f"{n / mult:.1f}{unit}"
    return f"{n}B"


def extents(size: int, extent_size: int) -> int:
    """Number of extents needed to hold ``size`` bytes (LVM rounds up)."""
    return -(-size // extent_size)
