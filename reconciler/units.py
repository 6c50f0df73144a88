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
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpPeE]?)(?:i?[bB])?\s*$")

MAX_BYTES = 8 * 1024**6  # lvm2's limit is 8 EiB


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
    else:
        m = _SIZE_RE.match(text)
        if not m:
            raise ValueError(f"{text!r} is not a size (examples: 512M, 10G, 1.5T, 4096)")
        number, unit = m.groups()
        mult = 1024 ** _POWERS[unit.upper()]
        if "." in number:
            whole, frac = number.split(".")
            value = int(whole) * mult + (int(frac) * mult) // (10 ** len(frac))
        else:
            value = int(number) * mult
    if value <= 0:
        raise ValueError(f"size must be positive, got {text!r}")
    if value > MAX_BYTES:
        raise ValueError(f"size {text!r} exceeds LVM's limit of 8 EiB")
    return Size(value)


def format_size(n: int) -> str:
    """Shortest exact binary form: 134217728 → '128M'; 1000 → '1000B'; 1.5G stays '1536M'."""
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
