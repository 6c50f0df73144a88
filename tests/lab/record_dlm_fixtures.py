#!/usr/bin/env python3
"""Record real corosync + DLM + lvmlockd outputs on two lab guests (issue 20).

    python3 tests/lab/record_dlm_fixtures.py [--out tests/fixtures/outputs/dlm]

One pair from ``dlm.dlm_pair`` started by hand, step by step, so that what the tools say
before the stack is up is recorded too:

1. node-a: ``corosync-quorumtool -s`` before corosync runs, then with corosync running
   alone (two_node's wait_for_all: not quorate until node-b was seen), then quorate.
2. ``vgcreate --shared --locktype dlm`` on node-a with dlm_controld running; on node-b
   ``vgchange --lock-start`` while dlm_controld is not running there, then with it.
3. ``lvmlockctl --info`` and ``dlm_tool ls`` on both; ``lvchange -aey`` on node-b while
   node-a holds the LV.

Writes ``commands/<case>_<node>.txt`` (header, ``argv:``, ``rc:``, ``--- stdout``,
``--- stderr``, the lvmlockd recorder's format) and ``INDEX.md`` under --out. Commands run
with ``LC_ALL=C`` (the agent's environment).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dlm import DlmPair, corosync_conf, dlm_pair  # noqa: E402
from harness import Guest  # noqa: E402
from record_fixtures import jstr  # noqa: E402

VG = "vgd"


class Rec:
    def __init__(self, out: Path, pair: DlmPair):
        self.out = out
        self.index: list[str] = []
        g = pair.a
        self.versions = g.run(["sh", "-c", "corosync -v | head -1; dpkg-query -W -f='${Version}' "
                               "dlm-controld; echo; lvm version | head -1"]).out.replace("\n", "; ")

    def cmd(self, g: Guest, case: str, argv: list[str], how: str, timeout: float = 120):
        case = f"{case}_{g.name.rsplit('-', 1)[1]}"
        t0 = time.monotonic()
        res = g.run(argv, timeout=timeout, check=False)
        dt = time.monotonic() - t0
        (self.out / "commands").mkdir(parents=True, exist_ok=True)
        (self.out / "commands" / f"{case}.txt").write_text(
            f"# {self.versions}kernel {g.kver}; argv: {jstr(argv)}\nargv: {jstr(argv)}\nrc: {res.rc}\n"
            f"--- stdout\n{res.out}--- stderr\n{res.err}")
        self.index.append(f"- `commands/{case}.txt` ({g.name}): `{jstr(argv)}` -> rc {res.rc} in {dt:.1f}s. {how}")
        print(f"{case}: rc={res.rc} {dt:.1f}s\n{res.out}{res.err}", flush=True)
        return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE.parent / "fixtures" / "outputs" / "dlm"))
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    with dlm_pair(start=False) as p:
        a, b = p.a, p.b
        r = Rec(out, p)
        for g in (a, b):
            g.write_file("/etc/corosync/corosync.conf", corosync_conf(p.link))
        r.cmd(a, "quorumtool_no_corosync", ["corosync-quorumtool", "-s"], "corosync not started")
        p.start_corosync(a)
        time.sleep(3)
        r.cmd(a, "quorumtool_alone", ["corosync-quorumtool", "-s"],
              "corosync running on node-a only (two_node: wait_for_all)")
        p.start_corosync(b)
        p.wait_quorate(a)
        p.wait_quorate(b)
        r.cmd(a, "quorumtool_quorate", ["corosync-quorumtool", "-s"], "both nodes running")
        for g in (a, b):
            p.start_lvmpolld(g)
        p.start_dlm(a)
        p.start_lvmlockd(a)
        p.start_lvmlockd(b)  # lvmlockd -g dlm, dlm_controld NOT running on node-b
        r.cmd(a, "vgcreate_shared_dlm", ["vgcreate", "--shared", "--locktype", "dlm", VG, "/dev/vda"],
              "the creator, dlm_controld running", timeout=300)
        r.cmd(b, "lock_start_no_dlm_controld", ["vgchange", "--lock-start", VG],
              "dlm_controld not running on node-b", timeout=300)
        r.cmd(b, "lockctl_info_no_dlm_controld", ["lvmlockctl", "--info"], "after that")
        r.cmd(b, "dlm_tool_ls_no_dlm_controld", ["dlm_tool", "ls"], "dlm_controld not running")
        p.start_dlm(b)
        r.cmd(b, "lock_start", ["vgchange", "--lock-start", VG], "dlm_controld running", timeout=300)
        r.cmd(a, "lvcreate", ["lvcreate", "--yes", "--activate", "n", "--name", "lv1", "--size", "32m", VG],
              "inactive, as the reconciler creates it")
        r.cmd(a, "lvchange_aey", ["lvchange", "-aey", f"{VG}/lv1"], "node-a takes it exclusive")
        r.cmd(b, "lvchange_aey_held", ["lvchange", "-aey", f"{VG}/lv1"], "node-a holds it")
        for g in (a, b):
            r.cmd(g, "lockctl_info", ["lvmlockctl", "--info"], "lockspaces started, lv1 ex on node-a")
            r.cmd(g, "dlm_tool_ls", ["dlm_tool", "ls"], "the DLM's view of the same")
        r.cmd(a, "dlm_tool_status", ["dlm_tool", "status"], "")
        (out / "INDEX.md").write_text(
            "# corosync + DLM + lvmlockd recordings (tests/lab/record_dlm_fixtures.py)\n\n"
            + "\n".join(r.index) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
