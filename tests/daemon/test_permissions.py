import os

import pytest

from reconciler import daemon, errors, status

from .conftest import GROW_MYGFS, wait_for, write_spec


def refused(path, **kw):
    with pytest.raises(errors.SpecError) as exc:
        daemon.check_permissions(path, **kw)
    return str(exc.value)


def test_root_owned_spec_is_accepted(spec_dir):
    daemon.check_permissions(spec_dir)
    daemon.check_permissions(spec_dir / "vgglobal.toml")


def test_spec_dir_writable_by_others_is_refused(spec_dir):
    os.chmod(spec_dir, 0o777)
    msg = refused(spec_dir)
    assert f"{spec_dir}: the spec directory is writable by others (mode 0777)" in msg
    assert f"chmod go-w {spec_dir}" in msg


def test_spec_file_writable_by_others_is_refused(spec_dir):
    os.chmod(spec_dir / "vgglobal.toml", 0o646)
    assert "a spec file is writable by others (mode 0646)" in refused(spec_dir)


def test_subdirectory_writable_by_others_is_refused(spec_dir):
    sub = spec_dir / "team"
    sub.mkdir()
    write_spec(sub / "x.toml", "")
    os.chmod(sub, 0o757)
    assert f"{sub}: a spec subdirectory is writable by others" in refused(spec_dir)


def test_group_write_is_refused_unless_the_group_is_root(spec_dir):
    f = spec_dir / "vgglobal.toml"
    os.chmod(f, 0o664)
    if os.geteuid() == 0:
        os.chown(f, -1, 0)
        daemon.check_permissions(spec_dir)
        os.chown(f, -1, 100)
    if os.stat(f).st_gid != 0:
        assert "writable by group" in refused(spec_dir)


def test_files_owned_by_an_untrusted_user_are_refused(spec_dir):
    msg = refused(spec_dir, trusted_uids=frozenset({4242}))
    assert f"the spec directory is owned by uid {os.stat(spec_dir).st_uid}, not root" in msg


def test_world_writable_ancestor_needs_the_sticky_bit(tmp_path):
    shared = tmp_path / "shared"
    spec = shared / "specs"
    spec.mkdir(parents=True)
    os.chmod(spec, 0o755)
    os.chmod(shared, 0o1777)
    daemon.check_permissions(spec)
    os.chmod(shared, 0o777)
    assert "an ancestor directory of the spec is writable by others" in refused(spec)


def test_daemon_refuses_a_spec_dir_made_writable_by_others(start_daemon, spec_dir):
    r = start_daemon()
    good = r.daemon.in_force.digest
    os.chmod(spec_dir, 0o777)
    write_spec(spec_dir / "vgglobal.toml", GROW_MYGFS)
    doc = wait_for(lambda: (d := status.read(r.settings.status_dir))["spec"]["error"] and d,
                   timeout=3)
    assert doc["spec"]["error"].startswith("spec refused (permissions)")
    assert "writable by others" in doc["spec"]["error"]
    assert doc["spec"]["digest"] == good
    assert r.runner.argvs(mutating_only=True) == []
    os.chmod(spec_dir, 0o755)
    r.daemon.request_pass("permissions fixed")
    wait_for(lambda: any(a[0] == "lvextend" for a in r.runner.argvs(True)), timeout=3)
    assert r.daemon.spec_error is None
