"""Offline planning: capture a host's observation, and seed a simulated host from it.

``reconcile capture DIR`` writes the raw stdout of every observation command, untouched,
plus ``manifest.json`` (argv, exit code, tool versions, host, time). ``--simulate DIR``
parses that capture with the same parser a live pass uses and builds a ``SimulatedHost``
holding the same PVs, VGs and LVs, so a plan can be reviewed away from the server.
"""

from __future__ import annotations

import datetime
import json
import socket
from pathlib import Path

from reconciler import errors, state
from reconciler.adapters import lvm
from reconciler.runner import Runner

FULLREPORT_FILE = "lvm-fullreport.json"
MANIFEST_FILE = "manifest.json"


def capture(directory: str, *, simulate: str | None = None) -> dict:
    runner: Runner
    if simulate:
        runner = simulated_host(simulate)
    else:
        from reconciler.runner import SubprocessRunner
        runner = SubprocessRunner()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    versions = {}
    for name, cmd in (("lvm-version.txt", lvm.version()), (FULLREPORT_FILE, lvm.fullreport())):
        res = runner.run(cmd)
        if not res.ok:
            raise lvm.failure(res)
        (out / name).write_text(res.stdout)
        entries.append({"argv": list(cmd.argv), "rc": res.rc, "file": name,
                        "stderr": res.stderr[-2000:]})
        if name == "lvm-version.txt":
            versions["lvm2"] = lvm.parse_version(res.stdout)
    manifest = {"format": 1, "host": socket.gethostname(),
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "versions": versions, "commands": entries}
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_capture(directory: str) -> state.HostState:
    path = Path(directory)
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        text = (path / FULLREPORT_FILE).read_text()
    except (OSError, ValueError) as exc:
        raise errors.ReconcilerError(f"{directory} is not a capture written by "
                                     f"'reconcile capture' ({exc})") from None
    if manifest.get("format") != 1:
        raise errors.ReconcilerError(f"{directory}: unknown capture format {manifest.get('format')!r}")
    return lvm.parse_fullreport(text, host=manifest.get("host", "captured"))


def simulated_host(source: str):
    """'default' → the embedded demo host; a directory → a host seeded from a capture."""
    from reconciler import simulate
    from reconciler.simulate import demo
    if source == "default":
        return demo.default_host()
    st = load_capture(source)
    host = simulate.SimulatedHost()
    for pv in sorted(st.pvs.values(), key=lambda p: p.name):
        host.add_device(pv.name, int(pv.dev_size or pv.size))
        host.add_pv(pv.name)
    for vg in sorted(st.vgs.values(), key=lambda v: v.name):
        if vg.pvmoves:
            raise errors.ReconcilerError(
                f"the capture shows a pvmove in flight in VG {vg.name}; simulating in-flight "
                f"operations from a capture is not supported, capture again once it ends")
        host.add_vg(vg.name, list(vg.pvs), extent_size=int(vg.extent_size))
        for lv in sorted(vg.lvs.values(), key=lambda lv: lv.name):
            if not lv.is_linear:
                raise errors.ReconcilerError(
                    f"LV {lv.key} is {','.join(lv.layout)}; only linear LVs can be seeded "
                    f"into the simulator from a capture")
            host.add_lv(vg.name, lv.name, int(lv.size), layout=sorted(lv.pv_extents.items()))
    return host
