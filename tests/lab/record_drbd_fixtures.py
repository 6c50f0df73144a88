#!/usr/bin/env python3
"""Record real DRBD 8.4 (kernel) + drbd-utils 9 outputs on two lab guests joined by a Link.

    python3 tests/lab/record_drbd_fixtures.py [--out tests/fixtures/outputs/drbd]

Groundwork for issue 11: what /proc/drbd says in each state (the reconciler's only
observation on 8.4) and what drbdadm prints for each step and each refusal. One scenario on
one fresh pair (node-a, node-b; disks: vda 64M backing, vdb 64M replacement, vdc 16M holding
ext4 for the refused create-md), in this order: unconfigured, create-md, up, Connected
Secondary/Secondary Inconsistent, refused promotion without --force, first sync from node-a
(throttled by resync-rate so progress can be seen), UpToDate, ext4 + mount on the primary,
refused demotion while mounted, refused promotion while the peer is primary, failover,
disconnect/connect, split brain (both primary while disconnected, writes on both, connect),
resolution with node-b as victim, node-b's backing disk failed with QMP drive_del (Diskless),
replacement disk: create-md + adjust, resync, and adjust after a config change.

Writes, under --out:
- ``commands/NN_<step>_<node>.txt``: ``argv:``, ``rc:``, ``--- stdout``, ``--- stderr``.
- ``proc/NN_<state>_<node>.txt``: the exact content of /proc/drbd.
- ``INDEX.md``: every file in order, with rc and timing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import Guest, Link, Result, boot

RES = "r0"
ENV = {"LC_ALL": "C"}


def config(a: Guest, b: Guest, link: Link, disk_a: str, disk_b: str, rate: str) -> str:
    return f"""resource {RES} {{
  protocol C;
  net {{ connect-int 1; ping-int 1; ping-timeout 20; }}
  disk {{ c-plan-ahead 0; resync-rate {rate}; }}
  on {a.name} {{
    device /dev/drbd0 minor 0;
    disk {disk_a};
    address {link.a.ip}:7789;
    meta-disk internal;
  }}
  on {b.name} {{
    device /dev/drbd0 minor 0;
    disk {disk_b};
    address {link.b.ip}:7789;
    meta-disk internal;
  }}
}}
"""


class Recorder:
    def __init__(self, out: Path, a: Guest, b: Guest):
        self.out, self.a, self.b = out, a, b
        self.n = 0
        self.index: list[str] = []
        (out / "commands").mkdir(parents=True, exist_ok=True)
        (out / "proc").mkdir(parents=True, exist_ok=True)

    def _next(self) -> int:
        self.n += 1
        return self.n

    def cmd(self, g: Guest, step: str, argv: list[str], input: str | None = None, timeout: float = 60) -> Result:
        r = g.run(argv, timeout=timeout, check=False, env=ENV, **({"input": input} if input is not None else {}))
        name = f"commands/{self._next():02d}_{step}_{g.name}.txt"
        (self.out / name).write_text(f"argv: {' '.join(argv)}\nrc: {r.rc}\n--- stdout\n{r.out}--- stderr\n{r.err}")
        self.index.append(f"- `{name}`: `{' '.join(argv)}` on {g.name}, rc {r.rc}, {r.t:.2f} s"
                          + (f", stdin {input!r}" if input is not None else ""))
        print(f"{name}: rc {r.rc}", flush=True)
        return r

    def proc(self, g: Guest, state: str) -> str:
        r = g.run(["cat", "/proc/drbd"], check=False)
        name = f"proc/{self._next():02d}_{state}_{g.name}.txt"
        (self.out / name).write_text(r.out if r.rc == 0 else f"# cat /proc/drbd rc {r.rc}: {r.err}")
        self.index.append(f"- `{name}`: /proc/drbd on {g.name} ({state})")
        print(f"{name}\n{r.out}", flush=True)
        return r.out

    def wait(self, g: Guest, needle: str, timeout: float = 60) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in g.run(["cat", "/proc/drbd"], check=False).out:
                return True
            time.sleep(0.3)
        print(f"!! {g.name}: {needle!r} not seen in {timeout}s", flush=True)
        return False

    def note(self, text: str) -> None:
        self.index.append(f"- {text}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE.parent / "fixtures/outputs/drbd"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    link = Link()
    a = Guest("node-a", ["64M", "64M", "16M"], nics=[link.a])
    b = Guest("node-b", ["64M", "64M", "16M"], nics=[link.b])
    t0 = time.monotonic()
    boot(a, b)
    try:
        rec = Recorder(out, a, b)
        kver = a.kver
        ver = a.run(["drbdadm", "--version"], check=False, env=ENV)
        rec.note(f"kernel {kver}; `drbdadm --version` rc {ver.rc}: {' '.join(ver.out.split())[:300]}")
        for g in (a, b):
            rec.proc(g, "before_modprobe")
            g.run(["modprobe", "drbd"])
            rec.proc(g, "unconfigured")
        da, db = a.disk(0), b.disk(0)
        for g in (a, b):
            g.write_file(f"/etc/drbd.d/{RES}.res", config(a, b, link, da, db, "4M"))
        (out / "r0.res").write_text(config(a, b, link, "/dev/vda", "/dev/vda", "4M"))
        rec.note("`r0.res`: the resource file used (both nodes; resync-rate 4M so the sync is seen)")
        rec.cmd(a, "dump", ["drbdadm", "dump", RES])
        rec.cmd(a, "sh_dev", ["drbdadm", "sh-dev", RES])
        rec.cmd(a, "sh_md_dev", ["drbdadm", "sh-md-dev", RES])
        rec.cmd(a, "role_unconfigured", ["drbdadm", "role", RES])
        rec.cmd(a, "dstate_unconfigured", ["drbdadm", "dstate", RES])
        # refused create-md on a used disk: a second resource on vdc holding ext4
        a.run(["mkfs.ext4", "-q", a.disk(2)], env=ENV)
        a.write_file("/etc/drbd.d/used.res", config(a, b, link, a.disk(2), b.disk(2), "4M")
                     .replace(f"resource {RES}", "resource used").replace("drbd0 minor 0", "drbd9 minor 9")
                     .replace(":7789", ":7799"))
        rec.cmd(a, "create_md_used_no", ["drbdadm", "create-md", "used"], input="no\n")
        rec.cmd(a, "create_md_used_noinput", ["drbdadm", "create-md", "used"], input="")
        rec.cmd(a, "wipefs_used", ["wipefs", "--no-act", "--json", a.disk(2)])
        rec.cmd(a, "blkid_used", ["blkid", "-p", "-o", "export", a.disk(2)])
        rec.cmd(a, "wipefs_blank", ["wipefs", "--no-act", "--json", da])
        a.run(["rm", "/etc/drbd.d/used.res"])
        # create-md
        for g in (a, b):
            rec.cmd(g, "create_md", ["drbdadm", "--", "--force", "create-md", RES])
        rec.cmd(a, "wipefs_after_create_md", ["wipefs", "--no-act", "--json", da])
        rec.cmd(a, "create_md_again_no", ["drbdadm", "create-md", RES], input="no\n")
        rec.cmd(a, "dump_md", ["drbdadm", "dump-md", RES])
        rec.cmd(a, "up", ["drbdadm", "up", RES])
        rec.proc(a, "up_alone_wfconnection")
        rec.cmd(a, "cstate_wfc", ["drbdadm", "cstate", RES])
        rec.cmd(b, "up", ["drbdadm", "up", RES])
        rec.wait(a, "cs:Connected")
        for g in (a, b):
            rec.proc(g, "connected_secondary_inconsistent")
        rec.cmd(a, "up_again", ["drbdadm", "up", RES])
        rec.cmd(b, "primary_inconsistent_refused", ["drbdadm", "primary", RES])
        rec.cmd(a, "primary_force", ["drbdadm", "primary", "--force", RES])
        time.sleep(1.5)
        for i in range(2):
            rec.proc(a, f"syncsource_{i}")
            rec.proc(b, f"synctarget_{i}")
            time.sleep(2)
        rec.cmd(b, "primary_during_sync_refused", ["drbdadm", "primary", RES])
        rec.cmd(a, "adjust_rate", ["drbdadm", "-d", "adjust", RES])
        for g in (a, b):
            g.write_file(f"/etc/drbd.d/{RES}.res", config(a, b, link, da, db, "400M"))
        rec.cmd(a, "adjust_dry_run_rate", ["drbdadm", "-d", "adjust", RES])
        for g in (a, b):
            rec.cmd(g, "adjust", ["drbdadm", "adjust", RES])
        rec.wait(b, "ds:UpToDate/UpToDate")
        for g in (a, b):
            rec.proc(g, "uptodate_primary_secondary")
        rec.cmd(a, "adjust_noop", ["drbdadm", "adjust", RES])
        rec.cmd(a, "adjust_noop_dry", ["drbdadm", "-d", "adjust", RES])
        # ext4 + mount on the primary
        a.run(["mkfs.ext4", "-q", "/dev/drbd0"], env=ENV)
        a.sh("mkdir -p /mnt/d && mount /dev/drbd0 /mnt/d && dd if=/dev/urandom of=/mnt/d/f1 bs=1M count=4 status=none && sync")
        rec.cmd(a, "holders_mounted", ["ls", "/sys/block/drbd0/holders"])
        rec.cmd(a, "secondary_mounted_refused", ["drbdadm", "secondary", RES])
        rec.cmd(b, "primary_peer_primary_refused", ["drbdadm", "primary", RES])
        rec.proc(a, "primary_mounted")
        a.run(["umount", "/mnt/d"])
        rec.cmd(a, "secondary", ["drbdadm", "secondary", RES])
        rec.proc(a, "secondary_secondary_uptodate")
        rec.cmd(b, "primary", ["drbdadm", "primary", RES])
        rec.proc(b, "failover_b_primary")
        rec.proc(a, "failover_a_secondary")
        rec.cmd(a, "role", ["drbdadm", "role", RES])
        rec.cmd(a, "cstate", ["drbdadm", "cstate", RES])
        rec.cmd(a, "dstate", ["drbdadm", "dstate", RES])
        # disconnect / connect
        rec.cmd(a, "disconnect", ["drbdadm", "disconnect", RES])
        rec.proc(a, "standalone_after_disconnect")
        rec.wait(b, "cs:WFConnection", 10)
        rec.proc(b, "wfconnection_peer_disconnected")
        rec.cmd(a, "connect", ["drbdadm", "connect", RES])
        rec.wait(a, "cs:Connected")
        rec.proc(a, "reconnected")
        rec.cmd(a, "connect_again", ["drbdadm", "connect", RES])
        # split brain: cut the link inside a guest, both primary, write on both, restore
        b.sh("mkdir -p /mnt/d && mount /dev/drbd0 /mnt/d && dd if=/dev/urandom of=/mnt/d/before bs=1M count=1 status=none && umount /mnt/d")
        dev = a.run("ip -o link | awk -F': ' '$2!=\"lo\"{print $2; exit}'").out.strip()
        rec.cmd(a, "link_down", ["ip", "link", "set", dev, "down"])
        rec.wait(a, "cs:WFConnection", 40)
        rec.wait(b, "cs:WFConnection", 40)
        rec.proc(a, "link_cut")
        rec.proc(b, "link_cut")
        rec.cmd(a, "primary_while_cut", ["drbdadm", "primary", RES])
        a.sh("mount /dev/drbd0 /mnt/d && dd if=/dev/urandom of=/mnt/d/on_a bs=1M count=1 status=none && umount /mnt/d")
        b.sh("mount /dev/drbd0 /mnt/d && dd if=/dev/urandom of=/mnt/d/on_b bs=1M count=1 status=none && umount /mnt/d")
        rec.proc(a, "both_primary_cut")
        rec.proc(b, "both_primary_cut")
        rec.cmd(a, "link_up", ["ip", "link", "set", dev, "up"])
        time.sleep(6)
        rec.proc(a, "split_brain")
        rec.proc(b, "split_brain")
        rec.cmd(a, "dmesg_split_brain", ["sh", "-c", "dmesg | grep -i drbd | tail -n 40"])
        rec.cmd(b, "dmesg_split_brain", ["sh", "-c", "dmesg | grep -i drbd | tail -n 40"])
        rec.cmd(a, "cstate_split_brain", ["drbdadm", "cstate", RES])
        rec.cmd(b, "cstate_split_brain", ["drbdadm", "cstate", RES])
        # resolution: node-b is the victim
        rec.cmd(b, "victim_secondary", ["drbdadm", "secondary", RES])
        rec.cmd(b, "victim_disconnect", ["drbdadm", "disconnect", RES])
        rec.cmd(b, "victim_connect_discard", ["drbdadm", "--", "--discard-my-data", "connect", RES])
        rec.proc(b, "victim_after_connect")
        rec.cmd(a, "survivor_disconnect", ["drbdadm", "disconnect", RES])
        rec.cmd(a, "survivor_connect", ["drbdadm", "connect", RES])
        rec.wait(b, "ds:UpToDate/UpToDate", 60)
        rec.proc(a, "resolved")
        rec.proc(b, "resolved")
        rec.cmd(a, "dmesg_resolved", ["sh", "-c", "dmesg | grep -i drbd | tail -n 30"])
        # lost disk on node-b (secondary): fail vda, write on the primary
        b.hmp("drive_del d0")
        a.sh("mount /dev/drbd0 /mnt/d && dd if=/dev/urandom of=/mnt/d/after_fail bs=1M count=2 status=none conv=fsync && umount /mnt/d")
        rec.wait(b, "ds:Diskless", 30)
        rec.proc(b, "diskless")
        rec.proc(a, "peer_diskless")
        rec.cmd(b, "dstate_diskless", ["drbdadm", "dstate", RES])
        rec.cmd(b, "dmesg_diskless", ["sh", "-c", "dmesg | grep -i drbd | tail -n 20"])
        # replacement disk vdb on node-b
        for g in (a, b):
            g.write_file(f"/etc/drbd.d/{RES}.res", config(a, b, link, da, b.disk(1), "400M"))
        rec.cmd(b, "create_md_replacement", ["drbdadm", "--", "--force", "create-md", RES])
        rec.cmd(b, "adjust_dry_replacement", ["drbdadm", "-d", "adjust", RES])
        rec.cmd(b, "adjust_replacement", ["drbdadm", "adjust", RES])
        time.sleep(0.5)
        rec.proc(b, "replacement_attached")
        rec.wait(b, "ds:UpToDate/UpToDate", 60)
        rec.proc(b, "replacement_uptodate")
        rec.proc(a, "replacement_uptodate")
        rec.cmd(a, "adjust_peer_side_noop", ["drbdadm", "adjust", RES])
        rec.cmd(a, "down_primary", ["drbdadm", "down", RES])
        rec.cmd(b, "down", ["drbdadm", "down", RES])
        rec.proc(b, "after_down")
        rec.note(f"total {time.monotonic() - t0:.1f} s")
    finally:
        a.close()
        b.close()
    hdr = ("# DRBD recordings (issue 11)\n\nProduced by `tests/lab/record_drbd_fixtures.py` on two lab guests "
           "(node-a, node-b) joined by a harness Link; LC_ALL=C. Files in the order they were made:\n\n")
    (out / "INDEX.md").write_text(hdr + "\n".join(rec.index) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
