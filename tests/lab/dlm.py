"""Two lab guests on a link sharing disks under corosync + DLM + lvmlockd (issue 20).

The DLM counterpart of ``lockd.py`` (sanlock). What each piece needs, found in the lab
(Debian 12: corosync 3.1.7, dlm-controld 4.2.0, lvm2 2.03.16, kernel 6.1):

- corosync, two nodes, knet over the lab link (``harness.Link``: 169.254.N.1/.2), no crypto
  (so no /etc/corosync/authkey), ``two_node: 1`` (which turns on ``wait_for_all``: quorate
  only once both nodes were seen together). Started as ``corosync`` (it forks); quorate
  about 2 s later under TCG.
- dlm_controld needs the ``dlm`` module and configfs mounted on /sys/kernel/config (the
  guests do not mount it; without it dlm_controld exits at once, lvmlockd then says "Start a
  lock manager, lvmlockd did not find one running.") and a quorate corosync. ``--enable_fencing 0``
  in the lab only: with fencing on (the default) and no fence agent, a node that leaves
  without a clean shutdown blocks every DLM lockspace until it is fenced. Production needs
  fencing (Pacemaker's stonith, or dlm_controld's own fence agents in /etc/dlm/dlm.conf).
- lvmlockd ``-g dlm``; no host_id (sanlock's), no lvmlock LV: the lockspaces are DLM's
  (``dlm_tool ls`` lists ``lvm_<vg>`` and ``lvm_global``).
- udev in the guests, lvmpolld and ``use_lvmpolld = 1`` as for sanlock.

    with dlm_pair() as p:   # booted, corosync quorate, dlm_controld + lvmlockd running
        p.a.run(["vgcreate", "--shared", "--locktype", "dlm", "vgd", "/dev/vda"])

pytest fixture: ``dlm_nodes`` (module scope).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import Disk, Guest, LabError, Link
from lockd import LVM_SETTINGS, NODE_NAMES, LockdPair, booted, module_fixture

SHARED_DISKS = ("256M", "128M")
OWN_DISKS = ("64M", "64M")  # /dev/vdc, /dev/vdd in each guest: test_lab_lockd_dlm.py backs DRBD on them (GFS2, Pacemaker)
NODE_IDS = {"node-a": 1, "node-b": 2}
COROSYNC_ARGV = ("corosync",)
DLM_CONTROLD_ARGV = ("dlm_controld", "--enable_fencing", "0")
LVMLOCKD_ARGV = ("lvmlockd", "-g", "dlm")


def corosync_conf(link: Link) -> str:
    nodes = "".join(f"  node {{\n    ring0_addr: {ip}\n    name: {name}\n    nodeid: {NODE_IDS[name]}\n  }}\n"
                    for name, ip in zip(NODE_NAMES, (link.a.ip, link.b.ip)))
    return ("# written by tests/lab/dlm.py\n"
            "totem {\n  version: 2\n  cluster_name: lab\n  transport: knet\n"
            "  crypto_cipher: none\n  crypto_hash: none\n  token: 10000\n}\n"
            f"nodelist {{\n{nodes}}}\n"
            "quorum {\n  provider: corosync_votequorum\n  two_node: 1\n}\n"
            "logging {\n  to_logfile: yes\n  logfile: /var/log/corosync.log\n"
            "  to_syslog: no\n  to_stderr: no\n  timestamp: on\n}\n")


class DlmPair(LockdPair):
    link: Link
    lock_type = "dlm"
    lvmlockd_argv = LVMLOCKD_ARGV

    def start_corosync(self, g: Guest) -> None:
        g.run(["sh", "-c", 'set -e; mkdir -p /var/log /var/lib/corosync; "$@"', "sh", *COROSYNC_ARGV],
              timeout=60)

    def wait_quorate(self, g: Guest, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if g.run(["corosync-quorumtool", "-s"], check=False).rc == 0:
                return
            time.sleep(0.5)
        raise LabError(f"[{g.name}] corosync never quorate: "
                       + g.run(["sh", "-c", "corosync-quorumtool -s; tail -20 /var/log/corosync.log"],
                               check=False).out)

    def start_dlm(self, g: Guest) -> None:
        # dlm_tool status exits 0 even when it "cannot connect to dlm_controld"; ls does not
        g.run(["sh", "-c", "set -e; modprobe dlm; grep -q ' /sys/kernel/config ' /proc/mounts || "
               'mount -t configfs none /sys/kernel/config; "$@" </dev/null >/dev/null 2>&1\n'
               "for i in $(seq 200); do dlm_tool ls >/dev/null 2>&1 && exit 0; sleep 0.1; done\n"
               "echo 'dlm_controld never answered' >&2; exit 1", "sh", *DLM_CONTROLD_ARGV], timeout=60)

    def start_stack(self, g: Guest) -> None:
        """dlm_controld, lvmpolld, lvmlockd -g dlm (corosync must be quorate)."""
        self.start_dlm(g)
        self.start_lvmpolld(g)
        self.start_lvmlockd(g)


@contextlib.contextmanager
def dlm_pair(start: bool = True, shared: Sequence[str] = SHARED_DISKS, own: Sequence[str] = OWN_DISKS,
             mem: str = "1024M", verbose: bool = True) -> Iterator[DlmPair]:
    """Boot node-a and node-b on one link with udev, the shared disks and then one disk of
    each guest's own per size in ``own`` (after the shared ones: /dev/vdc, /dev/vdd: the
    GFS2 and Pacemaker tests' DRBD backing disks; they go with the guest); (``start``) write
    corosync.conf, start corosync on both, wait for quorum, then dlm_controld, lvmpolld and
    lvmlockd -g dlm. Always tears down."""
    disks = [Disk(s, f"shared{i}", shared=True) for i, s in enumerate(shared)]
    link = Link()
    guests = [Guest(n, [*disks, *own], nics=[end], udev=True, mem=mem, lvm=LVM_SETTINGS)
              for n, end in zip(NODE_NAMES, (link.a, link.b))]
    pair = DlmPair(guests[0], guests[1], disks)
    pair.link = link
    with booted(pair):
        if not start:
            yield pair
            return
        t1 = time.monotonic()
        for g in guests:
            g.write_file("/etc/corosync/corosync.conf", corosync_conf(link))
        pair.in_parallel(pair.start_corosync)
        for g in guests:
            pair.wait_quorate(g)
        pair.timings["corosync quorate"] = time.monotonic() - t1
        pair.in_parallel(pair.start_stack)
        pair.start_s = time.monotonic() - t1
        if verbose:
            print(f"dlm pair: booted in {pair.boot_s:.1f}s (udev), corosync quorate and "
                  f"dlm_controld + lvmpolld + lvmlockd -g dlm started in {pair.start_s:.1f}s",
                  flush=True)
        yield pair


dlm_nodes = module_fixture("dlm_nodes", dlm_pair,
                           "node-a and node-b on a link: corosync quorate, dlm_controld and lvmlockd -g dlm.")
