"""One observation of a host: exactly one ``lvm fullreport`` process, plus device identities.

Device identities (major:minor of each path the spec names) come from ``stat``, not from a
process, so a spec may say ``/dev/disk/by-id/...`` while LVM reports ``/dev/sdb`` and the two
are still recognised as the same disk.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Callable, Iterable

from reconciler import state
from reconciler.adapters import lvm
from reconciler.runner import Runner

Resolver = Callable[[str], "tuple[int, int] | None"]


def resolve_local(path: str) -> tuple[int, int] | None:
    """(major, minor) of a block device path on this machine, following symlinks."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat_mod.S_ISBLK(st.st_mode):
        return None
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def observe(runner: Runner, *, host: str, devices: Iterable[str], resolve: Resolver,
            now: float = 0.0) -> state.HostState:
    """Observe ``host``. Raises ``CommandFailed`` or ``ObservationError`` when it cannot."""
    result = runner.run(lvm.fullreport(host))
    if not result.ok:
        raise lvm.failure(result)
    parsed = lvm.parse_fullreport(result.stdout, host=host, observed_at=now)
    return state.HostState(host=host, vgs=parsed.vgs, pvs=parsed.pvs,
                           devices={d: resolve(d) for d in devices}, observed_at=now)


def spec_devices(spec) -> list[str]:
    """Every device path a spec names (what ``observe`` must resolve)."""
    out: list[str] = []
    for vg in spec.vg.values():
        out.extend(vg.pvs)
        for lv in vg.lv.values():
            out.extend(lv.placement)
    return sorted(set(out))
