#!/usr/bin/env python3
"""Record what Pacemaker says about a DRBD resource it manages, on two lab guests (issue 20).

    python3 tests/lab/record_pacemaker_fixtures.py [--out tests/fixtures/outputs/pacemaker]

node-a and node-b, each with its own 64M disk (/dev/vda), on one link: corosync two-node
(``dlm.corosync_conf``), DRBD 8.4 resource r0 set up by hand (create-md, up, first sync
from node-a, both secondary), then ``pacemakerd`` on both, ``stonith-enabled=false`` (the lab
has no fence device; production needs one) and a promotable clone of ``ocf:linbit:drbd``
for r0 created with ``cibadmin --create``. Recorded (read-only commands, as the reconciler
would run them): ``crm_mon --output-as=xml`` before Pacemaker runs and once it promoted r0
somewhere, ``cibadmin --query``, ``/proc/drbd``. Files: ``commands/<case>_<node>.txt``
(header, ``argv:``, ``rc:``, ``--- stdout``, ``--- stderr``) and ``INDEX.md``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # tests/: support

from dlm import DlmPair, corosync_conf  # noqa: E402
from harness import Guest, LabError, Link, boot  # noqa: E402
from record_fixtures import jstr  # noqa: E402
from support.pcmk import DRBD_CLONE  # noqa: E402


def res_file(link: Link) -> str:
    on = "".join(f"  on {n} {{\n    device /dev/drbd0;\n    disk /dev/vda;\n    address {ip}:7789;\n"
                 f"    meta-disk internal;\n  }}\n" for n, ip in (("node-a", link.a.ip), ("node-b", link.b.ip)))
    return f"resource r0 {{\n  protocol C;\n{on}}}\n"


class Rec:
    def __init__(self, out: Path, g: Guest):
        self.out = out
        self.index: list[str] = []
        self.versions = g.run(["sh", "-c", "pacemakerd --version | head -1; corosync -v | head -1"]
                              ).out.replace("\n", "; ")

    def cmd(self, g: Guest, case: str, argv: list[str], how: str, timeout: float = 120):
        case = f"{case}_{g.name.rsplit('-', 1)[1]}"
        res = g.run(argv, timeout=timeout, check=False)
        (self.out / "commands").mkdir(parents=True, exist_ok=True)
        (self.out / "commands" / f"{case}.txt").write_text(
            f"# {self.versions}kernel {g.kver}; argv: {jstr(argv)}\nargv: {jstr(argv)}\nrc: {res.rc}\n"
            f"--- stdout\n{res.out}--- stderr\n{res.err}")
        self.index.append(f"- `commands/{case}.txt` ({g.name}): `{jstr(argv)}` -> rc {res.rc}. {how}")
        print(f"{case}: rc={res.rc}\n{res.out[-1500:]}{res.err}", flush=True)
        return res


def wait(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(2)
    raise LabError(f"timed out waiting for {what}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE.parent / "fixtures" / "outputs" / "pacemaker"))
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    link = Link()
    a = Guest("node-a", ["64M"], nics=[link.a], mem="768M")
    b = Guest("node-b", ["64M"], nics=[link.b], mem="768M")
    try:
        boot(a, b)
        p = DlmPair(a, b, [])
        r = Rec(out, a)
        for g in (a, b):
            g.write_file("/etc/corosync/corosync.conf", corosync_conf(link))
            g.write_file("/etc/drbd.d/r0.res", res_file(link))
            g.sh("modprobe drbd && drbdadm create-md --force r0 && drbdadm up r0")
            p.start_corosync(g)
        a.run(["drbdadm", "primary", "--force", "r0"])
        wait(lambda: "ds:UpToDate/UpToDate" in a.run(["cat", "/proc/drbd"]).out, 180, "the first sync")
        a.run(["drbdadm", "secondary", "r0"])
        for g in (a, b):
            p.wait_quorate(g)
        r.cmd(a, "crm_mon_not_running", ["crm_mon", "--output-as=xml"], "pacemakerd not started")
        for g in (a, b):
            g.run(["sh", "-c", "mkdir -p /var/log/pacemaker; setsid -f pacemakerd </dev/null >/var/log/pacemaker/pacemakerd.out 2>&1"])

        def online() -> bool:
            x = a.run(["crm_mon", "--output-as=xml"], check=False).out
            return len(re.findall(r'<node name="node-[ab]"[^>]* online="true"', x)) == 2 and "<current_dc present=\"true\"" in x
        wait(online, 300, "both nodes online in Pacemaker")
        r.cmd(a, "crm_mon_online", ["crm_mon", "--output-as=xml"], "both nodes online, no resource")
        a.run(["crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", "false"])
        a.run(["cibadmin", "--create", "-o", "resources", "--xml-text", DRBD_CLONE])

        def promoted() -> bool:
            x = a.run(["crm_mon", "--output-as=xml"], check=False).out
            return 'role="Promoted"' in x and x.count('id="drbd-r0"') >= 2 and 'role="Unpromoted"' in x
        wait(promoted, 300, "drbd-r0 promoted on one node")
        for g in (a, b):
            r.cmd(g, "crm_mon_drbd_promoted", ["crm_mon", "--output-as=xml"], "r0's clone running")
            r.cmd(g, "proc_drbd_promoted", ["cat", "/proc/drbd"], "what the kernel says")
        r.cmd(a, "cibadmin_query", ["cibadmin", "--query"], "the live CIB")
        (out / "INDEX.md").write_text(
            "# Pacemaker recordings (tests/lab/record_pacemaker_fixtures.py)\n\n"
            "stonith-enabled=false: the lab has no fence device; production needs one.\n\n"
            + "\n".join(r.index) + "\n")
    finally:
        for g in (a, b):
            try:
                print(g.run(["sh", "-c", "tail -40 /var/log/pacemaker/pacemaker.log; "
                             "cat /var/log/pacemaker/pacemakerd.out"], check=False).out[-4000:])
            except Exception as exc:  # noqa: BLE001 - the guest may be gone
                print(f"[{g.name}] no log: {exc}")
            g.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
