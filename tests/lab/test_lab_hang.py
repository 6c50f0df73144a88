"""A command that hangs, for real (issue 8, item 7): the device-mapper device under a PV is
suspended (``dmsetup suspend``), so every lvm command that reads it blocks in the kernel.

Measured in this guest (kernel 6.1, lvm2 2.03.16): a blocked ``lvm fullreport`` dies on
SIGTERM but cannot finish exiting until the device is resumed (state D in ``exit_aio``, its
asynchronous reads still queued), so SIGKILL does nothing either. The pass must still
return within its bound, say which process is stuck and why, start nothing else while it
is stuck, and the next pass after ``dmsetup resume`` must converge with the data intact.

The passes that hang run a short driver (the reconciler's own controller and
``SubprocessRunner``, with every timeout capped at a few seconds) instead of the command
line, which has no knob for timeouts; the others are ``python3 -m reconciler --once``.
One guest for the whole sequence.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from reconciler_lab import SHIM_DIR, assert_settled, put_spec, reconcile

pytestmark = pytest.mark.lab

TIMEOUT, GRACE, REAP = 4.0, 2.0, 3.0
BOUND = TIMEOUT + GRACE + REAP + 2.0  # + margin for the guest's slow Python

DRIVER = f"""
import dataclasses, json, sys, time
from reconciler import controller
from reconciler.runner import SubprocessRunner
from reconciler.spec import loading

class Short(SubprocessRunner):
    def run(self, cmd):
        return super().run(dataclasses.replace(cmd, timeout=min(cmd.timeout, {TIMEOUT})))

spec = loading.load(sys.argv[1])
env = controller.Environment(runner=Short(term_grace={GRACE}, reap_wait={REAP}),
                             node="node-1")
t0 = time.monotonic()
r = controller.reconcile_once(spec, env)
print(json.dumps({{"seconds": time.monotonic() - t0, "result": r.as_dict()}}))
"""

SPEC = """
    [vg.vg0]
    nodes = ["node-1"]
    pvs = ["/dev/mapper/slowpv"]
    [vg.vg0.lv.data]
    size = "{size}"
    """

# lvextend, through the lab's PATH shim: the device is suspended right before the real tool
# runs, so the command itself hangs (observation before it was fine).
SUSPEND_THEN_LVEXTEND = """#!/bin/sh
dmsetup suspend slowpv
exec {real}/lvextend "$@"
"""


def drive(g, *, shim: bool = False) -> tuple[dict, float]:
    g.write_file("/root/driver.py", DRIVER)
    path = f'PATH={SHIM_DIR}:"$PATH" ' if shim else ""
    t0 = time.monotonic()
    res = g.run(f"cd / && {path}exec python3 /root/driver.py /tmp/spec", timeout=120,
                check=False, env={"NO_COLOR": "1"})
    wall = time.monotonic() - t0
    assert res.rc == 0, res  # the driver itself always prints a result
    return json.loads(res.out), wall


def stuck_pid(text: str) -> int:
    m = re.search(r"pid (\d+) \(lv\w*\) in state D", text)
    assert m, text
    return int(m.group(1))


def state_of(g, pid: int) -> str:
    return g.run(f"cat /proc/{pid}/stat 2>/dev/null | sed 's/.*) //' | cut -d' ' -f1",
                 check=False).out.strip()


def test_a_pass_over_a_suspended_pv_returns_names_the_stuck_process_then_converges(make_guest):
    g = make_guest("hang", disks=["64M"], mem="768M")
    # Offset by 1 MiB, so that lvm does not also find the PV's label on /dev/vda itself.
    g.sh("""
        dmsetup create slowpv --table "0 $(( $(blockdev --getsz /dev/vda) - 2048 )) linear /dev/vda 2048"
        dmsetup mknodes slowpv
    """)
    put_spec(g, SPEC.format(size="16M"))
    first = reconcile(g, shim=False)
    assert first.rc == 0, (first.result.out[-3000:], first.log[-3000:])
    g.sh("head -c 8M /dev/urandom > /root/data && dd if=/root/data of=/dev/vg0/data "
         "bs=1M oflag=direct status=none")
    data_md5 = g.run("md5sum < /root/data").out.split()[0]

    # 1. The observation hangs: the pass returns within its bound, naming the stuck lvm.
    put_spec(g, SPEC.format(size="32M"))
    g.run(["dmsetup", "suspend", "slowpv"])
    doc, wall = drive(g)
    r = doc["result"]
    assert doc["seconds"] < BOUND, doc
    assert r["exit_code"] == 1 and r["applied"] == [], r
    err = r["error"]
    assert f"timed out after {TIMEOUT:g} s: sent SIGTERM to its process group" in err, err
    assert f"still running after {GRACE:g} s: killed with SIGKILL" in err, err
    assert "was abandoned" in err and "suspended device-mapper device" in err, err
    pid = stuck_pid(err)
    assert "waiting in" in err, err
    assert state_of(g, pid) == "D"  # really stuck, really left behind, not waited for
    g.run(["dmsetup", "resume", "slowpv"])
    deadline = time.monotonic() + 30
    while state_of(g, pid) not in ("", "Z") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state_of(g, pid) in ("", "Z")  # resumed: the stuck process finishes by itself

    # 2. The change itself hangs: the step fails with the stuck pid, nothing else starts
    # (the re-observation is refused at once instead of piling up behind it).
    g.run(["mkdir", "-p", SHIM_DIR])
    real = g.run("dirname \"$(PATH=/usr/sbin:/sbin:/usr/bin:/bin command -v lvextend)\"").out.strip()
    g.write_file(f"{SHIM_DIR}/lvextend", SUSPEND_THEN_LVEXTEND.format(real=real), mode="755")
    doc, wall = drive(g, shim=True)
    r = doc["result"]
    assert doc["seconds"] < BOUND + 3, doc  # one fullreport, then the bounded lvextend
    (step,) = r["applied"]
    assert step["key"] == "lv:vg0/data:resize" and step["outcome"] == "failed", step
    assert step["commands"][0]["argv"][0] == "lvextend" and step["commands"][0]["rc"] == 124
    pid = stuck_pid(step["detail"])
    assert "re-observation failed" in step["detail"] and "not started: pid" in step["detail"]
    assert state_of(g, pid) == "D"
    g.run(["dmsetup", "resume", "slowpv"])

    # 3. Resumed: the next pass converges, and the data written before is intact.
    g.run(["rm", "-f", f"{SHIM_DIR}/lvextend"])
    final = reconcile(g, shim=False, timeout=120)
    assert final.rc == 0, final
    assert g.run("blockdev --getsize64 /dev/vg0/data").out.strip() == str(32 << 20)
    got = g.run("head -c 8M /dev/vg0/data | md5sum").out.split()[0]
    assert got == data_md5
    assert g.run("dmsetup info -c --noheadings -o name,suspended slowpv").out.split(":")[1].strip() == "Active"
    assert_settled(g)
