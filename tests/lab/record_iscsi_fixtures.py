#!/usr/bin/env python3
"""Record real LIO (configfs) and open-iscsi (iscsiadm, sysfs) outputs in two lab guests.

    python3 tests/lab/record_iscsi_fixtures.py [--out tests/fixtures/outputs/iscsi]

Two guests on a Link: ``a`` exports its disk d0 and an LV through LIO, built with rtslib-fb
(no targetcli), with an ACL for ``b``'s initiator name and CHAP; ``b`` (udev on, for the
``/dev/disk/by-path`` names) discovers, logs in, logs out, and meets each error the
reconciler classifies. Writes, under --out:

- ``tree/<state>.json``: what the kernel shows under configfs (node a) or the iSCSI sysfs
  classes (node b) in that state: ``{"files": {path: text}, "dirs": {path: [entries]}, "links": {path: path}}`` (a directory
  reached again through a symlink is recorded once; ``links`` maps the other path to it),
  read as the reconciler reads it (through symlinks, no process), so a test can replay it as
  a runner's ``read``.
- ``commands/<case>.txt``: ``argv:``, ``rc:``, ``--- stdout``, ``--- stderr`` verbatim.
- ``INDEX.md``: what each file is and the order it was made in.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from harness import Guest, Link, Result, boot  # noqa: E402

TARGET = "iqn.2003-01.org.linux-iscsi.lab-a:export0"
INITIATOR_B = "iqn.2004-10.com.example:lab-b"
CHAP_USER = "labuser"
CHAP_SECRET = "labsecret1234"

# Walks the given roots the way observation reads them (following symlinks, each real
# directory once), and prints {"files": ..., "dirs": ...} as JSON.
DUMP = r'''
import json, os, sys
skip = {"subsystem", "driver", "power", "firmware_node", "bdi", "module", "holders",
        "slaves", "trace", "queue", "integrity", "mq", "bsg", "scsi_generic", "scsi_disk",
        "scsi_device", "uevent"}
files, dirs, seen, links = {}, {}, {}, {}
def walk(p, depth):
    rp = os.path.realpath(p)
    if rp in seen:
        links[p] = seen[rp]  # the same directory, reached through a symlink
        return
    if depth > 9:
        return
    seen[rp] = p
    try:
        names = sorted(os.listdir(p))
    except OSError as e:
        dirs[p] = ["!" + e.strerror]
        return
    dirs[p] = names
    for n in names:
        q = os.path.join(p, n)
        if n in skip:
            continue
        if os.path.isdir(q):
            walk(q, depth + 1)
        else:
            try:
                with open(q) as f:
                    files[q] = f.read(8192)
            except OSError as e:
                files[q] = "!" + (e.strerror or str(e))
            except ValueError:
                files[q] = "!binary"
for root in sys.argv[1:]:
    if os.path.exists(root):
        walk(root, 0)
print(json.dumps({"files": files, "dirs": dirs, "links": links}, indent=0, sort_keys=True))
'''

BUILD = r'''
import sys
from rtslib_fb import (RTSRoot, BlockStorageObject, FabricModule, Target, TPG, NetworkPortal,
                       LUN, NodeACL, MappedLUN)
iqn, initiator, user, secret, ip = sys.argv[1:6]
devs = sys.argv[6:]
RTSRoot()
t = Target(FabricModule("iscsi"), iqn, "create")
tpg = TPG(t, 1, "create")
NetworkPortal(tpg, ip, 3260, "create")
luns = []
for i, d in enumerate(devs):
    so = BlockStorageObject(f"export0_{i}", dev=d)
    luns.append(LUN(tpg, i, so))
acl = NodeACL(tpg, initiator, "create")
acl.chap_userid = user
acl.chap_password = secret
for lun in luns:
    MappedLUN(acl, lun.lun, lun)
tpg.set_attribute("authentication", "1")
tpg.set_attribute("generate_node_acls", "0")
tpg.enable = True
print("ok")
'''


class Recorder:
    def __init__(self, out: Path):
        self.out = out
        self.index: list[str] = []
        (out / "tree").mkdir(parents=True, exist_ok=True)
        (out / "commands").mkdir(parents=True, exist_ok=True)

    def cmd(self, g: Guest, case: str, argv: list[str], note: str, timeout: float = 120) -> Result:
        r = g.run(argv, timeout=timeout, check=False)
        text = (f"# node {g.name}; argv: {' '.join(argv)}\nargv: {' '.join(argv)}\nrc: {r.rc}\n"
                f"--- stdout\n{r.out}--- stderr\n{r.err}")
        (self.out / "commands" / f"{case}.txt").write_text(text)
        self.index.append(f"| `commands/{case}.txt` | {g.name} | rc {r.rc} | {note} |")
        print(f"[{g.name}] {case}: rc {r.rc} {r.err.strip()[:200]}", flush=True)
        return r

    def tree(self, g: Guest, state: str, roots: list[str], note: str) -> dict:
        r = g.run(["python3", "-c", DUMP, *roots], timeout=120)
        data = json.loads(r.out)
        (self.out / "tree" / f"{state}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        self.index.append(f"| `tree/{state}.json` | {g.name} | {len(data['files'])} files | {note} |")
        return data


CONFIGFS = ["/sys/kernel/config/target"]
SYSFS = ["/sys/class/iscsi_session", "/sys/class/iscsi_connection", "/sys/class/iscsi_host"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE.parent / "fixtures" / "outputs" / "iscsi"))
    args = ap.parse_args()
    out = Path(args.out)
    rec = Recorder(out)
    link = Link()
    a = Guest("a", ["64M", "96M"], nics=[link.a])
    b = Guest("b", ["64M"], nics=[link.b], udev=True)
    boot(a, b)
    try:
        ip = link.a.ip
        bad_ip = ip.rsplit(".", 1)[0] + ".9"
        a.sh("modprobe configfs; mountpoint -q /sys/kernel/config || mount -t configfs none "
             "/sys/kernel/config; modprobe target_core_mod; modprobe target_core_iblock; "
             "modprobe iscsi_target_mod; mkdir -p /etc/target; pvcreate -q /dev/vdb; vgcreate -q exp /dev/vdb; "
             "lvcreate -q -an -L 32M -n lv0 exp -y || lvcreate -q -L 32M -n lv0 exp -y; "
             "lvchange -ay exp/lv0")
        rec.tree(a, "a_empty", CONFIGFS, "a: LIO modules loaded, configfs mounted, nothing built")
        r = a.run(["python3", "-c", BUILD, TARGET, INITIATOR_B, CHAP_USER, CHAP_SECRET, ip,
                   "/dev/vda", "/dev/exp/lv0"], check=False)
        print("build:", r.rc, r.out, r.err[-2000:], flush=True)
        rec.tree(a, "a_exported", CONFIGFS, f"a: target {TARGET}, tpg 1 enabled, portal {ip}:3260, "
                 f"LUN 0 = iblock over /dev/vda, LUN 1 = iblock over /dev/exp/lv0, ACL for "
                 f"{INITIATOR_B} with CHAP ({CHAP_USER}/{CHAP_SECRET}), both LUNs mapped")

        b.write_file("/etc/iscsi/initiatorname.iscsi", f"InitiatorName={INITIATOR_B}\n")
        b.sh("modprobe iscsi_tcp; modprobe sd_mod; iscsid")
        rec.tree(b, "b_none", SYSFS, "b: iscsid running, no session")
        rec.cmd(b, "discovery", ["iscsiadm", "-m", "discovery", "-t", "sendtargets", "-p", ip],
                "sendtargets discovery against a (no discovery auth)")
        rec.cmd(b, "discovery_unreachable", ["iscsiadm", "-m", "discovery", "-t", "sendtargets",
                                             "-p", bad_ip], "discovery to an address nobody answers",
                timeout=180)
        node = ["iscsiadm", "-m", "node", "-T", TARGET, "-p", ip]
        for k, v in (("node.session.auth.authmethod", "CHAP"),
                     ("node.session.auth.username", CHAP_USER),
                     ("node.session.auth.password", "wrongsecret99")):
            b.run([*node, "-o", "update", "-n", k, "-v", v])
        rec.cmd(b, "login_wrong_chap", [*node, "--login"], "CHAP secret wrong")
        b.run([*node, "-o", "update", "-n", "node.session.auth.password", "-v", CHAP_SECRET])
        rec.cmd(b, "login", [*node, "--login"], "CHAP right: logged in")
        b.run(["udevadm", "settle"], check=False)
        rec.cmd(b, "login_again", [*node, "--login"], "login while already logged in")
        rec.cmd(b, "session_list", ["iscsiadm", "-m", "session"], "one session")
        rec.cmd(b, "by_path", ["ls", "-l", "/dev/disk/by-path/"], "udev's by-path names of the disks")
        rec.tree(b, "b_logged_in", SYSFS, "b: one session to a, LUN 0 and LUN 1 as sd disks")
        rec.tree(b, "b_logged_in_blocks", ["/sys/block"], "b: /sys/block with the session's disks")
        rec.tree(a, "a_with_session", CONFIGFS, "a: as a_exported, b logged in")

        # After discovery, as the reconciler does it: a target the portal does not offer has
        # no node record. (A record forced with ``-o new`` makes iscsiadm retry for ever:
        # LIO answers "target not found" and iscsiadm retries it.)
        bogus = ["iscsiadm", "-m", "node", "-T", TARGET + "-nope", "-p", ip]
        rec.cmd(b, "login_no_such_target", [*bogus, "--login"],
                "a target name the portal does not offer (after discovery: no node record)")
        unreach = ["iscsiadm", "-m", "node", "-T", TARGET, "-p", bad_ip]
        b.run([*unreach, "-o", "new"])
        for k, v in (("node.session.initial_login_retry_max", "1"),
                     ("node.conn[0].timeo.login_timeout", "3")):
            b.run([*unreach, "-o", "update", "-n", k, "-v", v])
        rec.cmd(b, "login_unreachable", [*unreach, "--login"], "portal address nobody answers",
                timeout=180)
        rec.cmd(b, "logout", [*node, "--logout"], "logout of the session")
        rec.cmd(b, "logout_again", [*node, "--logout"], "logout with no session")
        rec.cmd(b, "session_list_none", ["iscsiadm", "-m", "session"], "no session")
        rec.tree(b, "b_logged_out", SYSFS, "b: after logout")

        a.run(["python3", "-c", "from rtslib_fb import RTSRoot\n"
               "for t in RTSRoot().targets:\n for tpg in t.tpgs:\n  for acl in tpg.node_acls:\n"
               "   acl.delete()\nprint('ok')"])
        rec.tree(a, "a_no_acl", CONFIGFS, "a: as a_exported, ACL removed")
        rec.cmd(b, "login_not_in_acl", [*node, "--login"], "a has no ACL for b's initiator name")
    finally:
        a.close()
        b.close()
    (out / "INDEX.md").write_text(
        "# iSCSI recordings (LIO via rtslib-fb on node a, open-iscsi on node b)\n\n"
        "Made by `tests/lab/record_iscsi_fixtures.py` in two lab guests on a Link, in the "
        "order below (each state follows the previous one).\n\n"
        "| file | node | result | what |\n|---|---|---|---|\n" + "\n".join(rec.index) + "\n")


if __name__ == "__main__":
    main()
