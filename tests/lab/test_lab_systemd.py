"""The unit as shipped, under a real systemd (issue 19): a guest ``sd`` whose PID 1 is the host's
systemd (``Guest(systemd=True)``: sysinit.target with journald and udevd, the lab agent as a
service), the project installed by the README's two commands exactly as written (from a copy
of this checkout, Debian's python3, the dependencies' wheels from the lab directory since the
guest has no network), then, through ``reconciler.service`` and its sandbox. A second guest,
``peer`` (no systemd; booted with ``sd``, in parallel, on a lab link), is DRBD r0's other
node: its reconciler (``--once`` while ``sd`` installs, then a daemon for step 7) runs its
side of the same ``[drbd.r0]`` text.

1. the install: ``/usr/local/sbin/reconcile`` runs the venv's program, ``systemd-analyze
   verify`` has nothing to say about the unit, the unit is active (``Type=notify``: READY=1
   came) with its STATUS= line;
2. every path of ``reconciler/paths.py`` writable inside the unit's mount namespace, and the
   rest of the file system not;
3. a spec dropped in /etc/reconciler/specs is applied (a VG and an ext4 LV), ``reconcile
   status`` reads the live status;
4. ``systemctl reload`` forces a pass (reason SIGHUP) and its commands send keep-alives
   (``WatchdogTimestamp`` moves);
5. a spec change moves the LV to the other PV (pvmove, destination throttled, a writer
   running); the daemon is ``kill -9``-ed mid-move: systemd restarts it, one instance, the move
   is adopted and finishes; every md5 checked;
6. an invalid spec is logged at priority err (``journalctl -p err``), info lines are not;
7. iSCSI and DRBD through the unit: the spec gains a LIO target exporting a disk of this guest
   on 127.0.0.1 and a session to it from this same guest (the rtslib applier under the
   sandbox: configfs, its dbroot; iscsiadm's node records in /etc/iscsi), whose LUN's disk
   then appears under its by-path name; and DRBD r0 with ``sd`` declared primary and
   ``peer`` the first sync's source: the unit writes the resource file, the metadata
   (drbdmeta) and the ledger and brings r0 up; the nodes connect, ``peer`` seeds the first
   sync and steps down as declared, and the unit's daemon (its MainPID, in its journal) runs
   ``drbdadm primary r0`` once its disk is UpToDate (the reconciler never promotes without a
   connected peer). Data written on the promoted device under the unit is on ``peer``'s
   backing disk (md5). No line of the unit's journal says EACCES or EROFS;
8. a hung loop (SIGSTOP) is restarted by the watchdog (interval shortened by a runtime drop-in
   for this step only: the shipped 2 min would cost 2 min);
9. ``systemctl stop`` while a step runs (a ``lvcreate`` on a throttled disk): the step
   completes, the daemon exits 0.
"""

from __future__ import annotations

import json
import re
import shlex
import time

import pytest
from harness import LAB_DIR, REPO_ROOT, Guest, Link, boot
from reconciler_lab import Data, _wrap, reconcile_argv

from reconciler import paths

pytestmark = [pytest.mark.lab, pytest.mark.lab_pair]  # two guests booted by hand

UNIT = "reconciler"
SPECS = "/etc/reconciler/specs"
SRC = "/root/reconciler"  # the checkout, copied: pip builds in it (egg-info, build/)
WHEELS = LAB_DIR / "wheels"  # tests/lab/setup.sh, step 6
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # a root shell's

SPEC = """
[vg.vg0]
nodes = ["sd"]
pvs = ["{pv}"]
[vg.vg0.lv.data]
size = "40M"
{extra}
"""

IQN = "iqn.2003-01.org.example.sd:self0"
INITIATOR = "iqn.2004-10.com.example:sd"
PORTAL = "127.0.0.1:3260"
SELF = """
[iscsi_target.self0]
nodes = ["sd"]
iqn = "{iqn}"
portals = ["{portal}"]
acls = ["{initiator}"]
[iscsi_target.self0.lun.0]
device = "{lun}"

[iscsi_session.self0]
nodes = ["sd"]
portal = "{portal}"
target = "{iqn}"
luns = [0]
initiator = "{initiator}"
"""
# The same text on both nodes. peer seeds the first sync (primary --force there) and is
# declared secondary, so sd's promotion is a plain `drbdadm primary`, run by the unit once its
# disk is UpToDate and peer has stepped down.
DRBD = """
[drbd.r0]
protocol = "C"
initial_sync_from = "peer"
resync_rate = "400M"
[drbd.r0.net]          # the lab's short timeouts, as test_lab_drbd.py
connect_int = 1
ping_int = 1
ping_timeout = 2
[drbd.r0.disk]
c_plan_ahead = 0
[drbd.r0.nodes.sd]
disk = "{sd_disk}"
address = "{sd_ip}"
role = "primary"
[drbd.r0.nodes.peer]
disk = "/dev/vda"
address = "{peer_ip}"
role = "secondary"
"""
PEER_SPEC = "/tmp/spec"
PEER_PID = "/tmp/peer-reconciler.pid"
PEER_LOG = "/tmp/peer-reconciler.log"
DRBD_MIB = 8  # written on sd's /dev/drbd0, read back from peer's backing disk


def readme_install_commands() -> list[str]:
    """The commands of the first ``sh`` block of the README's "Running as a service"."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## Running as a service\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    cmds = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    return [c for c in cmds if c and not c.startswith("#")]


def show(g: Guest, *props: str) -> dict[str, str]:
    out = g.run(["systemctl", "show", UNIT, "-p", ",".join(props)]).out
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_for(what: str, pred, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def status(g: Guest) -> tuple[int, dict]:
    r = g.run("reconcile status --output json", check=False, timeout=60)
    try:
        return r.rc, json.loads(r.out)
    except ValueError:
        return r.rc, {}


def in_sync_after(g: Guest, after: float, timeout: float = 180) -> dict:
    """The status once a pass that started after ``after`` (guest wall clock) left it in sync."""
    def ok():
        rc, doc = status(g)
        last = doc.get("last_pass") or {}
        return doc if rc == 0 and last.get("started_at", 0) > after else None
    return wait_for("a pass in sync", ok, timeout, every=2)


def now(g: Guest) -> float:
    return float(g.run("date +%s.%N").out)


def journal(g: Guest, *args: str) -> str:
    return g.run(["journalctl", "-u", UNIT, "--no-pager", "-o", "cat", *args]).out


def instances(g: Guest) -> list[str]:
    """The daemons running (the venv's python running the reconcile program)."""
    out = g.run("pgrep -a -f '^/opt/reconciler/bin/python3? /usr/local/sbin/reconcile' || true").out
    return [line for line in out.splitlines() if line.strip()]


@pytest.fixture
def sd_and_peer(lab, request):
    """``sd`` (systemd) and ``peer`` on one link, booted in parallel; closed after the report
    (so that a failure's report has their console tails)."""
    link = Link()
    g = Guest("sd", ["64M", "64M", "16M", "8M", "16M"], nics=[link.a], systemd=True,
              lvm={"polling_interval": 1})
    peer = Guest("peer", ["16M"], nics=[link.b])
    request.node._lab_guests = [g, peer]
    t0 = time.monotonic()
    try:
        boot(g, peer)
        yield g, peer, link, t0
    finally:
        g.close()
        peer.close()


def test_systemd_unit_as_shipped(sd_and_peer):
    g, peer, link, t_start = sd_and_peer
    assert WHEELS.is_dir(), f"{WHEELS} missing: run `bash tests/lab/setup.sh`"
    a, b, c, lun, drbd = (g.disk(i) for i in range(5))
    drbd_text = DRBD.format(sd_disk=drbd, sd_ip=link.a.ip, peer_ip=link.b.ip)
    # peer's side of r0 comes up while sd installs (one pass: file, metadata, up; it then
    # waits for sd), so that sd's `drbdadm up` under the unit meets a node that answers
    peer.run(["mkdir", "-p", PEER_SPEC])
    peer.write_file(f"{PEER_SPEC}/drbd.toml", drbd_text)
    peer_up = peer.spawn(_wrap(reconcile_argv("--once", spec=PEER_SPEC, node="peer"), False),
                         timeout=300, env={"NO_COLOR": "1"})
    assert g.run("ps -o comm= -p 1").out.strip() == "systemd"
    g.run("systemctl is-system-running --wait", timeout=300, check=False)
    assert g.run("systemctl is-system-running").out.strip() == "running"
    t_booted = time.monotonic()

    # 1. the README's two commands, as written, from a copy of the checkout
    cmds = readme_install_commands()
    assert len(cmds) == 2, cmds
    g.sh(f"mkdir -p {SRC} && cd {shlex.quote(str(REPO_ROOT))} && "
         f"tar --exclude=.git --exclude=__pycache__ --exclude=.pytest_cache -cf - . | tar -C {SRC} -xf -")
    # A host with every subsystem: their directories exist before the unit starts (systemd
    # opens a "-" ReadWritePaths= entry only if it exists then; a directory made later stays
    # read-only in the sandbox until a restart: measured, the node_exporter one).
    g.run(["mkdir", "-p", *(w.path for w in paths.WRITTEN)])
    env = {"PATH": DEBIAN_PATH, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELS),
           "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in cmds:
        r = g.run(cmd, env=env, cwd=SRC, timeout=600, check=False)
        assert r.ok, (cmd, r.out[-3000:], r.err[-3000:])
    t_installed = time.monotonic()
    up = peer.wait(peer_up)
    assert up.rc == 2 and "cs:WFConnection" in peer.read_file("/proc/drbd"), (up.out, up.err[-3000:])
    assert g.run("readlink -f /usr/local/sbin/reconcile").out.strip().startswith("/opt/reconciler/")
    assert g.run(["/usr/local/sbin/reconcile", "--version"], env={"PATH": DEBIAN_PATH}).out.startswith("reconcile")
    verify = g.run(["systemd-analyze", "verify", f"/etc/systemd/system/{UNIT}.service"], check=False)
    assert "reconciler.service" not in verify.out + verify.err, verify
    st = show(g, "ActiveState", "SubState", "StatusText", "MainPID", "NRestarts", "UnitFileState")
    assert (st["ActiveState"], st["SubState"], st["UnitFileState"]) == ("active", "running", "enabled"), st
    assert st["StatusText"], st  # READY=1 came with a STATUS= line

    # 2. the sandbox: what paths.py lists is writable in the unit's namespace, nothing else
    pid = show(g, "MainPID")["MainPID"]
    probe = " ".join(shlex.quote(w.path) for w in paths.WRITTEN)
    ro = "/etc /etc/systemd /usr/local/sbin /opt/reconciler /var/log /var/lib /root /usr/lib"
    out = g.run(["nsenter", "-t", pid, "-m", "sh", "-c",
                 f'for d in {probe}; do test -w "$d" && echo "rw $d" || echo "ro $d"; done; '
                 f'for d in {ro}; do test -w "$d" && echo "rw $d" || echo "ro $d"; done']).out
    seen = dict(reversed(line.split(" ", 1)) for line in out.splitlines())
    assert {w.path: seen[w.path] for w in paths.WRITTEN} == {w.path: "rw" for w in paths.WRITTEN}, out
    assert {d: seen[d] for d in ro.split()} == {d: "ro" for d in ro.split()}, out

    # 3. a spec: VG and LV made by the unit; `reconcile status` reads the live status
    t = now(g)
    g.write_file(f"{SPECS}/lab.toml", SPEC.format(pv=a, extra=""))
    doc = in_sync_after(g, t)
    assert doc["pid"] == int(pid) and doc["state"] == "in-sync", doc
    assert g.run("lvs --noheadings -o lv_name vg0").out.split() == ["data"]
    text = g.run("reconcile status", check=False)
    assert text.rc == 0 and "in sync" in text.out.lower(), text
    data = Data(g, "/dev/vg0/data", "/mnt/data").make(files=4)

    # 4. reload: a pass now (SIGHUP), with keep-alives around its commands
    wd0 = int(show(g, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
    assert show(g, "WatchdogUSec")["WatchdogUSec"] == "2min"
    t = now(g)
    g.run(["systemctl", "reload", UNIT])
    doc = in_sync_after(g, t, timeout=60)
    assert "SIGHUP" in doc["last_pass"]["reason"], doc["last_pass"]
    assert int(show(g, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]) > wd0

    # 5. the move: spec change to the other PV, the daemon killed -9 mid-copy, restarted
    g.throttle(1, write_bps=2 << 20)
    data.start_writer()
    t = now(g)
    g.write_file(f"{SPECS}/lab.toml", SPEC.format(pv=b, extra=""))
    wait_for("the pvmove", lambda: "pvmove" in g.run("lvs -a --noheadings -o lv_name vg0").out, 60, 0.5)
    old = show(g, "MainPID", "NRestarts")
    g.run(["kill", "-9", old["MainPID"]])
    wait_for("the restart", lambda: show(g, "MainPID")["MainPID"] not in ("0", old["MainPID"])
             and show(g, "ActiveState")["ActiveState"] == "active", 60)
    st = show(g, "MainPID", "NRestarts")
    assert int(st["NRestarts"]) == int(old["NRestarts"]) + 1, st
    assert len(instances(g)) == 1, instances(g)
    # active again means READY=1: the new daemon's first pass has observed the host, the move
    # included; the rest of the copy need not crawl
    g.throttle(1)
    doc = in_sync_after(g, t, timeout=300)
    assert data.stop_writer() > 0
    data.verify()
    assert g.run(f"pvs --noheadings -o vg_name {b}").out.strip() == "vg0"
    assert g.run(f"pvs --noheadings -o vg_name {a}", check=False).out.strip() == ""
    assert doc["pid"] == int(st["MainPID"])

    # 6. journald priorities: an invalid spec is an error; passes are info
    t = now(g)
    g.write_file(f"{SPECS}/bad.toml", "[vg.broken\n")
    wait_for("the refusal", lambda: status(g)[1].get("state") == "spec-refused", 60)
    # (journald stores a stream's lines a moment after the status file changes)
    errs = wait_for("the error in the journal",
                    lambda: (lambda e: e if "bad.toml" in e else None)(
                        journal(g, "-p", "err", "--since", f"@{t - 1:.0f}")), 60)
    assert "invalid spec" in errs, errs
    assert "daemon started" not in journal(g, "-p", "warning")
    assert "daemon started" in journal(g, "-p", "info")
    g.run(["rm", f"{SPECS}/bad.toml"])  # step 7's pass, in sync, is the one after it

    # 7. iSCSI and DRBD under the unit. Lab plumbing, not product: this guest's own initiator
    # name, and iscsid's socket (a host has it in sockets.target; lab.target does not pull that)
    t_7 = time.monotonic()
    g.write_file("/etc/iscsi/initiatorname.iscsi", f"InitiatorName={INITIATOR}\n")
    g.run(["systemctl", "start", "iscsid.socket"])
    disk0 = f"/dev/disk/by-path/ip-{PORTAL}-iscsi-{IQN}-lun-0"
    # peer's daemon: seeds the first sync once the nodes are connected, then steps down
    peer_daemon = peer.spawn(
        f"echo $$ > {PEER_PID}; cd / && exec python3 -m reconciler --spec {PEER_SPEC} --node peer "
        f"--resync-interval 5 --status-dir /tmp/rec-status 2> {PEER_LOG}",
        timeout=1200, env={"NO_COLOR": "1"})
    t = now(g)
    g.write_file(f"{SPECS}/lab.toml", SPEC.format(pv=b, extra="") + SELF.format(
        iqn=IQN, portal=PORTAL, initiator=INITIATOR, lun=lun) + drbd_text)

    def settled():  # in sync (r0 promoted), or a failure: no use waiting longer
        rc, doc = status(g)
        if (doc.get("last_pass") or {}).get("started_at", 0) <= t:
            return None
        return (rc, doc) if doc.get("state") in ("in-sync", "error", "blocked") else None
    rc, doc = wait_for("iSCSI in place and r0 promoted", settled, 480, every=2)
    t_7a = time.monotonic() - t_7
    assert (rc, doc["state"]) == (0, "in-sync"), (doc, journal(g, "--since", f"@{t - 1:.0f}"),
                                                  peer.run(["cat", PEER_LOG], check=False).out[-4000:])
    # the target, made by the applier in the sandbox (configfs, rtslib's dbroot)
    tpg = f"/sys/kernel/config/target/iscsi/{IQN}/tpgt_1"
    assert g.run(["cat", f"{tpg}/enable"]).out.strip() == "1"
    assert g.run(["test", "-d", f"{tpg}/np/{PORTAL}"], check=False).ok
    assert g.run(["ls", f"{tpg}/acls"]).out.split() == [INITIATOR]
    assert g.run("cat /sys/kernel/config/target/dbroot").out.strip() in paths.LIO_DBROOTS
    # the login, by iscsiadm in the sandbox (its node record in /etc/iscsi), and the LUN's disk
    assert g.run(["test", "-f", f"/etc/iscsi/nodes/{IQN}/127.0.0.1,3260,1/default"], check=False).ok
    sess = g.run("iscsiadm -m session").out
    assert IQN in sess and PORTAL in sess, sess
    wait_for("the LUN's by-path link", lambda: g.run(["test", "-b", disk0], check=False).ok, 30)
    sd = g.run(["readlink", "-f", disk0]).out.strip()
    assert sd.startswith("/dev/sd"), sd
    assert g.run(["blockdev", "--getsize64", sd]).out.strip() == \
        g.run(["blockdev", "--getsize64", lun]).out.strip()
    # DRBD: the file, the metadata and the ledger written in the sandbox; up, connected,
    # synced from peer, and promoted here by the unit's own process
    assert g.run(["test", "-f", "/etc/drbd.d/r0.res"], check=False).ok
    assert "r0" in g.run(["cat", f"{paths.DRBD_LEDGER}"]).out
    assert "drbd-minor-0.lkbd" in g.run("ls /var/lib/drbd").out.split()  # drbdadm's, at up
    proc = g.run("cat /proc/drbd").out
    assert re.search(r"0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate", proc), proc
    assert re.search(r"0: cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate",
                     peer.read_file("/proc/drbd")), peer.read_file("/proc/drbd")
    pid = show(g, "MainPID")["MainPID"]
    ran = g.run(["journalctl", "-u", UNIT, f"_PID={pid}", "--no-pager", "-o", "cat",
                 "--since", f"@{t - 1:.0f}"]).out
    assert re.search(r"ran drbdadm primary r0 -> rc 0", ran), ran
    assert "primary --force" not in ran, ran  # the first sync was peer's
    peer_log = peer.read_file(PEER_LOG)
    assert "ran drbdadm primary --force r0 -> rc 0" in peer_log, peer_log[-4000:]
    assert "ran drbdadm secondary r0 -> rc 0" in peer_log, peer_log[-4000:]
    peer.run(f"kill $(cat {PEER_PID})")  # its work is done: no CPU taken from the steps below
    peer.wait(peer_daemon)
    # data on the device the unit promoted reaches peer's disk (protocol C, O_DIRECT)
    g.run(f"dd if=/dev/urandom of=/dev/drbd0 bs=1M count={DRBD_MIB} oflag=direct status=none")
    md5 = f"dd if={{}} bs=1M count={DRBD_MIB} iflag=direct status=none | md5sum"
    written = g.run(md5.format("/dev/drbd0")).out.split()[0]
    assert peer.run(md5.format("/dev/vda")).out.split()[0] == written
    # no step failed, and nothing the unit ran met a read-only or forbidden path
    assert journal(g, "-q", "-p", "err", "--since", f"@{t - 1:.0f}") == "", journal(g, "-p", "err")
    denied = re.findall(r".*(?:EACCES|EROFS|Read-only file system|Permission denied).*",
                        journal(g, "-q", "-b"))
    assert denied == [], denied
    # back to the LVM spec (r0 and the session stay as they are: not in the spec, not
    # touched); step 8's restart starts from it
    g.write_file(f"{SPECS}/lab.toml", SPEC.format(pv=b, extra=""))
    t_7 = time.monotonic() - t_7

    # 8. a hung loop: the watchdog restarts it (runtime drop-in: 10 s instead of 2 min)
    g.run(["mkdir", "-p", f"/run/systemd/system/{UNIT}.service.d"])
    g.write_file(f"/run/systemd/system/{UNIT}.service.d/lab-watchdog.conf",
                 "[Service]\nWatchdogSec=10s\n")
    g.run("systemctl daemon-reload && systemctl restart reconciler", timeout=300)
    hung = show(g, "MainPID", "NRestarts")
    g.run(["kill", "-STOP", hung["MainPID"]])
    wait_for("the watchdog's restart", lambda: show(g, "MainPID")["MainPID"] not in ("0", hung["MainPID"])
             and show(g, "ActiveState")["ActiveState"] == "active", 120)
    assert "watchdog timeout" in journal(g, "-o", "short", "--since", "-2min").lower() or \
        "Watchdog timeout" in g.run("journalctl --no-pager -b -o cat | grep -i watchdog || true").out
    assert int(show(g, "NRestarts")["NRestarts"]) == int(hung["NRestarts"]) + 1
    g.run(f"rm /run/systemd/system/{UNIT}.service.d/lab-watchdog.conf && systemctl daemon-reload")

    # 9. stop while a step runs: the step completes, exit 0
    g.throttle(2, write_bps=4 << 10)
    g.write_file(f"{SPECS}/lab.toml", SPEC.format(pv=b, extra="") +
                 f'[vg.vg1]\nnodes = ["sd"]\npvs = ["{c}"]\n[vg.vg1.lv.slow]\nsize = "8M"\n')
    wait_for("a step running", lambda: g.run("pgrep -x 'pvcreate|vgcreate|lvcreate'", check=False).ok, 60, 0.2)
    g.run(["systemctl", "stop", UNIT], timeout=300)
    st = show(g, "ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
    assert (st["ActiveState"], st["Result"], st["ExecMainStatus"]) == ("inactive", "success", "0"), st
    assert "stopping on request" in journal(g, "--since", "-5min")
    steps = status(g)[1].get("last_pass", {}).get("applied", [])
    assert steps and all(s["outcome"] != "failed" for s in steps), steps
    g.throttle(2)
    t_end = time.monotonic()
    print(f"boot {t_booted - t_start:.0f}s, install {t_installed - t_booted:.0f}s, "
          f"checks {t_end - t_installed:.0f}s (iSCSI and DRBD {t_7:.0f}s, {t_7a:.0f}s to the pass), total {t_end - t_start:.0f}s")
