"""While the spec on disk is invalid, the daemon observes and reports, and changes nothing.

The case from the field: an operator withdraws an ``absent`` and makes a typo in the same
edit. The last good spec still says ``absent``; if it stayed in force, the LV the operator
meant to keep would be removed as soon as whatever held its removal back went away.
"""

from support import G

from reconciler import status
from reconciler.simulate import SimulatedHost

from .conftest import wait_for, write_spec
from .test_status import one, parse_textfile


GOOD_WITH_ABSENT = """
[vg.vg0]
nodes = ["*"]
scope = "local"
pvs = ["/dev/vdb", "/dev/vdc"]

[vg.vg0.lv.keep]
size = "1G"

[vg.vg0.lv.old]
state = "absent"
"""

# The absent is withdrawn (old is declared with its size) and a key is misspelt.
WITHDRAWN_WITH_TYPO = """
[vg.vg0]
nodes = ["*"]
scope = "local"
pvs = ["/dev/vdb", "/dev/vdc"]

[vg.vg0.lv.keep]
sise = "1G"

[vg.vg0.lv.old]
size = "1G"
"""

WITHDRAWN = WITHDRAWN_WITH_TYPO.replace("sise", "size")


def _host() -> SimulatedHost:
    host = SimulatedHost()
    host.add_device("/dev/vdb", 8 * G)
    host.add_vg("vg0", ["/dev/vdb"])
    host.add_lv("vg0", "keep", 1 * G)
    host.add_lv("vg0", "old", 1 * G)
    return host


def _removals(r):
    return [a for a in r.runner.argvs(mutating_only=True) if a[0] in ("lvremove", "vgremove")]


def test_withdrawn_absent_with_a_typo_never_removes_anything(start_daemon, spec_dir):
    write_spec(spec_dir / "vgglobal.toml", GOOD_WITH_ABSENT)
    host = _host()
    # /dev/vdc is not attached yet: the VG is blocked, so the removal waits.
    r = start_daemon(host=host, resync_seconds=0.2)
    assert r.daemon.state == status.BLOCKED
    assert _removals(r) == []

    write_spec(spec_dir / "vgglobal.toml", WITHDRAWN_WITH_TYPO)
    wait_for(lambda: r.daemon.spec_error is not None, timeout=3)
    with r.runner.lock:
        host.add_device("/dev/vdc", 8 * G)  # what held the old removal back is gone
    passes = r.daemon.passes
    wait_for(lambda: r.daemon.passes >= passes + 3, timeout=5)  # passes go on: they observe

    assert _removals(r) == []
    assert r.runner.argvs(mutating_only=True) == []  # nothing at all was changed
    assert "old" in host.vg("vg0").lvs
    doc = status.read(r.settings.status_dir)
    assert doc["state"] == status.SPEC_REFUSED
    assert "vgglobal.toml" in doc["spec"]["error"]
    assert "vg.vg0.lv.keep.sise" in doc["spec"]["error"]
    # The observation is reported against the last good spec: the drift it would fix.
    assert any(d["object"] == "lv vg0/old" for d in doc["drift"])
    assert doc["last_pass"]["applied"] == []
    m = parse_textfile(r.settings.metrics_file.read_text())
    assert one(m, "reconciler_spec_valid") == 0
    assert m["reconciler_state"]['node="node-1",state="spec-refused"'] == 1
    assert sum(m["reconciler_state"].values()) == 1
    assert "SPEC ON DISK REFUSED" in status.render(doc)
    assert status.exit_code(doc) == 1

    # Fixed: passes change things again, as the new spec says (old is kept).
    write_spec(spec_dir / "vgglobal.toml", WITHDRAWN)
    wait_for(lambda: r.daemon.state == status.IN_SYNC, timeout=5)
    assert ("vgextend", "vg0", "/dev/vdc") in r.runner.argvs(mutating_only=True)
    assert _removals(r) == []
    assert set(host.vg("vg0").lvs) >= {"keep", "old"}
    # (the metrics file is written right after the status file: wait for it)
    wait_for(lambda: one(parse_textfile(r.settings.metrics_file.read_text()),
                         "reconciler_spec_valid") == 1)
