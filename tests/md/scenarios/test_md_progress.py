"""md's own progress counters reach what people read: the plan, `reconcile status`, the
metrics and the ETA ``--wait`` shows."""

from __future__ import annotations

import textwrap

from support import M

from reconciler import controller, status
from reconciler.simulate import SimulatedHost
from reconciler.spec import loading



def test_percent_speed_and_eta_come_from_md(tmp_path):
    host = SimulatedHost(rate_bytes_per_s=64 * M)
    host.add_device("/dev/vda", 64 * M)
    host.add_device("/dev/vdb", 64 * M)
    (tmp_path / "c.toml").write_text(textwrap.dedent("""
        [clone.db]
        nodes = ["n"]
        source = "/dev/vda"
        target = "/dev/vdb"
        md = "/dev/md100"
        speed_limit_max = "2M"
        """))
    loaded = loading.load(tmp_path)
    env = controller.Environment(runner=host, node="n", resolve=host.resolve_device,
                                 clock=host.clock)
    controller.reconcile_once(loaded, env)
    host.clock.advance(8)
    result = controller.reconcile_once(loaded, env)
    flight, = result.final.in_flight
    assert (flight.percent, flight.speed, flight.eta) == (25.0, 2 * M, 24.0)
    assert "25.0% at 2.0M/s, ETA 24s" in str(result.final)
    etas = status.EtaTracker().update(result.final.in_flight, host.clock.now())
    assert etas == {"clone:db:syncing": 24.0}  # md's, not a guess from one sample
    doc = status.pass_section(result, number=2, reason="test", started_at=0.0, finished_at=1.0,
                              etas=etas)
    assert doc["in_flight"] == [{"key": "clone:db:syncing", "object": "clone db",
                                 "what": "md recovery /dev/vda -> /dev/vdb", "percent": 25.0,
                                 "eta_s": 24.0, "speed_bps": 2.0 * M, "waiting_on": None,
                                 "idle_s": None, "stalled": False}]
    text = status.render({"state": status.PENDING, **doc})
    assert "clone db: md recovery /dev/vda -> /dev/vdb [######------------------]  25.0%  " \
           "ETA 24s  2.0 MiB/s" in text
