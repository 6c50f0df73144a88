"""Spec writers that are not an atomic rename (issue 8, item 15): a file truncated and
written in place in slow chunks, and a ``git pull`` of many files. Nothing may be applied
from a half-written spec: no mutating command before the final content is loaded, and what
is applied is what the final spec says.
"""

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from reconciler import status, watching

from .conftest import IN_SYNC, wait_for, write_spec

# The final spec: a new LV placed on lun02. Cut after its size line (a valid spec on its
# own), it would create the LV on any PV of the VG: a different lvcreate.
FINAL = IN_SYNC + """
[vg.vgglobal.lv.newlv]
size = "1G"
placement = ["/dev/mapper/lun02"]
"""
FINAL_LVCREATE = ("lvcreate", "--yes", "--name", "newlv", "--size", "1073741824b",
                  "vgglobal", "/dev/mapper/lun02")


def _mutations(r):
    return [(t, c.argv) for t, c in list(r.runner.started) if c.mutates]


def _write_slowly(path, pause: float = 0.6) -> float:
    """FINAL written in place in three chunks, each followed by ``pause`` seconds (0.6:
    longer than the debounce, 0.2 s, and its cap's half; 1.5: longer than the cap, a stalled
    scp or curl); returns when the last one was written."""
    text = textwrap.dedent(FINAL)
    cut = text.index("placement")
    with open(path, "w") as f:  # truncates: the old content is gone at once
        for chunk in (text[:cut], text[cut:], "# written by a slow tool\n"):
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
            time.sleep(pause)
        return time.monotonic()


def _applied_only_whole(r, done: float) -> None:
    wait_for(lambda: _mutations(r), timeout=8)
    wait_for(lambda: r.daemon.state == status.IN_SYNC, timeout=8)
    mutations = _mutations(r)
    assert mutations[0][0] >= done, f"a command ran before the file was complete: {mutations}"
    assert [argv for _, argv in mutations] == [FINAL_LVCREATE]
    assert {pv.name for pv in r.host.lv("vgglobal", "newlv").pvs()} == {"/dev/mapper/lun02"}


def test_a_file_written_in_place_in_slow_chunks_is_applied_only_whole(start_daemon, spec_dir):
    r = start_daemon()
    _applied_only_whole(r, _write_slowly(spec_dir / "vgglobal.toml"))


# The location itself replaced while the daemon runs (review 11): what is written there is
# tracked through the parent directory's watch.

def test_a_spec_directory_replaced_by_a_file_written_slowly(start_daemon, spec_dir):
    r = start_daemon()
    time.sleep(0.5)
    shutil.rmtree(spec_dir)
    _applied_only_whole(r, _write_slowly(spec_dir))  # often on the directory's old inode


# A new watch cannot know what was opened before it: what the kernel says is open for
# writing there (/proc) is taken as being written (reviews 11 and 12). The directory is moved
# away rather than removed, so what replaces it never has its inode: the watch is re-armed.

def test_a_spec_directory_moved_away_and_replaced_by_a_file_with_long_pauses(start_daemon,
                                                                            spec_dir):
    r = start_daemon()
    time.sleep(0.5)
    spec_dir.rename(spec_dir.with_name("specs.old"))
    _applied_only_whole(r, _write_slowly(spec_dir, pause=1.5))


def test_a_spec_file_that_was_not_there_written_with_long_pauses(start_daemon, tmp_path):
    spec = tmp_path / "spec.toml"
    r = start_daemon(spec=spec)
    time.sleep(0.5)
    _applied_only_whole(r, _write_slowly(spec, pause=1.5))


def test_a_spec_directory_replaced_while_a_pass_runs_by_a_file_written_slowly(start_daemon,
                                                                             spec_dir):
    """The loop re-arms the watch after the pass, and the next pass comes at once (the
    events that poked it are old by then): the file being written must already be known."""
    r = start_daemon()
    time.sleep(0.5)
    r.runner.gate_match = ("lvm", "fullreport")
    r.daemon.request_pass("test")
    assert r.runner.gate_entered.wait(5)
    spec_dir.rename(spec_dir.with_name("specs.old"))
    done: list[float] = []
    writer = threading.Thread(target=lambda: done.append(_write_slowly(spec_dir, pause=0.9)))
    writer.start()
    time.sleep(0.3)
    r.runner.gate_match = None
    r.runner.gate_release.set()
    writer.join()
    _applied_only_whole(r, done[0])


def test_a_spec_directory_made_again_on_the_removed_ones_inode_is_watched_again(
        start_daemon, spec_dir, monkeypatch):
    """ext4 often gives a directory made again the removed one's inode: the location looks
    the same, but its watch ended with the directory (tmpfs never reuses one at once, so the
    reuse is made certain here)."""
    r = start_daemon()
    watcher = r.daemon.watcher
    same = watcher._current_identity()
    shutil.rmtree(spec_dir)
    spec_dir.mkdir()
    monkeypatch.setattr(watcher, "_current_identity", lambda: same)
    time.sleep(1.5)  # the daemon has seen it (an empty spec directory)
    tmp = spec_dir / ".vgglobal.toml.tmp"
    tmp.write_text(textwrap.dedent(FINAL))
    os.replace(tmp, spec_dir / "vgglobal.toml")
    done = time.monotonic()
    wait_for(lambda: _mutations(r), timeout=5)  # the resync is 60 s away: the watch saw it
    assert _mutations(r)[0][0] >= done
    assert [argv for _, argv in _mutations(r)] == [FINAL_LVCREATE]


def test_a_spec_directory_moved_away_and_made_again_then_written_slowly_inside(start_daemon,
                                                                               spec_dir):
    """The pass the new directory's event asks for comes before the loop would set the
    watch up again: it does so itself before reading (review 13, B1)."""
    r = start_daemon()
    time.sleep(0.5)
    spec_dir.rename(spec_dir.with_name("specs.old"))
    spec_dir.mkdir()
    os.chmod(spec_dir, 0o755)
    _applied_only_whole(r, _write_slowly(spec_dir / "vgglobal.toml"))


def test_a_spec_directory_not_there_at_start_made_and_written_slowly(start_daemon, tmp_path):
    d = tmp_path / "later"
    r = start_daemon(spec=d, error_backoff_seconds=5.0)  # the default: no early retry pass
    time.sleep(0.5)
    d.mkdir()
    os.chmod(d, 0o755)
    _applied_only_whole(r, _write_slowly(d / "vgglobal.toml"))


def test_a_directory_moved_into_the_spec_tree_while_a_file_in_it_is_written(start_daemon,
                                                                            spec_dir, tmp_path):
    """Its first writes were made before any watch of it existed (review 13, M2)."""
    r = start_daemon()
    time.sleep(0.5)
    (spec_dir / "vgglobal.toml").unlink()  # the VG's spec moves to the new subdirectory
    time.sleep(1.5)
    stage = tmp_path / "stage"
    stage.mkdir()
    os.chmod(stage, 0o755)

    def move_in():
        time.sleep(0.3)  # after the first chunk
        os.rename(stage, spec_dir / "site2")

    mover = threading.Thread(target=move_in)
    mover.start()
    done = _write_slowly(stage / "vgglobal.toml", pause=0.9)  # on through its open descriptor
    mover.join()
    _applied_only_whole(r, done)


def test_a_daemon_started_while_a_spec_file_is_written(start_daemon, spec_dir):
    done: list[float] = []
    writer = threading.Thread(
        target=lambda: done.append(_write_slowly(spec_dir / "vgglobal.toml", pause=0.9)))
    writer.start()
    time.sleep(0.3)  # the first chunk is there, the writer pauses
    r = start_daemon(wait_ready=False)
    writer.join()
    _applied_only_whole(r, done[0])


def test_a_symlinked_spec_file_open_as_the_daemon_starts_is_applied_once_closed(
        start_daemon, spec_dir, tmp_path):
    """specs/vgglobal.toml -> ../available/global.toml, open for writing as the daemon
    starts: /proc shows it (by the name its descriptor has), so nothing is applied while it
    is open; its close happens where no watch sees it, so it is forgotten once /proc shows
    no writer, not refused for ever (reviews 13, M1, and 14)."""
    available = tmp_path / "available"
    available.mkdir()
    os.chmod(available, 0o755)
    target = available / "global.toml"  # named otherwise than the link
    (spec_dir / "vgglobal.toml").unlink()
    os.symlink(target, spec_dir / "vgglobal.toml")
    with open(target, "w") as f:
        f.write(textwrap.dedent(FINAL))
        f.flush()
        r = start_daemon(write_wait_seconds=2.0, wait_ready=False)
        link = str(spec_dir / "vgglobal.toml")
        wait_for(lambda: r.daemon.watcher is not None and r.daemon.watcher.holder(link),
                 timeout=5)
        time.sleep(1.0)
        assert _mutations(r) == []
    wait_for(lambda: _mutations(r), timeout=8)
    assert [argv for _, argv in _mutations(r)] == [FINAL_LVCREATE]
    wait_for(lambda: r.daemon.state == status.IN_SYNC, timeout=8)
    assert r.daemon.spec_error is None


def test_a_file_held_open_for_writing_when_the_watch_is_set_up_again_names_its_holder(
        start_daemon, spec_dir):
    """A process holding a spec file open for writing (here for a lock, never writing) is
    seen only in /proc when the directory is swapped: the spec is refused while it holds
    it, the refusal names the process, and the spec is applied once it lets go."""
    new = spec_dir.with_name("specs.new")
    new.mkdir()
    os.chmod(new, 0o755)
    write_spec(new / "vgglobal.toml", FINAL)
    holder = open(new / "vgglobal.toml", "r+")
    try:
        r = start_daemon(write_wait_seconds=1.0, resync_seconds=0.5)
        spec_dir.rename(spec_dir.with_name("specs.old"))
        new.rename(spec_dir)
        wait_for(lambda: r.daemon.spec_error is not None, timeout=8)
        assert f"held open for writing by pid {os.getpid()} (" in r.daemon.spec_error
        assert _mutations(r) == []
    finally:
        holder.close()  # a read-write descriptor's close: the watch sees it
    wait_for(lambda: _mutations(r), timeout=8)
    assert [argv for _, argv in _mutations(r)] == [FINAL_LVCREATE]


def test_a_spec_file_moved_into_the_tree_while_it_is_written(start_daemon, spec_dir, tmp_path):
    """watchdog reports a file moved in from outside as created (review 14, G1)."""
    r = start_daemon()
    time.sleep(0.5)
    (spec_dir / "vgglobal.toml").unlink()
    time.sleep(1.5)
    stage = tmp_path / "stage"
    stage.mkdir()

    def move_in():
        time.sleep(0.3)  # after the first chunk
        os.rename(stage / "vgglobal.toml", spec_dir / "vgglobal.toml")

    mover = threading.Thread(target=move_in)
    mover.start()
    done = _write_slowly(stage / "vgglobal.toml", pause=0.9)  # on through its descriptor
    mover.join()
    _applied_only_whole(r, done)


def test_a_directory_moved_out_while_a_file_in_it_is_written_leaves_nothing_waited_for(
        start_daemon, spec_dir, tmp_path):
    """Its files leave with it, without an event of their own (review 14, G2)."""
    r = start_daemon(write_wait_seconds=2.0)
    sub = spec_dir / "site2"
    sub.mkdir()
    os.chmod(sub, 0o755)
    time.sleep(1.0)
    with open(sub / "other.toml", "w") as f:
        f.write("# being written\n")
        f.flush()
        wait_for(lambda: r.daemon.watcher.writing(), timeout=5)
        os.rename(sub, tmp_path / "site2.out")
        wait_for(lambda: not r.daemon.watcher.writing(), timeout=5)
    write_spec(spec_dir / "vgglobal.toml", FINAL)
    wait_for(lambda: _mutations(r), timeout=8)
    assert [argv for _, argv in _mutations(r)] == [FINAL_LVCREATE]
    assert r.daemon.spec_error is None


@pytest.mark.parametrize("proc_sees_writers", [True, False])
def test_a_directory_moved_within_the_tree_while_a_file_in_it_is_written(
        start_daemon, spec_dir, monkeypatch, proc_sees_writers):
    """What was known of the file follows it to its new path, also where /proc cannot show
    its writer (another PID namespace) (review 15, F1)."""
    if not proc_sees_writers:
        monkeypatch.setattr(watching, "open_for_writing", lambda files: {})
    r = start_daemon()
    time.sleep(0.5)
    (spec_dir / "vgglobal.toml").unlink()
    a = spec_dir / "a"
    a.mkdir()
    os.chmod(a, 0o755)
    time.sleep(1.5)

    def move():
        time.sleep(0.3)  # after the first chunk
        os.rename(a, spec_dir / "b")

    mover = threading.Thread(target=move)
    mover.start()
    done = _write_slowly(a / "vgglobal.toml", pause=0.9)  # on through its descriptor, in b/
    mover.join()
    _applied_only_whole(r, done)


def test_a_single_file_location_below_a_symlink_is_asked_of_proc(start_daemon, tmp_path):
    """lnk/etc/spec.toml with lnk -> real, the daemon started while it is written
    (review 14, G3)."""
    real = tmp_path / "real"
    (real / "etc").mkdir(parents=True)
    os.chmod(real / "etc", 0o755)
    os.symlink(real, tmp_path / "lnk")
    spec = tmp_path / "lnk" / "etc" / "spec.toml"
    done: list[float] = []
    writer = threading.Thread(target=lambda: done.append(_write_slowly(spec, pause=0.9)))
    writer.start()
    time.sleep(0.3)
    r = start_daemon(spec=spec, wait_ready=False)
    writer.join()
    _applied_only_whole(r, done[0])


def test_a_new_file_in_the_tree_asks_proc_about_itself_only(start_daemon, spec_dir):
    """A spec file held read-write for a lock, never written, is not taken as being written
    because another file was saved beside it (review 14, G4)."""
    r = start_daemon(write_wait_seconds=2.0)
    time.sleep(0.5)
    with open(spec_dir / "vgglobal.toml", "r+"):
        time.sleep(0.5)
        write_spec(spec_dir / "extra.toml", """
            [vg.vgextra]
            nodes = ["*"]
            scope = "local"
            pvs = ["/dev/mapper/lun99"]
            """)
        passes = r.daemon.passes
        wait_for(lambda: r.daemon.passes > passes, timeout=5)
        assert not r.daemon.watcher.writing() and r.daemon.spec_error is None


def test_a_symlinked_spec_directory_whose_target_is_made_again_is_watched_again(
        tmp_path, monkeypatch):
    """The link is unchanged and (inode reuse made certain here) so is what it resolves to:
    only the end of the target's watch tells."""
    target = tmp_path / "v1"
    target.mkdir()
    link = tmp_path / "specs"
    os.symlink(target, link)
    seen: list[str] = []
    w = watching.SpecWatcher(link, seen.append)
    w.start()
    try:
        same = w._current_identity()
        monkeypatch.setattr(w, "_current_identity", lambda: same)
        shutil.rmtree(target)
        target.mkdir()
        wait_for(w._watch_ended, timeout=5)
        assert w.refresh() and not w.refresh()
        (target / "a.toml").write_text("a = 1\n")
        wait_for(lambda: any(p.endswith("a.toml") for p in seen), timeout=5)
    finally:
        w.stop()


def test_a_close_seen_while_proc_is_read_is_not_taken_as_open(tmp_path, monkeypatch):
    d = tmp_path / "specs"
    d.mkdir()
    spec = d / "a.toml"
    spec.write_text("a = 1\n")
    w = watching.SpecWatcher(d, lambda path: None)
    w.start()
    try:
        def scan_that_sees_a_close(files):
            w._track("closed", [str(spec)])  # the writer closes while /proc is read
            return {str(spec): "pid 1 (writer)"}

        monkeypatch.setattr(watching, "open_for_writing", scan_that_sees_a_close)
        w._seed_writing({})
        assert w.writing() == {} and w.holder(str(spec)) is None
        monkeypatch.setattr(watching, "open_for_writing", lambda files: {str(spec): "pid 1 (w)"})
        w._seed_writing({})
        assert list(w.writing()) == [str(spec)] and w.holder(str(spec)) == "pid 1 (w)"
        monkeypatch.setattr(watching, "open_for_writing", lambda files: {})
        w.recheck()  # its writer has gone, its close unseen: forgotten
        assert w.writing() == {}
    finally:
        w.stop()


def test_a_file_left_open_for_writing_is_refused_and_nothing_changes(start_daemon, spec_dir):
    r = start_daemon(write_wait_seconds=1.0, resync_seconds=0.3)
    text = textwrap.dedent(FINAL)
    with open(spec_dir / "vgglobal.toml", "w") as f:
        f.write(text[:text.index("placement")])
        f.flush()
        wait_for(lambda: r.daemon.spec_error is not None, timeout=5)
        assert "still open for writing" in r.daemon.spec_error
        passes = r.daemon.passes
        wait_for(lambda: r.daemon.passes > passes, timeout=5)  # passes go on, observing
        assert _mutations(r) == []
        assert r.daemon.state == status.SPEC_REFUSED
        f.write(text[text.index("placement"):])
    wait_for(lambda: _mutations(r), timeout=5)
    assert [argv for _, argv in _mutations(r)] == [FINAL_LVCREATE]


def _git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.mark.real_process
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_git_pull_of_many_files_is_applied_once_complete(start_daemon, tmp_path):
    origin = tmp_path / "origin"
    origin.mkdir()
    _git("init", "-q", cwd=origin)
    others = 60  # VGs of other nodes: this node ignores them, git writes them all
    for i in range(others):
        (origin / f"node9-vg{i:02d}.toml").write_text(
            f'[vg.vg{i:02d}]\nnodes = ["node-9"]\npvs = ["/dev/sd{i:02d}"]\n')
    (origin / "vgglobal.toml").write_text(textwrap.dedent(IN_SYNC))
    _git("add", "-A", cwd=origin)
    _git("commit", "-qm", "one", cwd=origin)
    checkout = tmp_path / "checkout"
    _git("clone", "-q", str(origin), str(checkout), cwd=tmp_path)
    os.chmod(checkout, 0o755)
    r = start_daemon(spec=checkout)
    assert r.daemon.state == status.IN_SYNC
    # The next commit changes every file; vgglobal's new LV comes with its placement.
    for i in range(others):
        (origin / f"node9-vg{i:02d}.toml").write_text(
            f'[vg.vg{i:02d}]\nnodes = ["node-9"]\npvs = ["/dev/sd{i:02d}", "/dev/sx{i:02d}"]\n')
    (origin / "vgglobal.toml").write_text(textwrap.dedent(FINAL))
    _git("add", "-A", cwd=origin)
    _git("commit", "-qm", "two", cwd=origin)
    _git("pull", "-q", "--ff-only", cwd=checkout)
    done = time.monotonic()
    wait_for(lambda: _mutations(r), timeout=5)
    wait_for(lambda: r.daemon.state == status.IN_SYNC, timeout=5)
    mutations = _mutations(r)
    assert mutations[0][0] >= done - 0.2  # not before the pull (allowing its last write)
    assert [argv for _, argv in mutations] == [FINAL_LVCREATE]
    assert r.daemon.in_force.digest != "" and r.daemon.spec_error is None
    # one pass for the whole pull (and the one at start)
    assert r.daemon.passes <= 3


def test_the_kernel_is_asked_which_spec_files_are_open_for_writing(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text("")
    st = os.stat(spec)
    files = {(st.st_dev, st.st_ino): str(spec)}
    with open(spec, "a"):
        found = watching.open_for_writing(files)
        assert list(found) == [str(spec)] and found[str(spec)].startswith(f"pid {os.getpid()} (")
    assert watching.open_for_writing(files) == {}
    with open(spec):  # read only
        assert watching.open_for_writing(files) == {}
    with open(spec, "r+"):
        assert set(watching.open_for_writing(files)) == {str(spec)}


@pytest.mark.parametrize("single_file", [True, False])
def test_edits_in_place_and_new_files_do_not_re_arm_the_watch(tmp_path, single_file):
    """Only the location itself made, removed or replaced, or a watch ended, re-arms: a
    re-arm forgets what the events said was being written (asked of /proc again)."""
    d = tmp_path / "specs"
    d.mkdir()
    location = d / "spec.toml" if single_file else d
    (d / "spec.toml").write_text("a = 1\n")
    seen: list[str] = []
    w = watching.SpecWatcher(location, seen.append)
    w.start()
    try:
        assert not w.refresh()
        with open(d / "spec.toml", "a") as f:
            f.write("b = 2\n")
        (d / "other.toml").write_text("c = 3\n")
        wait_for(lambda: len(seen) >= 2, timeout=5)
        time.sleep(0.2)
        assert not w.refresh() and not w.refresh()
        os.rename(location, tmp_path / "away")
        wait_for(lambda: w._stale, timeout=5)
        assert w.refresh() and not w.refresh()
    finally:
        w.stop()


@pytest.mark.real_process
def test_a_writer_whose_main_thread_has_ended_is_seen_in_proc(tmp_path):
    """/proc/PID/fd of a process whose main thread has ended is empty: its other threads'
    descriptor tables are read instead (review 14, R2)."""
    spec = tmp_path / "spec.toml"
    spec.write_text("")
    st = os.stat(spec)
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import ctypes, threading, time
        f = open({str(spec)!r}, "a")
        threading.Thread(target=time.sleep, args=(30,)).start()
        open({str(tmp_path / "ready")!r}, "w").close()
        ctypes.CDLL(None).pthread_exit(None)
        """)])
    try:
        wait_for(lambda: (tmp_path / "ready").exists() and Path(
            f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
            timeout=10)
        found = watching.open_for_writing({(st.st_dev, st.st_ino): str(spec)})
        assert list(found) == [str(spec)] and found[str(spec)].startswith(f"pid {child.pid} (")
    finally:
        child.kill()
        child.wait()
