"""What every spec table is built on: the frozen model that forbids unknown keys, the error
that keeps a key path exact (``At``), the size field, and ``Presence``.

Every model is frozen and forbids unknown keys: a typo in a spec must be an error that
names the key, never a silently ignored setting.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema

from reconciler import units
from reconciler.spec.text import shown, toml_type


class At(ValueError):
    """A problem found by a table's own check, about one of its keys (``lv.db.size``).

    Raised inside a model validator, it keeps the key path exact: the loader appends
    ``where`` to the table's path instead of naming the whole table.
    """

    def __init__(self, where: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.where = where


class Problems(ValueError):
    """Several ``At`` problems of one table, found by checks that do not depend on each other."""

    def __init__(self, found: list[At]):
        super().__init__("; ".join(str(p) for p in found))
        self.found = tuple(found)


class Checks:
    """Runs a table's independent checks and reports every problem, not only the first.

    ``with checks:`` around each check keeps its ``At`` and goes on; ``checks.done()`` raises
    them all at the end (one ``At``, or ``Problems``)::

        checks = Checks()
        with checks:
            unique("PV", self.pvs, "pvs")
        ...
        checks.done()
    """

    def __init__(self) -> None:
        self.found: list[At] = []

    def __enter__(self) -> "Checks":
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, At):
            self.found.append(exc)
            return True
        return False

    def done(self) -> None:
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            raise Problems(self.found)


# A spec repeats a few sizes ("64M" for 10,000 LVs): each text is parsed once per process.
# Only a valid text is kept (a refused one raises every time), and only so many of them.
_SIZES: dict[str, units.Size] = {}
_SIZES_KEPT = 4096


def parse_size(value: object) -> int:
    if type(value) is str:
        size = _SIZES.get(value)
        if size is None:
            size = units.parse_size(value)
            if len(_SIZES) < _SIZES_KEPT:
                _SIZES[value] = size
        return size
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return units.parse_size(value)
    raise ValueError(f"must be a size: a string like \"10G\" or an integer number of bytes, "
                     f"not {toml_type(value)}")


SizeField = Annotated[
    int, BeforeValidator(parse_size), PlainSerializer(units.format_size, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string",
                               "pattern": r"^ *[0-9]+(\.[0-9]+)? *" + units.UNIT_PATTERN + " *$",
                               "examples": ["128M", "10G", "1.5T"]},
                              {"type": "integer", "minimum": 1,
                               "exclusiveMaximum": units.MAX_BYTES}],
                    "description": "bytes, or a number with a binary unit (K M G T P E, "
                    "or KiB MiB GiB TiB PiB EiB; GB, TB... are refused as ambiguous); below 8 EiB"}),
]


class Presence(enum.StrEnum):
    PRESENT = "present"
    ABSENT = "absent"


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


def unique(kind: str, items: tuple[str, ...], key: str) -> tuple[str, ...]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item in seen:
            raise At((key, i), f"{kind} {shown(item)} is listed twice")
        seen.add(item)
    return items
