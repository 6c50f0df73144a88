"""Sizes: always whole bytes inside the program.

Specs say "128M" or "1.5T"; tools are asked for ``--units b`` and answer in bytes; this
module is the only place that turns one into the other. Units are binary, as LVM's size
arguments are (``lvcreate -L 10G`` and ``-L 10g`` are both 10 GiB): ``K M G T P E`` in either
case, or spelt ``KiB``... ``EiB``; ``B`` (or none) is bytes. ``GB``, ``MB``, ``TB``... are
refused: in SI they are powers of 1000, to many readers powers of 1024, and a spec must not
leave open whether an LV is 7 % smaller than its writer meant. The message says what to write.
"""

from __future__ import annotations

import re

_POWERS = {"": 0, "B": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
# ASCII only, matched whole: \d would take Arabic-Indic or full-width digits, \s a newline or
# a no-break space, and ``$`` a trailing newline. Plain spaces around the unit are allowed.
_SIZE_RE = re.compile(r" *([0-9]+(?:\.[0-9]+)?) *([A-Za-z]{0,3}) *")
_UNIT_RE = re.compile(r"(?:([kKmMgGtTpPeE])(?:[iI][bB])?|[bB]?)")
_DECIMAL_RE = re.compile(r"([kKmMgGtTpPeE])[bB]")
# The unit as the JSON Schema says it (spec.base, spec.lvm): what _UNIT_RE takes
UNIT_PATTERN = r"([kKmMgGtTpPeE]([iI][bB])?|[bB])?"

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
        decimal = _DECIMAL_RE.fullmatch(m.group(2)) if m else None
        if decimal:
            number, letter = m.group(1), decimal.group(1).upper()
            raise ValueError(f"{shown}: {letter}B is ambiguous (1000 or 1024 to the power?); "
                             f"write {number}{letter} or {number}{letter}iB, binary units "
                             f"as lvcreate -L takes them")
        unit_m = _UNIT_RE.fullmatch(m.group(2)) if m else None
        if not m or not unit_m:
            raise ValueError(f"{shown} is not a size: digits 0-9 with an optional binary unit "
                             f"K M G T P E or KiB MiB GiB TiB PiB EiB (examples: 512M, 10G, "
                             f"10GiB, 1.5T, 4096)")
        number, unit = m.group(1), unit_m.group(1) or ""
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
