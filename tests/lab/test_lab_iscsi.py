"""Seed 004 for real: two guests on a link, a reconciler on each, one shared spec.

Node a exports a disk and an LV (which its own spec creates) through LIO, built by the
reconciler's rtslib applier, with an ACL for b and CHAP from a root-only file. Node b logs
in, adds the disk to its VG and pvmoves an LV onto it while ext4 on it is mounted and
written to; md5 afterwards. Also: b's dry run before anything exists shows the whole chain
in order; a wrong CHAP secret is a clear error naming the session while an unrelated step
still runs; logout is refused while the disk is a PV of b's VG; removing a LUN from a's spec
while b is logged in is refused. Issue 19: the session's timeouts, declared from the start,
are what the kernel shows once logged in; then the CHAP secret is rotated in both files and
the timeouts changed: a's pass holds the new secret (b is logged in, and open-iscsi re-logs
in after a link cut with the credentials its session logged in with), b's rewrites the node
record and the live replacement timeout, with no logout (its disk is a PV) and no secret in
any output; one link cut (a's TPG disabled and enabled) then recovers: a write and md5s.
"""

from __future__ import annotations

import time

import pytest
from harness import Guest, Link, boot
from reconciler_lab import Data, put_spec, reconcile

pytestmark = [pytest.mark.lab, pytest.mark.lab_pair]  # two guests booted by hand

IQN = "iqn.2003-01.org.example.lab-a:export0"
INIT_B = "iqn.2004-10.com.example:lab-b"
GOOD = "userid = labuser\npassword = labsecret1234\n"
ROTATED = "userid = labuser\npassword = rotated-5678\n"
TIMEOUTS = "timeouts = {{ replacement_timeout = {}, noop_out_interval = {}, noop_out_timeout = {} }}"
BAD = "userid = labuser\npassword = wrongsecret99\n"

SPEC = """
[vg.exp]
nodes = ["a"]
pvs = ["/dev/vdb"]
[vg.exp.lv.lv0]
size = "32M"

[iscsi_target.export0]
nodes = ["a"]
iqn = "{iqn}"
portals = ["{portal}"]
acls = ["{init}"]
chap_file = "/etc/reconciler/a.chap"
[iscsi_target.export0.lun.0]
device = "/dev/vda"
{lun0}
[iscsi_target.export0.lun.1]
device = "/dev/exp/lv0"

[iscsi_session.from_a]
nodes = ["b"]
portal = "{portal}"
target = "{iqn}"
chap_file = "/etc/reconciler/b.chap"
luns = [0]
state = "{session}"
{timeouts}

[vg.vg0]
nodes = ["b"]
pvs = ["/dev/vda", "{disk0}"]
[vg.vg0.lv.data]
size = "48M"
placement = ["{disk0}"]
move = "pvmove"
[vg.vg0.lv.other]
size = "8M"
placement = ["/dev/vda"]
"""


def _spec(portal: str, *, session: str = "logged-in", lun0: str = "",
          timeouts: tuple[int, int, int] = (20, 7, 9)) -> str:
    disk0 = f"/dev/disk/by-path/ip-{portal}-iscsi-{IQN}-lun-0"
    return SPEC.format(iqn=IQN, portal=portal, init=INIT_B, session=session, lun0=lun0,
                       disk0=disk0, timeouts=TIMEOUTS.format(*timeouts))


def _put(g: Guest, text: str) -> None:
    put_spec(g, text)


def _steps(run) -> list[str]:
    return [s["key"] for s in run.doc["plan"]["steps"]]


def _applied(run) -> dict[str, dict]:
    return {a["key"]: a for a in run.doc["applied"]}


def test_seed_004_iscsi_export_login_move_and_refusals():
    t0 = time.monotonic()
    link = Link()
    a = Guest("a", ["96M", "64M"], nics=[link.a])
    b = Guest("b", ["128M"], nics=[link.b], udev=True, lvm={"polling_interval": 1})
    boot(a, b)
    try:
        portal = f"{link.a.ip}:3260"
        disk0 = f"/dev/disk/by-path/ip-{portal}-iscsi-{IQN}-lun-0"
        a.sh("mkdir -p /etc/reconciler")  # configfs: the applier mounts it
        a.write_file("/etc/reconciler/a.chap", GOOD, mode="600")
        b.write_file("/etc/iscsi/initiatorname.iscsi", f"InitiatorName={INIT_B}\n")
        b.sh("mkdir -p /etc/reconciler; modprobe iscsi_tcp; modprobe sd_mod; iscsid; "
             "pvcreate -q /dev/vda; vgcreate -q vg0 /dev/vda; "
             "lvcreate -q -y -n data -L 48M vg0 /dev/vda")
        b.write_file("/etc/reconciler/b.chap", BAD, mode="600")
        data = Data(b, "/dev/vg0/data", "/mnt/data").make(files=4, size="2M")
        _put(a, _spec(portal))
        _put(b, _spec(portal))

        # 1. b's dry run before anything exists: the whole chain, in order, in one plan.
        dry = reconcile(b, "--dry-run", node="b")
        assert dry.doc is not None, dry
        keys = _steps(dry)
        chain = ["iscsi-session:from_a:login", f"pv:{disk0}:create", f"vg:vg0:extend:{disk0}",
                 "lv:vg0/data:move:/dev/vda"]
        assert [k for k in keys if k in chain] == chain, dry
        assert dry.doc["plan"]["blocked"] == [], dry

        # 2. a exports (LV created first, then the target through rtslib; no targetcli).
        ra = reconcile(a, node="a")
        assert ra.rc == 0, ra
        ka = _steps(ra)
        assert ka.index("lv:exp/lv0:create") < ka.index("iscsi-target:export0:apply"), ra
        tpg = f"/sys/kernel/config/target/iscsi/{IQN}/tpgt_1"
        assert a.run(["cat", f"{tpg}/enable", f"{tpg}/attrib/authentication",
                      f"{tpg}/acls/{INIT_B}/auth/userid"]).out.split() == ["1", "1", "labuser"]
        assert "secret" not in ra.result.out + ra.result.err  # never in the plan or the log

        # 3. wrong CHAP on b: a clear error naming the session; unrelated steps still run.
        rb = reconcile(b, node="b")
        assert rb.rc != 0, rb
        done = _applied(rb)
        login = done["iscsi-session:from_a:login"]
        assert login["outcome"] == "failed", rb
        assert "iscsi session from_a: the target refused the login" in login["detail"], rb
        assert done[f"pv:{disk0}:create"]["outcome"] == "skipped", rb
        assert done["lv:vg0/other:create"]["outcome"] == "done", rb
        assert "wrongsecret99" not in rb.result.out + rb.result.err

        # 4. right CHAP: b logs in, takes the disk, moves the LV while ext4 is written to.
        b.write_file("/etc/reconciler/b.chap", GOOD, mode="600")
        data.start_writer()
        rw = reconcile(b, "--wait", node="b", timeout=600)
        data.stop_writer()
        assert rw.rc == 0, rw
        pvs = b.run(["lvs", "--noheadings", "-o", "devices", "vg0/data"]).out
        assert "/dev/sd" in pvs and "/dev/vda" not in pvs, pvs
        data.verify()
        assert data.writer_files > 0
        sid = b.run(["ls", "/sys/class/iscsi_session/"]).out.split()[0]
        sess = f"/sys/class/iscsi_session/{sid}"
        conn = f"/sys/class/iscsi_connection/connection{sid[7:]}:0"
        live = [f"{sess}/recovery_tmo", f"{conn}/recv_tmo", f"{conn}/ping_tmo"]
        assert b.run(["cat", *live]).out.split() == ["20", "7", "9"]  # from the record

        # 5. logout refused while the disk is a PV of b's VG.
        _put(b, _spec(portal, session="absent"))
        rl = reconcile(b, node="b")
        blocked = {x["object"]: x["reason"] for x in rl.doc["plan"]["blocked"]}
        why = blocked.get("iscsi session from_a", "")
        assert "logout refused" in why and "an LVM PV of VG vg0" in why, rl
        assert b.run(["cat", "/sys/class/iscsi_session/session1/state"],
                     check=False).out.strip() in ("LOGGED_IN", "")
        assert b.run(["ls", "/sys/class/iscsi_session/"]).out.split(), "session gone"

        # 6. a LUN removed from a's spec while b is logged in: refused.
        _put(a, _spec(portal, lun0='state = "absent"'))
        rr = reconcile(a, node="a")
        blocked = {x["object"]: x["reason"] for x in rr.doc["plan"]["blocked"]}
        why = blocked.get("iscsi target export0", "")
        assert "removing LUN 0 is refused" in why and INIT_B in why, rr
        assert "lun_0" in a.run(["ls", f"{tpg}/lun"]).out
        data.verify()

        # 7. CHAP rotated in both files, timeouts changed. open-iscsi re-logs in after a link
        # cut with the credentials its session logged in with, so a's pass holds the new
        # secret while b is logged in; b's rewrites the node record and the live replacement
        # timeout, with no logout (its disk is a PV), and says what finishes the rotation.
        t7 = time.monotonic()
        a.write_file("/etc/reconciler/a.chap", ROTATED, mode="600")
        b.write_file("/etc/reconciler/b.chap", ROTATED, mode="600")
        _put(a, _spec(portal))
        _put(b, _spec(portal, timeouts=(30, 6, 8)))
        ra = reconcile(a, node="a")
        blocked = {x["object"]: x["reason"] for x in ra.doc["plan"]["blocked"]}
        assert ra.rc == 1 and _steps(ra) == [], ra  # blocked: exit 1, a person must look
        assert INIT_B in blocked.get("iscsi target export0", ""), ra
        assert "the CHAP rotation is held" in blocked["iscsi target export0"], ra
        acl_password = f"{tpg}/acls/{INIT_B}/auth/password"
        assert a.run(["cat", acl_password]).out.strip() == "labsecret1234"
        rb = reconcile(b, node="b")
        assert rb.rc == 1 and _steps(rb) == ["iscsi-session:from_a:update"], rb
        assert _applied(rb)["iscsi-session:from_a:update"]["outcome"] == "done", rb
        blocked = {x["object"]: x["reason"] for x in rb.doc["plan"]["blocked"]}
        why = blocked.get("iscsi session from_a", "")
        assert "logged in with other CHAP credentials" in why and "VG vg0" in why, rb
        record = b.run(["sh", "-c", f"stat -c %a /etc/iscsi/nodes/{IQN}/*/default; "
                                    f"cat /etc/iscsi/nodes/{IQN}/*/default"]).out
        assert record.startswith("600\n"), record
        for line in ("node.session.auth.password = rotated-5678",
                     "node.session.timeo.replacement_timeout = 30",
                     "node.conn[0].timeo.noop_out_interval = 6",
                     "node.conn[0].timeo.noop_out_timeout = 8"):
            assert line in record.splitlines(), record
        # the live replacement timeout at once; the pings at the next login; no logout
        assert b.run(["cat", *live]).out.split() == ["30", "7", "9"]
        assert b.run(["cat", f"{sess}/state"]).out.strip() == "LOGGED_IN"
        for run in (ra, rb):
            assert "rotated-5678" not in run.result.out + run.result.err
            assert "labsecret1234" not in run.result.out + run.result.err
        # one link cut (a's TPG disabled and enabled: LIO drops the connection): b re-logs in
        # with its session's credentials, which LIO still admits; a write and md5s after it
        def cuts() -> int:
            return b.run(["dmesg"]).out.count(f"connection{sid[7:]}:0: detected conn error")
        before, t_cut = cuts(), time.monotonic()
        a.run(["sh", "-c", f"echo 0 > {tpg}/enable; sleep 1; echo 1 > {tpg}/enable"])
        for _ in range(60):
            if cuts() > before and b.run(["cat", f"{sess}/state"]).out.strip() == "LOGGED_IN":
                break
            time.sleep(0.5)
        assert cuts() > before  # the link cut happened
        assert b.run(["cat", f"{sess}/state"]).out.strip() == "LOGGED_IN"
        b.sh("dd if=/dev/urandom of=/mnt/data/after-cut bs=64k count=16 oflag=direct "
             "status=none; md5sum /mnt/data/after-cut > /tmp/after-cut.md5")
        print(f"step 7's link cut, recovery and write: {time.monotonic() - t_cut:.1f}s")
        again = reconcile(b, node="b")
        assert _steps(again) == [], again
        data.verify()
        b.run(["md5sum", "-c", "/tmp/after-cut.md5"])
        print(f"step 7 (CHAP rotation, timeouts, a link cut): {time.monotonic() - t7:.1f}s")
    finally:
        a.close()
        b.close()
    print(f"seed 004 lab test: {time.monotonic() - t0:.1f}s")
