"""``reconcile --once`` keeps its last no-op pass on disk (``noop_memo``, issue 22): the next
``--once`` whose code, spec, node, settings and every answer it reads are the same, byte for
byte and in the same order, gives that pass's plan without parsing and planning again; it
still runs every command and reads every file the observation would. Anything else is a
full pass whose plan is the one a fresh process makes, and that never asks the host twice.
A file not this user's alone, or one that does not load, is never used."""

from __future__ import annotations

import dataclasses
import os
import pickle

import pytest
from support import G
from support.edited import Edited
from support.fixtures import disks_host
from support.mdfix import clone_host, clone_spec
from support.nodes import Nodes
from support.specs import local_vg

from reconciler import controller, noop_memo, planning
from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.runner import Command, CommandResult

NODE = "node-1"


def _spec(**lv):
    return local_vg("vg0", ["/dev/vdb", "/dev/vdc"],
                    lv=lv or {"data": {"size": "64M"}, "logs": {"size": "8M"}})


def _settled(tmp_path, spec=None):
    """A host converged to ``spec`` by the daemon-style passes, then a memo file path in a
    directory of this user's alone."""
    host = disks_host(G, "/dev/vdb", "/dev/vdc", vg="vg0")
    edited = Edited(host)
    nodes = Nodes.of_hosts(tmp_path, {NODE: host})
    nodes.nodes[NODE].runner = edited
    loaded = nodes.spec(spec or _spec())
    assert nodes.one_pass(NODE, loaded).changes
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    return nodes, edited, loaded, str(d / noop_memo.FILE_NAME)


def _argvs(p):
    return [c.argv for c in p.commands]


def test_a_second_once_with_the_same_inputs_gives_the_saved_plan(tmp_path, calls):
    nodes, _, loaded, memo = _settled(tmp_path)
    first = nodes.one_pass(NODE, loaded, memo=memo)
    assert first.exit_code == 0 and not first.changes
    assert os.stat(memo).st_mode & 0o777 == 0o600
    before = dict(calls)
    second = nodes.one_pass(NODE, loaded, memo=memo)
    assert (calls["parse"], calls["plan"]) == (before["parse"], before["plan"])
    # the same commands ran (the check asks every read again), the same plan and figures
    assert _argvs(second) == _argvs(first) and second.commands[0].argv == FULLREPORT_ARGV
    assert second.result.processes == first.result.processes
    assert second.exit_code == 0 and second.plan.as_dict() == first.plan.as_dict()
    assert second.result.observed is None  # nothing was built
    fresh = nodes.one_pass(NODE, loaded)  # what a process without the file plans
    assert fresh.plan.as_dict() == second.plan.as_dict()


def test_one_changed_byte_plans_again_and_asks_nothing_twice(tmp_path, calls):
    nodes, edited, loaded, memo = _settled(tmp_path)
    first = nodes.one_pass(NODE, loaded, memo=memo)
    # LV "logs" reported as "logz": logs must be made again (a dry run: the plan is looked at)
    edited.edit = lambda t: t.replace('"lv_name":"logs"', '"lv_name":"logz"', 1)
    before = dict(calls)
    second = nodes.one_pass(NODE, loaded, memo=memo, dry_run=True)
    assert (calls["parse"], calls["plan"]) == (before["parse"] + 1, before["plan"] + 1)
    assert any("logs" in s.key for s in second.plan.steps), second.plan.as_dict()
    assert _argvs(second) == _argvs(first)  # the report read by the check is the pass's
    # a plan with a step is never saved: the file still holds the no-op pass, and the
    # host as it was before the edit gives it again
    edited.edit = None
    before = dict(calls)
    third = nodes.one_pass(NODE, loaded, memo=memo)
    assert (calls["parse"], calls["plan"]) == (before["parse"], before["plan"])
    assert third.plan.as_dict() == first.plan.as_dict()


def test_a_later_read_that_differs_plans_again(tmp_path, calls):
    """The report is the same but a device resolves to another number: the check goes on
    past the report, and the difference in a later read is found."""
    nodes, edited, loaded, memo = _settled(tmp_path)
    first = nodes.one_pass(NODE, loaded, memo=memo)
    edited.moved["/dev/vdc"] = "/dev/vdb"  # one disk named twice
    before = dict(calls)
    second = nodes.one_pass(NODE, loaded, memo=memo)
    assert calls["plan"] == before["plan"] + 1
    assert second.plan.as_dict() != first.plan.as_dict()
    assert _argvs(second) == _argvs(first)


@pytest.mark.parametrize("change", ["spec", "node", "code", "setting"])
def test_another_key_plans_again(tmp_path, calls, monkeypatch, change):
    nodes, _, loaded, memo = _settled(tmp_path)
    nodes.one_pass(NODE, loaded, memo=memo)
    if change == "spec":
        loaded = nodes.spec(_spec(data={"size": "64M"}, logs={"size": "8M"},
                                  more={"size": "4M", "state": "absent"}))
    elif change == "node":  # the same host, run as another node of the spec
        loaded = nodes.spec({"vg": {"vg0": {**_spec()["vg"]["vg0"],
                                            "nodes": [NODE, "node-2"]}}})
        nodes.one_pass(NODE, loaded, memo=memo)  # saved for node-1
        before = dict(calls)
        nodes.one_pass(NODE, loaded, memo=memo, as_node="node-2")
        assert calls["plan"] == before["plan"] + 1 and calls["parse"] == before["parse"] + 1
        return
    elif change == "code":  # this process started on other files
        monkeypatch.setattr(noop_memo, "IMPORTED", noop_memo.IMPORTED + b"upgraded")
    else:
        real_settings = controller._memo_settings
        monkeypatch.setattr(controller, "_memo_settings",
                            lambda env: real_settings(env) + ("lio applier gone",))
    before = dict(calls)
    nodes.one_pass(NODE, loaded, memo=memo)
    assert calls["plan"] == before["plan"] + 1 and calls["parse"] == before["parse"] + 1


def test_the_code_identity_follows_the_source_files(tmp_path):
    """An edited or replaced file changes it, even to the same size and modification time
    (its change time and inode do); bytecode caches do not; a package without sources has
    none, and nothing is saved for it."""
    import reconciler
    root = tmp_path / "pkg"

    def ident():
        return noop_memo.code_identity(reconciler._package_files(str(root)))
    (root / "sub" / "__pycache__").mkdir(parents=True)
    (root / "a.py").write_text("x = 60.0\n")
    (root / "sub" / "b.py").write_text("y = 1\n")
    a = ident()
    assert a and ident() == a
    (root / "sub" / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"cache")
    assert ident() == a
    st = os.stat(root / "a.py")
    (root / "a.py").write_text("x = 90.0\n")  # same size
    os.utime(root / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns))  # same modification time
    assert ident() != a
    b = ident()
    (root / "c.py").write_text("")
    assert ident() != b
    (root / "a.py").unlink()
    (root / "sub" / "b.py").unlink()
    (root / "c.py").unlink()
    (root / "a.pyc").write_bytes(b"compiled only")
    assert ident() == b""
    assert noop_memo.code_identity(reconciler._package_files(str(tmp_path / "missing"))) == b""
    # this process's: taken as the package was first imported, and the same now
    assert noop_memo.IMPORTED == noop_memo.code_identity(reconciler.FILES_AT_START)
    assert noop_memo.code_identity() == noop_memo.IMPORTED


@pytest.mark.real_process  # a new interpreter: what importing the module imports
def test_the_code_identity_follows_the_dependencies_files_without_importing_them():
    """pydantic, pydantic-core and tomli build the spec's values: a file of theirs changed
    (an upgrade) changes the identity; one not installed is known as such; one whose files
    cannot be listed leaves none (nothing saved). Found without importing any of them, so
    that a saved pass is used without pydantic (tests/cli/test_startup_imports.py)."""
    import subprocess
    import sys

    import reconciler
    deps = noop_memo.dependency_files()
    assert [name for name, _ in deps] == list(noop_memo.DEPENDENCIES)
    # each listed, its installation's record with it (tomli's compiled modules, outside
    # its package, change that record); typing_extensions is one module, not a package
    assert all(found and all(files for _, files in found[0]) and found[1]
               for _, found in deps)
    files = reconciler.FILES_AT_START
    base = noop_memo.code_identity(files, deps)
    assert base and base == noop_memo.code_identity(files, noop_memo.dependency_files())

    def pydantic_as(change):
        return [(name, ([(root, change(list(fl))) for root, fl in found[0]], found[1])
                 if name == "pydantic" else found) for name, found in deps]
    one_bigger = pydantic_as(lambda fl: fl[:-1] + [(fl[-1][0], fl[-1][1] + 1, *fl[-1][2:])])
    assert noop_memo.code_identity(files, one_bigger) not in (base, b"")
    assert noop_memo.code_identity(files, pydantic_as(lambda fl: None)) == b""
    reinstalled = [(name, (found[0], [(d, (1, 2, 3, 4)) for d, _ in found[1]])
                    if name == "tomli" else found) for name, found in deps]
    assert noop_memo.code_identity(files, reinstalled) not in (base, b"")
    gone = [(name, None if name == "tomli" else found) for name, found in deps]
    assert noop_memo.code_identity(files, gone) not in (base, b"")
    out = subprocess.run([sys.executable, "-c", "import sys, reconciler.noop_memo; "
                          "print(sorted(set(reconciler.noop_memo.DEPENDENCIES) & set(sys.modules)))"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.path.dirname(
                             os.path.dirname(reconciler.__file__))})
    assert out.stdout.strip() == "[]"


def test_files_changed_since_the_process_started_are_not_saved(tmp_path, monkeypatch):
    nodes, _, loaded, memo = _settled(tmp_path)
    monkeypatch.setattr(noop_memo, "code_identity", lambda *files: b"the files now")
    assert nodes.one_pass(NODE, loaded, memo=memo).exit_code == 0
    assert not os.path.exists(memo)


@pytest.mark.parametrize("how", ["group-writable", "world-writable dir", "symlink",
                                 "garbage", "other object"])
def test_a_file_that_is_not_ours_alone_or_does_not_load_is_a_miss(tmp_path, calls, how):
    nodes, _, loaded, memo = _settled(tmp_path)
    first = nodes.one_pass(NODE, loaded, memo=memo)
    if how == "group-writable":
        os.chmod(memo, 0o620)
    elif how == "world-writable dir":
        os.chmod(os.path.dirname(memo), 0o777)
    elif how == "symlink":
        os.rename(memo, memo + ".real")
        os.symlink(memo + ".real", memo)
    elif how == "garbage":
        with open(memo, "wb") as f:
            f.write(b"\x80\x05not a pickle")
    else:
        with open(memo, "wb") as f:
            pickle.dump({"plan": "nothing"}, f)
    before = dict(calls)
    second = nodes.one_pass(NODE, loaded, memo=memo)
    assert calls["plan"] == before["plan"] + 1
    assert second.plan.as_dict() == first.plan.as_dict()
    assert _argvs(second) == _argvs(first)


def test_a_plan_with_a_step_or_a_clone_is_never_saved(tmp_path):
    nodes, _, loaded, memo = _settled(tmp_path)
    grown = nodes.spec(_spec(data={"size": "64M"}, logs={"size": "16M"}))
    p = nodes.one_pass(NODE, grown, memo=memo, dry_run=True)
    assert p.plan.steps and not os.path.exists(memo)
    host = clone_host()
    (tmp_path / "c").mkdir()
    nodes = Nodes.of_hosts(tmp_path / "c", {NODE: host})
    loaded = nodes.spec(clone_spec("split"))
    nodes.converge(loaded, seconds=30)
    assert nodes.nodes[NODE].last.exit_code == 0
    assert nodes.one_pass(NODE, loaded, memo=memo).exit_code == 0
    assert not os.path.exists(memo)


def test_a_plan_that_read_the_time_is_never_saved(tmp_path, monkeypatch):
    nodes, _, loaded, memo = _settled(tmp_path)
    plan = planning.plan
    monkeypatch.setattr(planning, "plan",
                        lambda *a, **kw: dataclasses.replace(plan(*a, **kw), reads_time=True))
    assert nodes.one_pass(NODE, loaded, memo=memo).exit_code == 0
    assert not os.path.exists(memo)


def test_a_file_read_that_differs_plans_again(tmp_path, calls, monkeypatch):
    """Not a command's output: a file the observation reads (here the clone ledger, empty
    before, a record now) answers differently; the pass observes and plans again."""
    nodes, edited, loaded, memo = _settled(tmp_path)
    first = nodes.one_pass(NODE, loaded, memo=memo)
    ledger = nodes.env(NODE).ledger
    read = edited.read
    monkeypatch.setattr(edited, "read", lambda path, *, host="local": (
        '{"format": 1, "clones": {}}' if path == ledger else read(path, host=host)))
    before = dict(calls)
    second = nodes.one_pass(NODE, loaded, memo=memo, dry_run=True)
    assert calls["plan"] == before["plan"] + 1
    assert [s.key for s in second.plan.steps] == ["ledger:clones"]  # the format-1 ledger rewritten
    assert _argvs(second) == _argvs(first)


def test_a_command_that_changes_the_host_is_never_saved_nor_asked():
    class Host:
        def __init__(self):
            self.ran = []

        def run(self, cmd):
            self.ran.append(cmd.argv)
            raise AssertionError("asked")

    read = ("run", noop_memo._command_args(Command(argv=("lvremove", "vg0/data"))), b"x" * 32)
    saved = noop_memo.Saved(noop_memo.FORMAT, b"k", (read,), None)
    host = Host()
    same, _ = noop_memo.check(saved, host, lambda p: None)
    assert not same and host.ran == []
    t = noop_memo.Transcript(saved_runner(), lambda p: None)
    t.run(Command(argv=("lvremove", "vg0/data")))
    assert t.unsaveable
    with pytest.raises(ValueError, match="changes the host"):
        noop_memo.save("/nonexistent/memo", b"k", t, None)


def saved_runner():
    class Ok:
        def run(self, cmd):
            return CommandResult(command=cmd, rc=0, stdout="", stderr="")
    return Ok()


def _failing_superblock(edited, monkeypatch, failing: list[bool]):
    read_bytes = edited.read_bytes

    def flaky(path, offset, length, *, host="local"):
        if failing[0] and path == "/dev/mapper/vg0-data":
            raise OSError(5, "Input/output error")
        return read_bytes(path, offset, length, host=host)
    monkeypatch.setattr(edited, "read_bytes", flaky)


def test_a_pass_where_a_read_raised_is_not_saved(tmp_path, calls, monkeypatch):
    """The superblock cannot be read: the LV is reported, nothing to do; the error might
    not come again (and a file system smaller than its LV would then be grown), so such a
    pass is never saved."""
    nodes, edited, loaded, memo = _settled(
        tmp_path, local_vg("vg0", ["/dev/vdb", "/dev/vdc"],
                           lv={"data": {"size": "64M", "resize_fs": True}}))
    failing = [True]
    _failing_superblock(edited, monkeypatch, failing)
    first = nodes.one_pass(NODE, loaded, memo=memo)
    assert not first.plan.steps and "superblock" in str(first.plan.as_dict())
    assert not os.path.exists(memo)
    failing[0] = False
    assert nodes.one_pass(NODE, loaded, memo=memo).exit_code == 0 and os.path.exists(memo)


def test_a_read_that_raises_in_the_check_is_a_miss_the_pass_handles(tmp_path, calls,
                                                                      monkeypatch):
    """Saved while the superblock read; now it raises: the check stops there, and the
    observation meets the same error (not asked twice) and reports it as always."""
    nodes, edited, loaded, memo = _settled(
        tmp_path, local_vg("vg0", ["/dev/vdb", "/dev/vdc"],
                           lv={"data": {"size": "64M", "resize_fs": True}}))
    assert nodes.one_pass(NODE, loaded, memo=memo).exit_code == 0 and os.path.exists(memo)
    asked = []
    failing = [True]
    _failing_superblock(edited, monkeypatch, failing)
    flaky = edited.read_bytes
    monkeypatch.setattr(edited, "read_bytes", lambda *a, **kw: asked.append(a) or flaky(*a, **kw))
    before = dict(calls)
    p = nodes.one_pass(NODE, loaded, memo=memo)
    assert calls["plan"] == before["plan"] + 1
    assert "superblock" in str(p.plan.as_dict()) and len(asked) == 1
    fresh = nodes.one_pass(NODE, loaded)
    assert fresh.plan.as_dict() == p.plan.as_dict()


@pytest.mark.parametrize("path,text,secrets", [
    ("/etc/reconciler/a.chap", "userid = a\nsecret = abcdefghijkl\n", {"/etc/reconciler/a.chap"}),
    ("/sys/kernel/config/target/iscsi/iqn.x/tpgt_1/acls/iqn.y/auth/password", "abcdefghijkl", ()),
    ("/sys/kernel/config/target/iscsi/discovery_auth/userid", "a", ()),
    ("/sys/class/iscsi_session/session1/password", "abcdefghijkl", ()),
    ("/etc/iscsi/nodes/iqn.x/10.0.0.1,3260,1/default", "node.startup = manual", ()),
    ("/var/lib/pacemaker/cib/cib.xml", "<cib/>", ()),
    ("/etc/drbd.d/r0.res", "resource r0 { net { shared-secret s3cr3t; } }", ()),
])
def test_a_transcript_that_read_a_secret_is_not_saved(path, text, secrets):
    class Files:
        def read(self, path, *, host="local"):
            return text
    t = noop_memo.Transcript(Files(), lambda p: None, frozenset(secrets))
    t.read(path)
    assert t.unsaveable == "a secret was read" and t.secret
    with pytest.raises(ValueError, match="secret"):
        noop_memo.save("/nonexistent/memo", b"k", t, None)
    quiet = noop_memo.Transcript(type("None", (), {"read": lambda *a, **k: None})(),
                                 lambda p: None, frozenset(secrets))
    quiet.read(path)  # not there: no secret read
    assert not quiet.unsaveable


def test_pacemakers_output_is_a_secret():
    class Host:
        def run(self, cmd):
            return CommandResult(command=cmd, rc=0, stdout="<cib/>", stderr="")
    t = noop_memo.Transcript(Host(), lambda p: None)
    t.run(Command(argv=("cibadmin", "--query"), mutates=False))
    assert t.secret


def test_an_older_saved_pass_goes_once_a_secret_is_read(tmp_path, monkeypatch):
    nodes, edited, loaded, memo = _settled(tmp_path)
    assert nodes.one_pass(NODE, loaded, memo=memo).exit_code == 0 and os.path.exists(memo)
    # (as if lvm's report could hold a secret: the rule is the same for every read; and
    # one byte of it differs, so the pass observes: a hit's answers are the saved pass's)
    monkeypatch.setattr(noop_memo, "_SECRET_COMMANDS", ("lvm",))
    edited.edit = lambda t: t.replace('"seg_start_pe":"0"', '"seg_start_pe":"1"', 1)
    nodes.one_pass(NODE, loaded, memo=memo, dry_run=True)
    assert not os.path.exists(memo)
    monkeypatch.setattr(noop_memo, "_SECRET_COMMANDS", ())
    edited.edit = None
    assert nodes.one_pass(NODE, loaded, memo=memo).exit_code == 0 and os.path.exists(memo)


def test_the_commands_fields_are_all_kept_and_asked_again():
    import dataclasses
    cmd = Command(argv=("lvm", "fullreport"), host="h", mutates=False, timeout=7.0,
                  input="x")
    args = noop_memo._command_args(cmd)
    assert len(args) == len(dataclasses.fields(Command))
    seen = []

    class Host:
        def run(self, c):
            seen.append(c)
            return CommandResult(command=c, rc=0, stdout="", stderr="")
    noop_memo._ask(Host(), lambda p: None, "run", args)
    assert seen == [cmd]


def test_a_save_removes_what_a_killed_save_left_and_nothing_else(tmp_path):
    """A process killed between the temporary file and its rename leaves a
    ``.once-memo.*.tmp``; the next save removes such leftovers (older than a save takes),
    not a younger one (another save under way) nor anything else."""
    nodes, _, loaded, memo = _settled(tmp_path)
    d = os.path.dirname(memo)
    old, young, other, longer = (os.path.join(d, n) for n in (
        ".once-memo.abc123_x.tmp", ".once-memo.def456_y.tmp", ".other.abc123_x.tmp",
        ".once-memo.other.abc123_x.tmp"))  # (the last: another memo's, named once-memo.other)
    for f in (old, young, other, longer):
        with open(f, "wb") as fh:
            fh.write(b"partial")
    past = os.stat(old).st_mtime - noop_memo.LEFTOVER_S - 60
    for f in (old, other, longer):
        os.utime(f, (past, past))
    os.symlink(memo + ".elsewhere", os.path.join(d, ".once-memo.zzzzzzzz.tmp"))
    nodes.one_pass(NODE, loaded, memo=memo)
    assert os.path.exists(memo)
    assert not os.path.exists(old)
    assert all(os.path.lexists(f) for f in (young, other, longer,
                                            os.path.join(d, ".once-memo.zzzzzzzz.tmp")))
