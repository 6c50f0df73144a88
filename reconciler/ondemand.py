"""Names a package gives on first use (PEP 562), for the subsystems a spec may not hold.

``reconcile --once`` for an LVM-only spec imports no md, DRBD or iSCSI module (issue 22):
``reconciler.actions`` and ``reconciler.state`` name those subsystems' classes all the same
(``actions.BuildMdClone``), and the module defining one is imported the first time one of
its names is asked for, then every name it gives is bound in the package like an import.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping

# What a module of the product imports inside a function, from outside the product, that a
# step may need (the first log line a sink takes, the first step's retries, the first CIB
# read).
_IMPORTED_LATE = ("loguru", "tenacity", "xml.etree.ElementTree")
# Not the product's own code at run time: the simulator (tests, demo, offline planning) and
# the package's entry point (importing it runs the CLI).
_NOT_LOADED = ("reconciler.simulate", "reconciler.__main__")
_everything_loaded = False


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


def load_everything() -> None:
    """Import every module of the product now (but the simulator and the entry point), and
    the libraries its functions import late: once per process, before its first command
    that changes the host.

    What a lazy import saves at start-up must not cost a mix of versions: a daemon started
    on one version, whose package is upgraded on disk while it runs (``pip install
    --upgrade`` then a restart of the service), would otherwise import the new version's
    modules at its first step and run them with the old version's planner; and an import
    that fails (a half-written upgrade) would do so after commands already ran. The daemon
    calls this as it starts, and a pass before its first step (``controller``), so a
    process that changes the host has imported all of its code before it does."""
    global _everything_loaded
    if _everything_loaded:
        return
    import reconciler

    _load_under(reconciler.__path__, "reconciler.")
    for name in _IMPORTED_LATE:
        importlib.import_module(name)
    _everything_loaded = True


def _load_under(path: list[str], prefix: str) -> None:
    for found in pkgutil.iter_modules(path, prefix):
        if found.name in _NOT_LOADED:
            continue
        module = importlib.import_module(found.name)
        if found.ispkg:
            _load_under(module.__path__, found.name + ".")
