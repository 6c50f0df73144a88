"""The DRBD simulator against the lab's recordings (tests/fixtures/outputs/drbd/).

``test_the_recorded_session_replays_alike`` replays the recorder's session
(tests/lab/record_drbd_fixtures.py) step by step on two simulated nodes: every drbdadm,
modprobe-backed /proc/drbd and wipefs recording the simulator models must give the same exit
code, the same first message line and last output line, and /proc/drbd the same connection
state, roles and disk states (plus a progress line while a sync runs). What the reconciler
never runs (``drbdadm dump``, ``role``, ``-d adjust``, ``dmesg``...) is listed in
NOT_MODELLED, and the simulator must refuse it rather than answer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import M, FIXTURES

from reconciler.adapters import drbd as adapter
from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command
from reconciler.simulate import SimulatedHost
from reconciler.simulate.clock import SimClock
from reconciler.simulate.drbd_model import DrbdNet

OUT = FIXTURES / "outputs" / "drbd"
NOT_MODELLED = ("05_dump", "06_sh_dev", "07_sh_md_dev", "08_role_unconfigured", "09_dstate_unconfigured",
                "13_blkid_used", "19_dump_md", "22_cstate_wfc", "34_adjust_rate", "35_adjust_dry_run_rate",
                "41_adjust_noop_dry", "42_holders_mounted", "51_role", "52_cstate", "53_dstate",
                "60_link_down", "66_link_up", "69_dmesg", "70_dmesg", "71_cstate", "72_cstate",
                "81_dmesg", "84_dstate", "85_dmesg", "87_adjust_dry")


def _files(sub: str) -> list[str]:
    return sorted(f"{sub}/{p.name}" for p in (OUT / sub).iterdir())


RECORDINGS = ("r0.res", *_files("commands"), *_files("proc"))
COMPARES = tuple(f"drbd/{n}" for n in RECORDINGS)  # relative to tests/fixtures/outputs


def recorded(name: str) -> dict:
    text = (OUT / name).read_text()
    head, _, rest = text.partition("--- stdout\n")
    stdout, _, stderr = rest.partition("--- stderr\n")
    argv = head.splitlines()[0].removeprefix("argv: ").split(" ")
    rc = int(head.splitlines()[1].removeprefix("rc: "))
    return {"argv": argv, "rc": rc, "stdout": stdout, "stderr": stderr}


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


class Replay:
    def __init__(self):
        self.clock = SimClock()
        self.net = DrbdNet(self.clock)
        self.h: dict[str, SimulatedHost] = {}
        for node in ("node-a", "node-b"):
            h = SimulatedHost(clock=self.clock)
            for dev, size in (("/dev/vda", 64 * M), ("/dev/vdb", 64 * M), ("/dev/vdc", 16 * M)):
                h.add_device(dev, size)
            self.net.join(h, node)
            self.h[node] = h
        self.compared: set[str] = {"r0.res"}
        self.conf = (OUT / "r0.res").read_text()

    def _find(self, prefix: str, node: str) -> str:
        names = [n for n in RECORDINGS if n.split("/")[-1].startswith(prefix) and n.endswith(f"_{node}.txt")]
        assert len(names) == 1, (prefix, node, names)
        return names[0]

    def write_conf(self, text: str, nodes=("node-a", "node-b"), name: str = "r0") -> None:
        for n in nodes:
            self.h[n].md.files[f"/etc/drbd.d/{name}.res"] = text

    def cmd(self, prefix: str, node: str, stdin: str | None = None) -> None:
        name = self._find(prefix, node)
        rec = recorded(name)
        res = self.h[node].run(Command(argv=tuple(rec["argv"]), input=stdin))
        assert res.rc == rec["rc"], (name, res)
        want_err, got_err = lines(rec["stderr"]), lines(res.stderr)
        assert got_err[:1] == want_err[:1], (name, res.stderr, rec["stderr"])
        want_out, got_out = lines(rec["stdout"]), lines(res.stdout)
        if rec["argv"][0] == "wipefs":
            assert ([s["type"] for s in json.loads(res.stdout)["signatures"]]
                    == [s["type"] for s in json.loads(rec["stdout"])["signatures"]]), name
        else:
            assert got_out[-1:] == want_out[-1:], (name, res.stdout, rec["stdout"])
        self.compared.add(name)

    def refused(self, prefix: str, node: str) -> None:
        name = self._find(prefix, node)
        with pytest.raises(UnsupportedCommand):
            self.h[node].run(Command(argv=tuple(recorded(name)["argv"])))
        self.compared.add(name)

    def proc(self, prefix: str, node: str) -> None:
        name = self._find(prefix, node)
        text = (OUT / name).read_text()
        got = self.h[node].read("/proc/drbd")
        if text.startswith("# cat /proc/drbd rc 1"):
            assert got is None, name
        else:
            _, want = adapter.parse_proc(text)
            _, have = adapter.parse_proc(got)
            key = lambda m: {k: (v.cstate, v.role, v.peer_role, v.disk, v.peer_disk, v.sync is not None)  # noqa: E731
                             for k, v in m.items()}
            assert key(have) == key(want), (name, got, text)
        self.compared.add(name)


def test_the_recorded_session_replays_alike():
    r = Replay()
    a, b = "node-a", "node-b"
    for n in (a, b):
        r.proc("0" + ("1" if n == a else "3"), n)
        r.h[n].run(Command(argv=("modprobe", "drbd")))
        r.proc("0" + ("2" if n == a else "4"), n)
    r.write_conf(r.conf)
    for p in ("05_", "06_", "07_", "08_", "09_"):
        r.refused(p, a)
    used = (r.conf.replace("resource r0", "resource used").replace("/dev/vda", "/dev/vdc")
            .replace("drbd0 minor 0", "drbd9 minor 9").replace(":7789", ":7799"))
    r.write_conf(used, (a,), "used")
    r.h[a].model.device("/dev/vdc").signature = "ext4"
    r.cmd("10_", a, "no\n")
    r.cmd("11_", a, "")
    r.cmd("12_", a)
    r.refused("13_", a)
    r.cmd("14_", a)
    del r.h[a].md.files["/etc/drbd.d/used.res"]
    r.cmd("15_", a)
    r.cmd("16_", b)
    r.cmd("17_", a)
    r.cmd("18_", a, "no\n")
    r.refused("19_", a)
    r.cmd("20_", a)
    r.proc("21_", a)
    r.refused("22_", a)
    r.cmd("23_", b)
    r.proc("24_", a)
    r.proc("25_", b)
    r.cmd("26_", a)
    r.cmd("27_", b)
    r.cmd("28_", a)
    r.clock.advance(1.5)
    r.proc("29_", a)
    r.proc("30_", b)
    r.clock.advance(2)
    r.proc("31_", a)
    r.proc("32_", b)
    r.cmd("33_", b)
    r.refused("34_", a)
    r.write_conf(r.conf.replace("resync-rate 4M", "resync-rate 400M"))
    r.refused("35_", a)
    r.cmd("36_", a)
    r.cmd("37_", b)
    r.clock.advance(10)
    r.proc("38_", a)
    r.proc("39_", b)
    r.cmd("40_", a)
    r.refused("41_", a)
    r.net.nodes[a].mounts[0] = ["/mnt/d"]
    r.net.write(a, 0, "f1")
    r.refused("42_", a)
    r.cmd("43_", a)
    r.cmd("44_", b)
    r.proc("45_", a)
    r.net.nodes[a].mounts.clear()
    r.cmd("46_", a)
    r.proc("47_", a)
    r.cmd("48_", b)
    r.proc("49_", b)
    r.proc("50_", a)
    for p in ("51_", "52_", "53_"):
        r.refused(p, a)
    r.cmd("54_", a)
    r.proc("55_", a)
    r.proc("56_", b)
    r.cmd("57_", a)
    r.proc("58_", a)
    r.cmd("59_", a)
    r.net.write(b, 0, "before")
    r.refused("60_", a)
    r.net.cut(a, b)
    r.proc("61_", a)
    r.proc("62_", b)
    r.cmd("63_", a)
    r.net.write(a, 0, "on_a")
    r.net.write(b, 0, "on_b")
    r.proc("64_", a)
    r.proc("65_", b)
    r.refused("66_", a)
    r.net.restore(a, b)
    r.proc("67_", a)
    r.proc("68_", b)
    r.refused("69_", a)
    r.refused("70_", b)
    r.refused("71_", a)
    r.refused("72_", b)
    survivor = r.net.nodes[a].res[0].data
    r.cmd("73_", b)
    r.cmd("74_", b)
    r.cmd("75_", b)
    r.proc("76_", b)
    r.cmd("77_", a)
    r.cmd("78_", a)
    r.clock.advance(5)
    r.proc("79_", a)
    r.proc("80_", b)
    assert r.net.nodes[b].res[0].data == survivor
    r.refused("81_", a)
    r.net.fail_disk(b, "/dev/vda")
    r.net.write(a, 0, "after_fail")
    r.proc("82_", b)
    r.proc("83_", a)
    r.refused("84_", b)
    r.refused("85_", b)
    r.write_conf(r.conf.replace("resync-rate 4M", "resync-rate 400M").replace(
        "on node-b {\n    device /dev/drbd0 minor 0;\n    disk /dev/vda;",
        "on node-b {\n    device /dev/drbd0 minor 0;\n    disk /dev/vdb;"))
    r.cmd("86_", b)
    r.refused("87_", b)
    r.cmd("88_", b)
    r.proc("89_", b)
    r.clock.advance(5)
    r.proc("90_", b)
    r.proc("91_", a)
    assert r.net.nodes[b].res[0].data == r.net.nodes[a].res[0].data
    r.cmd("92_", a)
    r.cmd("93_", a)
    r.cmd("94_", b)
    r.proc("95_", b)
    assert r.compared == set(RECORDINGS), sorted(set(RECORDINGS) - r.compared)


def test_every_not_modelled_recording_is_refused_by_the_replay():
    names = {n.split("/")[-1].rsplit("_node-", 1)[0] for n in RECORDINGS if n.startswith("commands/")}
    for prefix in NOT_MODELLED:
        assert any(n.startswith(prefix) for n in names), prefix


def test_recorded_proc_drbd_parses():
    for name in RECORDINGS:
        if name.startswith("proc/") and not (OUT / name).read_text().startswith("#"):
            version, minors = adapter.parse_proc((OUT / name).read_text())
            assert version == "8.4.11"
            for m in minors.values():
                assert re.fullmatch(r"[A-Za-z]+", m.cstate) and m.role in ("Primary", "Secondary")
