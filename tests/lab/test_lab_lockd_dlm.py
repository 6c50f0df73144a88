"""Issue 20 in the lab: lvmlockd with DLM under corosync, two reconcilers, one spec.

node-a and node-b (tests/lab/dlm.py: corosync two-node over the lab link, dlm_controld,
lvmlockd -g dlm, shared disks /dev/vda 256M and /dev/vdb 128M) each run ``python3 -m
reconciler`` as a daemon from the same spec, a VG declared ``lock_type = "dlm"``. The
scenarios the sanlock test runs (test_lab_lockd.py), on DLM:

1. node-a (``create_on``) creates the VG with ``vgcreate --shared --locktype dlm`` and the
   LV; node-b starts its lockspace (DLM lists ``lvm_vgs`` with both nodes as members); the
   LV is active exclusively on node-a.
2. ext4 on it, a writer on node-a; the spec moves the LV to node-b: node-a refuses while it
   is mounted, node-b waits on node-a's lock; once unmounted it moves; md5s on node-b.
3. The spec grows it (node-b, the holder, runs lvextend), then adds /dev/vdb and places the
   LV there while node-b writes: node-a runs vgextend, node-b the pvmove; md5s after.

``test_gfs2_on_dual_primary_drbd_over_dlm`` (``-k gfs2``, seed 003 §6), on the same guests
(each with a 64M disk of its own, /dev/vdc): two daemons from a spec declaring DRBD r0 with
both nodes primary and ``allow_two_primaries``; the operator makes GFS2 over DLM and mounts
it on both; files written on each node checked (md5) from the other; a demotion refused
while mounted; the link cut (both stay primary: reported, nothing run), DLM without fencing
lets both go on writing; node-b demoted by hand is not promoted without node-a. The link
is not brought back (see the test's last comment).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from dlm import dlm_nodes  # noqa: F401  (fixture)
from harness import LabError
from reconciler_lab import _WRITER as WRITER
from reconciler_lab import Data, wait_for

pytestmark = pytest.mark.lab

VG = "vgs"
SPEC_DIR = "/tmp/spec"
LOG = "/tmp/reconciler.log"
PIDFILE = "/tmp/reconciler.pid"

SPEC = """\
[vg.vgs]
nodes = ["node-a", "node-b"]
scope = "shared"
lock_type = "dlm"
create_on = "node-a"
pvs = [{pvs}]

[vg.vgs.lv.data]
size = "{size}"
activation = {{ {activation} }}
{placement}
"""


def put_spec(p, size: str, activation: str, pvs: str = '"/dev/vda"', placement: str = "") -> None:
    text = SPEC.format(pvs=pvs, size=size, activation=activation, placement=placement)
    for g in p.nodes:  # the same spec on both; replaced atomically
        g.write_file(f"{SPEC_DIR}.new", text)
        g.run(["sh", "-c", f"mkdir -p {SPEC_DIR} && mv {SPEC_DIR}.new {SPEC_DIR}/spec.toml"])


def start_daemon(g):
    argv = (f"echo $$ > {PIDFILE}; cd / && exec python3 -m reconciler --spec {SPEC_DIR} "
            f"--node {g.name} --resync-interval 5 --status-dir /tmp/rec-status "
            f"--log-level DEBUG 2> {LOG}")
    return g.spawn(argv, timeout=1800, env={"NO_COLOR": "1"})


def lv_mode(g, lv: str = "data") -> str:
    """'ex', 'sh' or 'off' on this node, from lvmlockd."""
    uuid = g.run(["lvs", "--noheadings", "-o", "lv_uuid", f"{VG}/{lv}"], check=False).out.strip()
    if not uuid:
        return "missing"
    info = g.run(["lvmlockctl", "--info"], check=False).out
    m = re.search(rf"^LK LV (ex|sh) {re.escape(uuid)}$", info, re.M)
    return m.group(1) if m else "off"


def log(g) -> str:
    return g.run(["cat", LOG], check=False).out


def test_dlm_two_daemons_create_move_grow_and_pvmove_a_shared_lv(dlm_nodes):
    p = dlm_nodes
    a, b = p
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    put_spec(p, "64M", '"node-a" = "exclusive", "*" = "inactive"')
    daemons = [start_daemon(a), start_daemon(b)]
    try:
        # 1. a creates the VG (DLM) and the LV; b starts its lockspace.
        wait_for(lambda: lv_mode(a) == "ex", 300, "data exclusive on node-a", interval=2)
        wait_for(lambda: f"LS dlm lvm_{VG}" in b.run(["lvmlockctl", "--info"]).out, 300,
                 "node-b's DLM lockspace", interval=2)
        # the lockspace shows while vgchange --lock-start still runs; its log line follows
        wait_for(lambda: "ran vgchange --lock-start vgs" in log(b), 60, "node-b's lock-start logged")
        timings["created+started"] = time.monotonic() - t0
        assert "ran vgcreate --shared --locktype dlm" in log(a), log(a)[-3000:]
        assert "ran vgcreate" not in log(b) and "ran lvcreate" not in log(b)
        assert "ran vgchange --lock-start vgs" in log(b)
        for g in (a, b):  # each pass read corosync's quorum before touching the DLM VG
            assert "ran corosync-quorumtool -s -> rc 0" in log(g), log(g)[-3000:]
        ls = b.run(["dlm_tool", "ls"]).out
        assert re.search(rf"name\s+lvm_{VG}\n(.*\n)*?members\s+1 2\s*\n", ls), ls
        assert lv_mode(b) == "off"

        # 2. ext4 + writer on a; the spec moves the LV to b.
        data = Data(a, f"/dev/{VG}/data", "/mnt/data").make(files=4, size="1M")
        data.start_writer()
        time.sleep(3)
        put_spec(p, "64M", '"node-b" = "exclusive", "*" = "inactive"')
        t1 = time.monotonic()
        wait_for(lambda: "LV locked by other host" in log(b), 120, "node-b waiting on node-a's lock")
        wait_for(lambda: "is open (mounted or in use) on node-a" in log(a), 120,
                 "node-a refusing to deactivate the mounted LV")
        assert lv_mode(a) == "ex" and lv_mode(b) == "off"
        assert not re.search(r"outcome.*failed|step failed", log(b)), log(b)[-3000:]
        data.stop_writer()
        assert data.writer_files > 0
        manifests = {m: a.run(["cat", f"{data.state_dir}/{m}"]).out for m in ("before.md5", "writer.md5")}
        a.run(["umount", "/mnt/data"])
        wait_for(lambda: lv_mode(b) == "ex", 240, "data exclusive on node-b", interval=2)
        timings["move a->b after unmount"] = time.monotonic() - t1
        assert lv_mode(a) == "off"
        for m, text in manifests.items():
            b.write_file(f"/tmp/{m}", text)
        b.sh(f"""
            e2fsck -fn /dev/{VG}/data
            mkdir -p /mnt/data && mount /dev/{VG}/data /mnt/data
            cd /mnt/data && md5sum --quiet -c /tmp/before.md5 && md5sum --quiet -c /tmp/writer.md5
        """)

        # 3. grow it: b holds it, so b resizes (mounted), a does not.
        put_spec(p, "96M", '"node-b" = "exclusive", "*" = "inactive"')
        wait_for(lambda: b.run(["lvs", "--noheadings", "--units", "b", "--nosuffix", "-o",
                                "lv_size", f"{VG}/data"]).out.strip() == str(96 << 20), 240,
                 "data grown to 96M by node-b", interval=2)
        assert "ran lvextend" in log(b) and "ran lvextend" not in log(a)

        # 3b. pvmove while mounted and written to: node-a (creator) adds /dev/vdb, node-b
        # (the exclusive holder) moves the extents; md5 afterwards.
        moving = Data(b, f"/dev/{VG}/data", "/mnt/data")
        b.write_file("/tmp/lab-writer.sh", WRITER, mode="755")
        b.sh(f"mkdir -p {moving.state_dir} && rm -f {moving.state_dir}/* && "
             f"cd /mnt/data && mkdir froma && mv w* froma/ && "
             f"md5sum before* froma/* > {moving.state_dir}/before.md5")
        moving.start_writer()
        t2 = time.monotonic()
        put_spec(p, "96M", '"node-b" = "exclusive", "*" = "inactive"',
                 pvs='"/dev/vda", "/dev/vdb"', placement='placement = ["/dev/vdb"]')
        wait_for(lambda: b.run(["lvs", "--noheadings", "-o", "devices", f"{VG}/data"]
                               ).out.strip() == "/dev/vdb(0)", 300, "data moved onto /dev/vdb", interval=2)
        timings["vgextend on a + pvmove on b"] = time.monotonic() - t2
        moving.stop_writer()
        assert moving.writer_files > 0
        assert "ran vgextend" in log(a) and "ran pvmove" in log(b) and "ran pvmove" not in log(a)
        moving.verify()
        b.run(["umount", "/mnt/data"])
        print(f"\ndlm daemons: boot {p.boot_s:.1f}s, stack {p.start_s:.1f}s; "
              + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
              + f"; whole body {time.monotonic() - t0:.1f}s")
    finally:
        for g in (a, b):
            g.run(f"kill $(cat {PIDFILE}) 2>/dev/null; true", check=False)
        for g, fut in zip((a, b), daemons):
            res = g.wait(fut, timeout=120)
            print(f"[{g.name}] daemon rc {res.rc}; log tail:\n{log(g)[-2500:]}")


# -- dual-primary DRBD with GFS2 over DLM (seed 003 §6) ---------------------------------------------

GFS2_SPEC_DIR = "/tmp/spec-gfs2"
GFS2_SPEC = """\
[drbd.r0]
protocol = "C"
initial_sync_from = "node-a"
allow_two_primaries = true
resync_rate = "400M"
[drbd.r0.net]          # a short connect-int (as test_lab_drbd.py); pings patient enough for
connect_int = 1        # a loaded TCG host (lab: with ping_int 1, ping_timeout 2 a PingAck came
ping_int = 3           # late while GFS2 wrote, both primaries wrote apart for 3 s: a split
ping_timeout = 5       # brain, DRBD 8.4 without fencing)
[drbd.r0.disk]
c_plan_ahead = 0
[drbd.r0.nodes.node-a]
disk = "/dev/vdc"
address = "{ip_a}"
role = "primary"
[drbd.r0.nodes.node-b]
disk = "/dev/vdc"
address = "{ip_b}"
role = "{role_b}"
"""
MNT = "/mnt/g"


def gfs2_spec(p, role_b: str = "primary") -> None:
    text = GFS2_SPEC.format(ip_a=p.link.a.ip, ip_b=p.link.b.ip, role_b=role_b)
    for g in p.nodes:
        g.write_file(f"{GFS2_SPEC_DIR}.new", text)
        g.run(["sh", "-c", f"mkdir -p {GFS2_SPEC_DIR} && mv {GFS2_SPEC_DIR}.new {GFS2_SPEC_DIR}/spec.toml"])


GFS2_LOG = "/tmp/reconciler-gfs2.log"
GFS2_PID = "/tmp/reconciler-gfs2.pid"
GFS2_STATUS = "/tmp/rec-status-gfs2"


def gfs2_daemon(g):
    argv = (f"echo $$ > {GFS2_PID}; cd / && exec python3 -m reconciler --spec {GFS2_SPEC_DIR} "
            f"--node {g.name} --resync-interval 2 --status-dir {GFS2_STATUS} "
            f"--log-level DEBUG 2> {GFS2_LOG}")
    return g.spawn(argv, timeout=1800, env={"NO_COLOR": "1"})


def status(g) -> dict:
    text = g.run(["cat", f"{GFS2_STATUS}/status.json"], check=False).out
    try:
        return json.loads(text)
    except ValueError:
        return {}


def passes_done(g) -> int:
    return (status(g).get("last_pass") or {}).get("number", 0)


def fresh(g, pred, timeout: float, what: str) -> dict:
    """The status of a pass started after now that satisfies ``pred``."""
    after = passes_done(g) + 1

    def ok():
        st = status(g)
        return st if (st.get("last_pass") or {}).get("number", 0) > after and pred(st) else None
    return wait_for(ok, timeout, f"[{g.name}] {what}", interval=1)


def gfs2_log(g) -> str:
    return g.run(["cat", GFS2_LOG], check=False).out


def drbd_line(g) -> str:
    m = re.search(r"^ 0: (cs:\S+ ro:\S+ ds:\S+)", g.run(["cat", "/proc/drbd"], check=False).out, re.M)
    return m.group(1) if m else ""


def drbdadm_changes(g) -> list[str]:
    """The drbdadm commands the daemon ran that change something (get-gi only reads)."""
    return [line for line in gfs2_log(g).splitlines()
            if "ran drbdadm" in line and "ran drbdadm get-gi" not in line]


def test_gfs2_on_dual_primary_drbd_over_dlm(dlm_nodes):
    p = dlm_nodes
    a, b = p
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    both = "cs:Connected ro:Primary/Primary ds:UpToDate/UpToDate"

    # 1. both declared primary (allow_two_primaries): created, first sync from node-a, both promoted
    gfs2_spec(p)
    daemons = [gfs2_daemon(a), gfs2_daemon(b)]
    try:
        wait_for(lambda: all(drbd_line(g) == both for g in p.nodes), 300, "both primary", interval=2)
        assert "ran drbdadm primary --force r0" in gfs2_log(a)
        assert "primary --force" not in gfs2_log(b)
        assert "allow-two-primaries yes;" in a.read_file("/etc/drbd.d/r0.res")
        timings["both primary"] = time.monotonic() - t0
        print(f"gfs2 progress: {timings}", flush=True)

        # 2. the operator makes GFS2 over DLM (lock table lab:gfs0, "lab" being corosync's
        # cluster_name), mounts it on both, writes on both; each node's files checked from the other
        t1 = time.monotonic()
        a.run(["mkfs.gfs2", "-O", "-p", "lock_dlm", "-t", "lab:gfs0", "-j", "2", "-J", "8",
               "/dev/drbd0"], timeout=120)
        for g in p.nodes:
            g.run(["sh", "-c", f"modprobe gfs2 && mkdir -p {MNT} && mount -t gfs2 /dev/drbd0 {MNT}"],
                  timeout=120)
        ls = a.run(["dlm_tool", "ls"]).out
        assert re.search(r"name\s+gfs0\n(.*\n)*?members\s+1 2\s*\n", ls), ls
        for g in p.nodes:
            g.sh(f"for i in 1 2 3; do dd if=/dev/urandom of={MNT}/{g.name}-$i bs=256k count=4 "
                 f"conv=fsync status=none; done; cd {MNT} && md5sum {g.name}-* > /tmp/{g.name}.md5")
        for g, other in ((a, b), (b, a)):
            other.write_file(f"/tmp/{g.name}.md5", g.read_file(f"/tmp/{g.name}.md5"))
            other.sh(f"cd {MNT} && md5sum --quiet -c /tmp/{g.name}.md5")
        timings["gfs2 made, mounted, written, checked"] = time.monotonic() - t1

        # 3. a demotion of node-b declared: refused while GFS2 is mounted there
        print(f"gfs2 progress: {timings}", flush=True)
        gfs2_spec(p, role_b="secondary")
        st = fresh(b, lambda st: st["blocked"], 120, "the demotion refused")
        reasons = "\n".join(x["reason"] for x in st["blocked"])
        assert f"to become secondary, /dev/drbd0 must be closed, but it is in use ({MNT})" in reasons
        assert "never unmounts" in reasons
        assert not any("drbdadm secondary" in line for line in drbdadm_changes(b))
        assert drbd_line(b) == both
        gfs2_spec(p)

        # 4. the link cut, both primary, GFS2 mounted on both: DRBD 8.4's own policy (no
        # fencing policy: both stay primary); each reconciler reports it, runs nothing
        changes = {g.name: len(drbdadm_changes(g)) for g in p.nodes}
        t2 = time.monotonic()
        dev = a.run("ip -o link | awk -F': ' '$2!=\"lo\"{print $2; exit}'").out.strip()
        a.run(["ip", "link", "set", dev, "down"])
        wait_for(lambda: all(drbd_line(g).startswith("cs:WFConnection ro:Primary/Unknown")
                             for g in p.nodes), 60, "both primary, WFConnection")
        for g, peer in ((a, "node-b"), (b, "node-a")):
            st = fresh(g, lambda st: st["conditions"] and st["in_flight"], 120, "the cut reported")
            assert [c["kind"] for c in st["conditions"]] == ["degraded"], st
            assert f"{g.name} is primary and not connected to {peer} (WFConnection)" in \
                st["conditions"][0]["detail"], st
            (wait,) = st["in_flight"]
            assert wait["waiting_on"] == peer and "no demotion, no discard" in wait["what"], st
            assert st["last_pass"]["exit_code"] == 2, st
        timings["link cut reported"] = time.monotonic() - t2
        # without fencing (lab only) DLM lets each side go on alone: GFS2 writable on both,
        # each node writing its own copy
        t3 = time.monotonic()
        for g in p.nodes:
            wait_for(lambda g=g: re.search(r"name\s+gfs0\n(.*\n)*?members\s+\d\s*\n",
                                           g.run(["dlm_tool", "ls"]).out), 120,
                     f"[{g.name}] DLM's gfs0 lockspace without the peer")
        timings["DLM without the peer"] = time.monotonic() - t3
        print(f"gfs2 progress: {timings}", flush=True)
        for g in p.nodes:
            g.run(["dd", "if=/dev/urandom", f"of={MNT}/cut-{g.name}", "bs=64k", "count=4",
                   "conv=fsync", "status=none"], timeout=120)

        # 5. node-b's operator unmounts and demotes it by hand: not promoted without node-a
        b.sh(f"umount {MNT} && drbdadm secondary r0")
        st = fresh(b, lambda st: st["in_flight"], 120, "no promotion without the peer")
        (wait,) = st["in_flight"]
        assert wait["waiting_on"] == "node-a" and "not promoted: node-a cannot be reached" in wait["what"], st
        assert drbd_line(b).startswith("cs:WFConnection ro:Secondary/Unknown")
        assert {g.name: len(drbdadm_changes(g)) for g in p.nodes} == changes  # nothing run

        # The link is not brought back here: corosync would re-merge two partitions DLM ran
        # apart without fencing (lab: node-a's corosync and dlm_controld exited, "dlm user
        # daemon left 2 lockspaces", and node-b's lvm commands waited minutes on DLM's
        # lvm_global lock). The split brain at reconnection is test_lab_drbd.py's (lab) and
        # test_drbd_scenarios.py's dual-primary case (simulator).
        print(f"\ngfs2: boot {p.boot_s:.1f}s, stack {p.start_s:.1f}s; "
              + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
              + f"; whole body {time.monotonic() - t0:.1f}s")
    except BaseException:
        for g in p.nodes:  # what a hung command waits on, for the failure report
            print(f"== [{g.name}] diagnostics\n" + g.run(
                "cat /proc/drbd; dlm_tool ls; corosync-quorumtool -s; "
                "ps -eo pid,stat,wchan:32,etimes,args | grep -v ' \\[' | tail -40; "
                "for p in $(pgrep -x lvm) $(pgrep -x mount) $(pgrep -x umount); do "
                "echo \"-- stack of $p\"; cat /proc/$p/stack; done; dmesg | tail -60",
                check=False, timeout=60).out, flush=True)
        raise
    finally:
        for g in p.nodes:
            g.run(f"kill $(cat {GFS2_PID}) 2>/dev/null; true", check=False)
        for g, fut in zip(p.nodes, daemons):
            try:
                rc = g.wait(fut, timeout=60).rc
            except LabError:  # a pass stuck in a command: the guests are torn down anyway
                rc = "(still running)"
            print(f"[{g.name}] gfs2 daemon rc {rc}; log (INFO and up) tail:\n"
                  + "\n".join(line[:400] for line in gfs2_log(g).splitlines()
                              if " DEBUG " not in line)[-6000:])
