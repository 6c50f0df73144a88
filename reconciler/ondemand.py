"""Names a package gives on first use (PEP 562), for the subsystems a spec may not hold.

``reconcile --once`` for an LVM-only spec imports no md, DRBD or iSCSI module (issue 22):
``reconciler.actions`` and ``reconciler.state`` name those subsystems' classes all the same
(``actions.BuildMdClone``), and the module defining one is imported the first time one of
its names is asked for, then every name it gives is bound in the package like an import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def names(package: str, namespace: dict, table: Mapping[str, tuple[str, ...]]
          ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` (whose globals are ``namespace``), giving
    each name of ``table[module]`` from ``package.module`` on first use."""
    module_of = {name: module for module, given in table.items() for name in given}

    def getattr_(name: str) -> object:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        found = importlib.import_module(f"{package}.{module}")
        for each in table[module]:
            namespace[each] = getattr(found, each)
        return namespace[name]

    def dir_() -> list[str]:
        return sorted({*namespace, *module_of})

    return getattr_, dir_
