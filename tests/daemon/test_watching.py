"""The spec watcher's inotify watches ask only for what can change the specs: the files
written beside a spec directory never reach the daemon's process."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from reconciler import watching

from .conftest import wait_for


@pytest.fixture
def seen(monkeypatch):
    """Every event watchdog hands the watcher's handler, and the paths it triggered for."""
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    on_any_event = watching._Handler.on_any_event

    def counting(self, event):
        with lock:
            events.append((event.event_type, os.fsdecode(event.src_path)))
        on_any_event(self, event)

    monkeypatch.setattr(watching._Handler, "on_any_event", counting)
    return events


def watch(location: Path) -> tuple[watching.SpecWatcher, list[str]]:
    triggered: list[str] = []
    w = watching.SpecWatcher(location, triggered.append)
    w.start()
    return w, triggered


def test_writes_beside_a_spec_directory_never_reach_the_process(tmp_path, seen):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.toml").write_text("[vg.vg0]\n")
    log = tmp_path / "report.json"  # a file written next to the spec directory
    w, triggered = watch(specs)
    try:
        with log.open("w") as f:
            for _ in range(50):
                f.write("x" * 4096)
                f.flush()
        log.read_text()
        (specs / "a.toml").read_text()  # the loader's own read
        (specs / "b.toml").write_text("[vg.vg1]\n")
        wait_for(lambda: str(specs / "b.toml") in triggered)
        # its creation is an entry like any other; none of its 50 writes nor its reads
        assert [e for e in seen if e[1] == str(log)] == [("created", str(log))], seen
        assert not [e for e in seen if e[0] in ("opened", "closed_no_write")], seen
        # the spec directory itself replaced is still seen through the parent's watch
        os.rename(specs, tmp_path / "old")
        wait_for(lambda: str(specs) in triggered)
    finally:
        w.stop()


def test_a_spec_file_written_in_place_is_seen_through_its_parents_watch(tmp_path, seen):
    spec = tmp_path / "spec.toml"
    spec.write_text("[vg.vg0]\n")
    w, triggered = watch(spec)
    try:
        with spec.open("a") as f:
            f.write("# more\n")
            f.flush()
            wait_for(lambda: spec.as_posix() in w.writing())
        wait_for(lambda: spec.as_posix() not in w.writing() and spec.as_posix() in triggered)
        assert ("modified", str(spec)) in seen and ("closed", str(spec)) in seen, seen
    finally:
        w.stop()


def test_a_spec_file_still_to_come_is_tracked_while_it_is_written(tmp_path, seen):
    spec = tmp_path / "spec.toml"
    w, triggered = watch(spec)
    try:
        with spec.open("w") as f:
            f.write("[vg.vg0]\n")
            f.flush()
            wait_for(lambda: spec.as_posix() in w.writing())
        wait_for(lambda: spec.as_posix() not in w.writing())
        assert spec.as_posix() in triggered
    finally:
        w.stop()
