import time

from reconciler import status
from reconciler.adapters import lvm

from .conftest import GROW_MYGFS, IN_SYNC, NEW_LV, wait_for, write_spec


def lvextends(runner):
    return [a for a in runner.argvs(mutating_only=True) if a[0] == "lvextend"]


def test_first_pass_at_start_changes_nothing_when_in_sync(start_daemon):
    r = start_daemon()
    assert r.daemon.passes == 1
    assert r.runner.argvs(mutating_only=True) == []
    assert r.daemon.state == status.IN_SYNC


def test_spec_change_causes_a_pass_that_applies_it(start_daemon, spec_dir):
    r = start_daemon()
    t0 = time.monotonic()
    write_spec(spec_dir / "vgglobal.toml", GROW_MYGFS)
    wait_for(lambda: lvextends(r.runner), timeout=3)
    started = next(t for t, c in r.runner.started if c.argv[0] == "lvextend")
    assert started - t0 < 1.5
    # The recorder notes a command as started before it runs: wait for its effect.
    wait_for(lambda: r.host.lv("vgglobal", "mygfs").extents * 4 * 2**20 == 330 * 2**30, timeout=3)
    wait_for(lambda: r.daemon.state == status.IN_SYNC)


def test_new_file_in_a_subdirectory_is_seen(start_daemon, spec_dir):
    r = start_daemon()
    (spec_dir / "vgglobal.toml").unlink()  # an empty file would be refused: declares nothing
    sub = spec_dir / "team-a"
    sub.mkdir()
    write_spec(sub / "vgglobal.toml", NEW_LV)
    wait_for(lambda: any(a[0] == "lvcreate" for a in r.runner.argvs(True)), timeout=3)


def test_a_burst_of_writes_causes_one_pass(start_daemon, spec_dir):
    r = start_daemon()
    before = r.daemon.passes
    for i in range(40):
        (spec_dir / f"extra-{i:02d}.toml").write_text(f"# file {i}\n")
        (spec_dir / "vgglobal.toml").write_text(IN_SYNC + f"\n# edit {i}\n")
        time.sleep(0.002)
    wait_for(lambda: r.daemon.passes > before, timeout=3)
    time.sleep(0.6)
    assert r.daemon.passes == before + 1


def test_the_daemons_own_reads_do_not_trigger_passes(start_daemon):
    r = start_daemon()
    time.sleep(0.8)
    assert r.daemon.passes == 1
    assert r.runner.observations() == 1


def test_broken_spec_keeps_the_last_good_one_and_is_reported(start_daemon, spec_dir, tmp_path):
    r = start_daemon(resync_seconds=0.3)
    good = r.daemon.in_force.digest
    write_spec(spec_dir / "vgglobal.toml", GROW_MYGFS.replace('size = "330G"', 'size = "33'))
    wait_for(lambda: r.daemon.spec_error is not None, timeout=3)
    passes = r.daemon.passes
    wait_for(lambda: r.daemon.passes >= passes + 2, timeout=3)  # resyncs go on
    assert r.daemon.in_force.digest == good
    assert lvextends(r.runner) == []
    doc = status.read(r.settings.status_dir)
    assert doc["spec"]["digest"] == good
    assert "TOML syntax error" in doc["spec"]["error"]
    assert "vgglobal.toml" in doc["spec"]["error"]
    assert "reconciler_spec_valid{node=\"node-1\"} 0" in r.settings.metrics_file.read_text()
    write_spec(spec_dir / "vgglobal.toml", GROW_MYGFS)
    wait_for(lambda: lvextends(r.runner), timeout=3)
    wait_for(lambda: r.daemon.spec_error is None)


def test_invalid_values_are_refused_too(start_daemon, spec_dir):
    r = start_daemon()
    write_spec(spec_dir / "vgglobal.toml", IN_SYNC.replace('size = "324G"', 'size = "-3G"'))
    wait_for(lambda: r.daemon.spec_error is not None, timeout=3)
    assert "vg.vgglobal.lv.mygfs.size" in r.daemon.spec_error
    assert r.runner.argvs(mutating_only=True) == []


def test_no_valid_spec_at_start_runs_no_pass_and_keeps_waiting(start_daemon, spec_dir):
    write_spec(spec_dir / "vgglobal.toml", "[vg.x\n")
    r = start_daemon(resync_seconds=0.3)
    assert r.daemon.state == status.NO_SPEC
    assert r.runner.started == []
    write_spec(spec_dir / "vgglobal.toml", IN_SYNC)
    # (the pass count goes up as a pass starts, its state when it ends: wait for the state)
    wait_for(lambda: r.daemon.state == status.IN_SYNC, timeout=3)
    assert r.daemon.passes >= 1


def test_periodic_resync_catches_a_change_made_behind_its_back(start_daemon):
    r = start_daemon(resync_seconds=0.4, watch=False)
    assert r.runner.argvs(mutating_only=True) == []
    with r.runner.lock:
        assert r.host.run(lvm.pvcreate("/dev/mapper/lun31")).ok
        assert r.host.run(lvm.vgextend("vgglobal", ("/dev/mapper/lun31",))).ok
    wait_for(lambda: ("vgreduce", "vgglobal", "/dev/mapper/lun31") in r.runner.argvs(True),
             timeout=3)
    wait_for(lambda: r.daemon.state == status.IN_SYNC)


def test_passes_come_sooner_while_an_operation_is_in_flight(start_daemon, spec_dir):
    write_spec(spec_dir / "vgglobal.toml", IN_SYNC.replace(
        'pvs = ["/dev/mapper/lun02", "/dev/mapper/lun30"]', 'pvs = ["/dev/mapper/lun02"]'))
    r = start_daemon(resync_seconds=60)
    assert r.daemon.state == status.PENDING
    assert r.daemon.next_reason == "operation in flight"
    wait_for(lambda: r.daemon.passes >= 3, timeout=3)
    pvmoves = [a for a in r.runner.argvs(True) if a[0] == "pvmove"]
    assert len(pvmoves) == 1  # started once, then watched


def test_sighup_equivalent_request_forces_a_pass(start_daemon):
    r = start_daemon()
    r.daemon.request_pass("test")
    wait_for(lambda: r.daemon.passes == 2, timeout=2)
    assert r.runner.observations() == 2


def test_stop_while_idle_returns_zero_and_writes_stopped(start_daemon):
    r = start_daemon()
    assert r.stop() == 0
    doc = status.read(r.settings.status_dir)
    assert doc["state"] == status.STOPPED


def test_should_stop_defers_every_step_not_yet_started(tmp_path):
    from reconciler import controller, executing
    from reconciler.simulate import demo
    from reconciler.spec import loading

    from .conftest import TWO_STEPS
    write_spec(tmp_path / "s.toml", TWO_STEPS)
    host = demo.default_host()
    env = controller.Environment(runner=host, node="n", resolve=host.resolve_device,
                                 clock=host.clock)
    result = controller.reconcile_once(loading.load(tmp_path), env, should_stop=lambda: True)
    assert [c.argv[0] for c in host.calls] == ["lvm"]
    assert {r.outcome for r in result.report.results} == {executing.Outcome.DEFERRED}
    assert len(result.report.results) == 2
    assert result.exit_code == controller.EXIT_PENDING


def test_a_symlinked_checkout_swapped_atomically_is_followed(start_daemon, tmp_path):
    from .conftest import TWO_STEPS
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    for v, text in ((v1, IN_SYNC), (v2, GROW_MYGFS)):
        v.mkdir()
        v.chmod(0o755)
        write_spec(v / "vgglobal.toml", text)
    current = tmp_path / "current"
    current.symlink_to(v1)
    r = start_daemon(spec=current, resync_seconds=60, error_backoff_seconds=60)
    (tmp_path / "next").symlink_to(v2)
    (tmp_path / "next").rename(current)
    wait_for(lambda: lvextends(r.runner), timeout=3)
    write_spec(v2 / "vgglobal.toml", TWO_STEPS)  # edits in the new target are watched too
    wait_for(lambda: any(a[0] == "lvcreate" for a in r.runner.argvs(True)), timeout=3)


def test_a_no_op_pass_on_unchanged_inputs_reuses_the_last_plan_and_a_change_is_seen(
        start_daemon):
    """Issue 22: the daemon's second no-op pass (same spec, same report bytes, same
    kernel files) reuses the first one's plan; a change made behind its back (one more PV in
    the VG: another report) is planned and undone as before."""
    r = start_daemon(resync_seconds=60)
    r.daemon.request_pass("test")
    # (the pass count goes up as a pass starts: wait for what its end shows)
    wait_for(lambda: r.daemon.passes == 2 and r.daemon.memory.reused == 1
             and r.daemon.state == status.IN_SYNC, timeout=2)
    assert r.runner.observations() == 2  # it observed all the same
    with r.runner.lock:
        assert r.host.run(lvm.pvcreate("/dev/mapper/lun31")).ok
        assert r.host.run(lvm.vgextend("vgglobal", ("/dev/mapper/lun31",))).ok
    r.daemon.request_pass("test")
    wait_for(lambda: ("vgreduce", "vgglobal", "/dev/mapper/lun31") in r.runner.argvs(True),
             timeout=3)
    assert r.daemon.memory.reused == 1
