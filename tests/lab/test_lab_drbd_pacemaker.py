"""Issue 20 in the lab (``-k pacemaker``): Pacemaker owns the DRBD resource it manages.

node-a and node-b (each /dev/vda 64M) on one link. The reconcilers create r0 and its first
sync (node-a primary); 8 MiB of random data is written to /dev/drbd0 and its md5 kept. The
operator hands r0 to Pacemaker: node-a demoted by hand, corosync two-node and pacemakerd
started on both, ``stonith-enabled=false`` (the lab has no fence device; production needs
one), a promotable ``ocf:linbit:drbd`` clone for r0 (``cibadmin --create``). Then:

1. with the spec saying what Pacemaker runs, both reconcilers pass: exit 0, r0 listed as
   Pacemaker's, no drbdadm (nor modprobe) run, crm_mon and cibadmin --query read;
2. ``crm_resource --move --promoted`` to the other node: Pacemaker moves it; both
   reconcilers, with the spec unchanged, report the disagreement (exit 1) and run no drbdadm:
   the new primary stays; the data's md5 on the new primary is the one written;
3. the spec follows: exit 0 on both, still nothing run.
"""

from __future__ import annotations

import re
import time

from dlm import corosync_conf
from record_pacemaker_fixtures import CLONE
from reconciler_lab import Run, _json, _wrap, reconcile_argv, wait_for
from test_lab_drbd import SPEC_DIR, Lab, ok

from reconciler.adapters import pacemaker as pcmk


def roles(g) -> dict[str, str]:
    res = g.run(["crm_mon", "--output-as=xml"], check=False)
    if res.rc != 0:
        return {}
    return pcmk.parse_crm_mon(res.out)[0].get("drbd-r0", {})


def promoted(g) -> str | None:
    return next((n for n, r in roles(g).items() if r == "Promoted"), None)


class DebugLab(Lab):
    def both(self) -> dict[str, Run]:
        """Both passes at once, logging every command they run (--log-level DEBUG)."""
        futs = {}
        for node, g in self.guests.items():
            argv = reconcile_argv("--once", "--output", "json", "--log-level", "DEBUG",
                                  spec=SPEC_DIR, node=node)
            futs[node] = g.spawn(_wrap(argv, False), timeout=240, env={"NO_COLOR": "1"})
        out = {node: Run(r := self.guests[node].wait(fut), _json(r.out)) for node, fut in futs.items()}
        for node, run in out.items():
            assert run.doc is not None and "ran lvm fullreport" in run.log, run  # the log is there
            self.logs[node].append(run)
        return out


def ran_drbd(runs) -> list[str]:
    """What the passes changed: applied steps, and any drbdadm/modprobe they ran."""
    return [*(str(a) for r in runs.values() for a in r.doc["applied"]),
            *(line for r in runs.values() for line in r.log.splitlines()
              if re.search(r"ran (drbdadm|modprobe) ", line))]


def test_pacemaker_owns_the_drbd_resource_and_moves_it_the_reconciler_does_not(make_pair):
    t0 = time.monotonic()
    lab = DebugLab(make_pair(disks_each=("64M",), shared=(), names=("node-a", "node-b")))
    a, b = lab.a, lab.b
    lab.spec()
    lab.until(ok, 10, "create and first sync")
    a.run("dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 oflag=direct status=none")
    md5 = a.run("dd if=/dev/drbd0 bs=1M count=8 iflag=direct status=none | md5sum").out.split()[0]
    t_create = time.monotonic() - t0

    # the operator hands r0 to Pacemaker
    a.run(["drbdadm", "secondary", "r0"])
    for g in (a, b):
        g.write_file("/etc/corosync/corosync.conf", corosync_conf(lab.link))
        g.run(["sh", "-c", "mkdir -p /var/log /var/lib/corosync && corosync"])
    for g in (a, b):
        wait_for(lambda g=g: g.run(["corosync-quorumtool", "-s"], check=False).rc == 0, 120,
                 f"{g.name} quorate", interval=1)
        g.run(["sh", "-c", "mkdir -p /var/log/pacemaker; setsid -f pacemakerd </dev/null "
               ">/var/log/pacemaker/pacemakerd.out 2>&1"])
    wait_for(lambda: len(re.findall(r'<node name="node-[ab]"[^>]* online="true"',
                                    a.run(["crm_mon", "--output-as=xml"], check=False).out)) == 2,
             300, "both nodes online in Pacemaker", interval=2)
    a.run(["crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", "false"])
    a.run(["cibadmin", "--create", "-o", "resources", "--xml-text", CLONE])
    first = wait_for(lambda: promoted(a), 300, "r0 promoted by Pacemaker", interval=2)
    other = "node-b" if first == "node-a" else "node-a"
    t_pcmk = time.monotonic() - t0 - t_create

    # 1. the spec says what Pacemaker runs: nothing to do, r0 is Pacemaker's
    lab.spec(role_a="primary" if first == "node-a" else "secondary",
             role_b="primary" if first == "node-b" else "secondary")
    runs = lab.both()
    assert ok(runs), runs
    assert not ran_drbd(runs), ran_drbd(runs)
    for r in runs.values():
        assert "drbd r0 (Pacemaker's: ocf:linbit:drbd primitive drbd-r0 in drbd-r0-clone)" in r.result.out, r
        assert "ran cibadmin --query -> rc 0" in r.log and "ran crm_mon --output-as=xml -> rc 0" in r.log

    # 2. Pacemaker moves it; the reconcilers, with the old spec, report and touch nothing
    a.run(["crm_resource", "--resource", "drbd-r0-clone", "--move", "--node", other, "--promoted"])
    wait_for(lambda: promoted(a) == other and roles(a).get(first) == "Unpromoted", 300,
             f"r0 promoted on {other} by Pacemaker", interval=2)
    runs = lab.both()
    assert all(r.rc == 1 for r in runs.values()), runs
    assert not ran_drbd(runs), ran_drbd(runs)
    assert f"the spec says {first} is primary (Promoted), Pacemaker runs it Unpromoted on {first}" in runs[first].result.out
    assert f"the spec says {other} is secondary (Unpromoted), Pacemaker runs it Promoted on {other}" in runs[other].result.out
    assert f"ro:Primary/Secondary" in lab.line(other) and promoted(a) == other
    g = lab.guests[other]
    assert g.run("dd if=/dev/drbd0 bs=1M count=8 iflag=direct status=none | md5sum").out.split()[0] == md5

    # 3. the spec follows Pacemaker
    lab.spec(role_a="primary" if other == "node-a" else "secondary",
             role_b="primary" if other == "node-b" else "secondary")
    runs = lab.both()
    assert ok(runs) and not ran_drbd(runs), runs
    a.run(["crm_resource", "--resource", "drbd-r0-clone", "--clear"])
    print(f"\npacemaker: create+sync {t_create:.1f}s, pacemaker up and r0 promoted {t_pcmk:.1f}s, "
          f"whole {time.monotonic() - t0:.1f}s")
