#!/usr/bin/env python3
"""Record what the real tools say when they are asked to take a block device that something
else holds exclusively (the kernel's O_EXCL claim), in one lab guest.

    python3 tests/lab/record_claim_fixtures.py [--out tests/fixtures/outputs/claim]

Five disks, each claimed by one holder: vdb a mounted ext4, vdc a PV with an active LV (a
device-mapper holder), vdd a member of an md array (``mdadm --build``), vde a LIO iblock
backstore (made by the project's own applier), vdf DRBD r0's attached backing disk. On each
one, the claimers the reconciler runs: ``pvcreate``, ``drbdadm create-md`` / ``up`` of a
resource on it, the applier's ``lio-apply`` exporting it, ``mdadm --build`` and ``--add``;
then what an O_EXCL open (``Runner.claimed``'s probe) gets, and what LIO's configfs holds
after a refused backstore. Writes, under --out:

- ``commands/<case>_<holder>.txt``: ``argv:``, ``rc:``, ``--- stdout``, ``--- stderr``.
- ``res/<name>.res``: the DRBD resource files written (r0 up on the DRBD disk, c1..c5 each
  naming one claimed disk).
- ``INDEX.md``: every file in order, with rc.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from harness import Guest, boot  # noqa: E402

ENV = {"LC_ALL": "C", "PYTHONPATH": str(ROOT)}
IQN = "iqn.2003-01.org.linux-iscsi.lab:claim"

PROBE = r'''
import os, sys
for p in sys.argv[1:]:
    try:
        os.close(os.open(p, os.O_RDONLY | os.O_EXCL | os.O_NONBLOCK | os.O_CLOEXEC))
        print(p, "free")
    except OSError as e:
        print(p, os.strerror(e.errno))
'''


def res_config(name: str, host: str, minor: int, disk: str, port: int) -> str:
    return f"""resource {name} {{
  protocol C;
  on {host} {{
    device /dev/drbd{minor} minor {minor};
    disk {disk};
    address 127.0.0.1:{port};
    meta-disk internal;
  }}
  on peer {{
    device /dev/drbd{minor} minor {minor};
    disk {disk};
    address 127.0.0.2:{port};
    meta-disk internal;
  }}
}}
"""


class Recorder:
    def __init__(self, out: Path, g: Guest):
        self.out, self.g = out, g
        self.index: list[str] = []
        (out / "commands").mkdir(parents=True, exist_ok=True)
        self.header = ""

    def cmd(self, case: str, argv: list[str], input: str | None = None, note: str = "") -> None:
        r = self.g.run(argv, timeout=120, check=False, env=ENV, cwd=str(ROOT),
                       **({"input": input} if input is not None else {}))
        name = f"commands/{case}.txt"
        shown = " ".join("PROBE" if a == PROBE else a for a in argv)
        (self.out / name).write_text(f"# {self.header}; argv: {shown}\n"
                                     f"argv: {shown}\nrc: {r.rc}\n--- stdout\n{r.out}"
                                     f"--- stderr\n{r.err}")
        self.index.append(f"- `{name}`: `{shown}`, rc {r.rc}"
                          + (f", stdin {input!r}" if input is not None else "")
                          + (f" ({note})" if note else ""))
        print(f"{name}: rc {r.rc}\n{r.out}{r.err}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE.parent / "fixtures/outputs/claim"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    g = Guest("node-a", ["64M"] * 6)
    boot(g)
    try:
        rec = Recorder(out, g)
        lvm = g.run(["lvm", "version"], check=False, env=ENV).out.strip().splitlines()[:1]
        mdv = g.run(["mdadm", "--version"], check=False, env=ENV).err.strip()
        drbd_v = g.run(["drbdadm", "--version"], check=False, env=ENV).out
        utils = next((x for x in drbd_v.splitlines() if x.startswith("DRBDADM_VERSION=")), "")
        rec.header = (f"{' '.join(' '.join(lvm).split())}; {mdv}; drbd-utils "
                      f"{utils.partition('=')[2]}; kernel {g.kver}")
        mounted, dm, md, lio, drbd, free = (g.disk(i) for i in range(6))
        holders = {"mounted": mounted, "dm": dm, "md": md, "lio": lio, "drbd": drbd}
        g.sh(f"""
            mkfs.ext4 -q {mounted}; mkdir -p /mnt/m; mount {mounted} /mnt/m
            pvcreate -q {dm}; vgcreate -q held {dm}; lvcreate -q -y -L 8M -n lv held
            mdadm --build /dev/md100 --level=1 --raid-devices=2 {md} missing
            modprobe configfs; mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
            modprobe target_core_mod; modprobe target_core_iblock; modprobe iscsi_target_mod
            mkdir -p /etc/target /etc/rtslib-fb-target
            modprobe drbd
        """, env=ENV)
        export = {"iqn": IQN, "name": "held", "portals": ["127.0.0.1:3260"],
                  "luns": {"0": lio}, "acls": [], "chap_file": None}
        g.run(["python3", "-m", "reconciler.adapters.iscsi", "lio-apply", json.dumps(export)],
              env=ENV, cwd=str(ROOT))
        (out / "res").mkdir(exist_ok=True)

        def res(name: str, minor: int, disk: str, port: int) -> None:
            text = res_config(name, g.name, minor, disk, port)
            g.write_file(f"/etc/drbd.d/{name}.res", text)
            (out / "res" / f"{name}.res").write_text(text)
            rec.index.append(f"- `res/{name}.res`: /etc/drbd.d/{name}.res as written")

        res("r0", 0, drbd, 7789)
        g.sh("drbdadm create-md r0 </dev/null; drbdadm up r0; cat /proc/drbd", env=ENV)
        # the mdadm array whose --add is tried on each claimed disk
        g.run(["mdadm", "--build", "/dev/md101", "--level=1", "--raid-devices=2", free,
               "missing"], env=ENV)
        rec.cmd("probe", ["python3", "-c", PROBE, *holders.values(), free],
                note="an O_EXCL|O_NONBLOCK read-only open of each (Runner.claimed's probe)")
        for n, (holder, disk) in enumerate(holders.items(), start=1):
            rec.cmd(f"pvcreate_{holder}", ["pvcreate", disk])
            rec.cmd(f"vgcreate_{holder}", ["vgcreate", f"c{n}vg", disk])
            if holder != "dm":
                rec.cmd(f"vgextend_{holder}", ["vgextend", "held", disk])
            res(f"c{n}", n, disk, 7789 + n)
            rec.cmd(f"drbd_create_md_{holder}", ["drbdadm", "create-md", f"c{n}"], input="")
            rec.cmd(f"drbd_up_{holder}", ["drbdadm", "up", f"c{n}"])
            g.run(["drbdadm", "down", f"c{n}"], check=False, env=ENV)
            want = {"iqn": f"{IQN}{n}", "name": f"c{n}", "portals": [f"127.0.0.1:{3260 + n}"],
                    "luns": {"0": disk}, "acls": [], "chap_file": None}
            rec.cmd(f"lio_apply_{holder}", ["python3", "-m", "reconciler.adapters.iscsi",
                                            "lio-apply", json.dumps(want)])
            rec.cmd(f"mdadm_build_{holder}", ["mdadm", "--build", f"/dev/md{110 + n}",
                                               "--level=1", "--raid-devices=2", disk, "missing"])
            rec.cmd(f"mdadm_add_{holder}", ["mdadm", "/dev/md101", "--add", disk])
        rec.cmd("configfs_after", ["sh", "-c", "ls /sys/kernel/config/target/core/*/; "
                                   "ls /sys/kernel/config/target/iscsi/"],
                note="what the refused backstores left in LIO's configfs")
        rec.cmd("probe_after", ["python3", "-c", PROBE, *holders.values(), free])
        (out / "INDEX.md").write_text(
            "# Claimed devices: the real tools' refusals\n\n"
            f"Recorded by `tests/lab/record_claim_fixtures.py` ({rec.header}). Disks: "
            + ", ".join(f"{d} {h}" for h, d in holders.items()) + f", {free} the free member of "
            "/dev/md101. DRBD resources c1..c5 each name one claimed disk (peer 127.0.0.2). PROBE: "
            "an O_EXCL|O_NONBLOCK read-only open of each path, printing `free` or strerror.\n\n"
            + "\n".join(rec.index) + "\n")
    finally:
        g.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
