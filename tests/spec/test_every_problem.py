"""Validation lists every problem of a spec at once (issue 18): a refused value no longer hides
the checks of the table around it, each problem is ``file: key.path: problem`` in the file's
order, and a misspelt key gets "did you mean".
"""

from __future__ import annotations

import contextlib
import io
import textwrap
from unittest import mock

import pytest

from reconciler import cli, errors
from reconciler.simulate import SimulatedHost
from reconciler.spec import loading

PHASES = """
[vg.vg0]
nodes = ["node-1"]
pvs = ["/dev/mapper/lun02", "/dev/mapper/lun30"]

[vg.vg0.lv.data]
size = "1G"
move = 3                                # a type error
placement = ["/dev/mapper/lun99"]       # not in pvs: checked by the VG

[vg.vg0.lv.logs]
size = "1000"                           # not whole sectors: checked by the LV
placement = ["/dev/mapper/lun98"]       # not in pvs

[vg.vg0.lv.web]
size = true                             # a type error
placement = ["/dev/mapper/lun97"]       # not in pvs
"""


def problems(tmp_path, text, name="s.toml"):
    (tmp_path / name).write_text(textwrap.dedent(text))
    with pytest.raises(errors.SpecError) as exc:
        loading.load(tmp_path)
    return exc.value


def test_a_type_error_no_longer_hides_the_size_and_placement_errors_of_the_file(tmp_path):
    exc = problems(tmp_path, PHASES)
    found = [(key, msg) for _, key, msg in exc.problems]
    assert [key for key, _ in found] == [
        "vg.vg0.lv.data.move", "vg.vg0.lv.data.placement[0]",
        "vg.vg0.lv.logs.size", "vg.vg0.lv.logs.placement[0]",
        "vg.vg0.lv.web.size", "vg.vg0.lv.web.placement[0]",
    ], found
    assert "not an integer" in found[0][1]
    assert "whole number of 512-byte sectors" in found[2][1]
    assert all("is not in this VG's pvs" in found[i][1] for i in (1, 3, 5))
    lines = str(exc).splitlines()[1:]
    assert lines[0].strip() == (f"{tmp_path / 's.toml'}: vg.vg0.lv.data.move: must be a string, "
                                f"one of \"pvmove\" or \"mirror-then-split\", not an integer")


def test_a_value_left_out_is_not_reported_again_as_missing(tmp_path):
    exc = problems(tmp_path, """
        [vg.vg0]
        nodes = [7]
        pvs = ["/dev/sdb", "sdc"]
        [vg.vg0.lv.data]
        size = "1G"
        placement = ["/dev/sdb"]
        """)
    keys = [key for _, key, _ in exc.problems]
    assert keys == ["vg.vg0.nodes[0]", "vg.vg0.pvs[1]"], exc.problems


def test_problems_of_the_vg_table_are_all_listed(tmp_path):
    exc = problems(tmp_path, """
        [vg.vg0]
        nodes = ["a", "b"]                  # several nodes: scope required
        pvs = ["/dev/sdb", "/dev/sdb"]      # twice
        [vg.vg0.lv.data]
        size = "1G"
        placement = ["/dev/sdc"]            # not in pvs
        """)
    keys = [key for _, key, _ in exc.problems]
    assert keys == ["vg.vg0.pvs[1]", "vg.vg0.lv.data.placement[0]", "vg.vg0.scope"]


def test_other_files_and_the_checks_across_files_still_run(tmp_path):
    (tmp_path / "a.toml").write_text('[vg.vg0]\nnodes = ["n"]\npvs = ["/dev/sdb"]\n')
    exc = problems(tmp_path, """
        [vg.vg1]
        nodes = ["n"]
        pvs = ["/dev/sdb", "/dev/sdc"]      # sdb is vg0's
        extent_size = "3M"                  # not a power of two
        [clone.db]
        nodes = ["n"]
        source = "/dev/sdd"
        target = "/dev/sdd"
        md = "/dev/md1"
        spead_limit_min = "1M"
        """, name="b.toml")
    found = [(f.rsplit("/", 1)[1], key) for f, key, _ in exc.problems]
    assert found == [("b.toml", "vg.vg1.extent_size"), ("b.toml", "clone.db.target"),
                     ("b.toml", "clone.db.spead_limit_min"), ("b.toml", "vg.vg1.pvs[0]")]


@pytest.mark.parametrize("text, key, hint", [
    ('[vg.vg0]\nnodes = ["n"]\npvs = ["/dev/sdb"]\n[vg.vg0.lv.data]\nsise = "1G"\n',
     "vg.vg0.lv.data.sise", "did you mean 'size'?"),
    ('[vg.vg0]\nnode = ["n"]\npvs = ["/dev/sdb"]\n', "vg.vg0.node", "did you mean 'nodes'?"),
    ('[vg.vg0]\nnodes = ["n"]\npvs = ["/dev/sdb"]\nextentsize = "4M"\n', "vg.vg0.extentsize",
     "did you mean 'extent_size'?"),
    ('[vgs.vg0]\nnodes = ["n"]\n', "vgs", "did you mean 'vg'?"),
    ('[clone.db]\nnodes = ["n"]\nsource = "/dev/a"\ntarget = "/dev/b"\nmd = "/dev/md1"\n'
     'stat = "split"\n', "clone.db.stat", "did you mean 'state'?"),
    ('[drbd.r0]\nprotocl = "C"\n[drbd.r0.nodes.a]\ndisk = "/dev/vdb"\naddress = "10.0.0.1"\n'
     '[drbd.r0.nodes.b]\ndisk = "/dev/vdb"\naddress = "10.0.0.2"\n', "drbd.r0.protocl",
     "did you mean 'protocol'?"),
])
def test_a_misspelt_key_gets_did_you_mean(tmp_path, text, key, hint):
    found = {k: msg for _, k, msg in problems(tmp_path, text).problems}
    assert key in found, found
    assert found[key].startswith("unknown key; " + hint), found[key]
    assert "see `reconcile schema`" in found[key]


def test_an_unknown_key_far_from_every_name_gets_no_guess(tmp_path):
    found = {k: msg for _, k, msg in problems(
        tmp_path, '[vg.vg0]\nnodes = ["n"]\npvs = ["/dev/sdb"]\ncolour = "blue"\n').problems}
    assert "did you mean" not in found["vg.vg0.colour"]
    assert "keys here: create_on, extent_size" in found["vg.vg0.colour"]


def test_an_invalid_spec_with_many_problems_touches_nothing_on_the_host(tmp_path):
    (tmp_path / "s.toml").write_text(textwrap.dedent(PHASES))
    ran = []
    real_run = SimulatedHost.run

    def spy(self, cmd):
        ran.append(cmd)
        return real_run(self, cmd)

    out = io.StringIO()
    with mock.patch.object(SimulatedHost, "run", spy), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(out):
        code = cli.main(["--once", "--simulate", "default", "--spec", str(tmp_path),
                         "--node", "node-1"])
    assert code == 1
    assert out.getvalue().count("s.toml: vg.vg0.lv.") == 6, out.getvalue()
    assert ran == []


def test_the_drbd_and_iscsi_tables_list_every_problem_with_its_key(tmp_path):
    exc = problems(tmp_path, """
        [drbd.r0]
        initial_sync_from = "c"             # not one of its nodes
        resync_rate = "512"                 # below 1K
        [drbd.r0.nodes.a]
        disk = "/dev/vdb"
        address = "10.0.0.1"
        role = "primary"
        [drbd.r0.nodes.b]
        disk = "/dev/vdb"
        address = "10.0.0.1"                # the same address and port
        role = "primary"                    # two primaries

        [iscsi_target.t]
        nodes = ["new", "new"]              # twice
        iqn = "iqn.2003-01.org.example.new:t"
        acls = ["iqn.2004-10.com.example:old"]
        [iscsi_target.t.lun.0]
        device = "/dev/md1"
        [iscsi_target.t.lun.1]
        device = "/dev/md1"                 # exported twice
        """)
    keys = [key for _, key, _ in exc.problems]
    assert keys == ["drbd.r0.initial_sync_from", "drbd.r0.resync_rate",
                    "drbd.r0.nodes.b.address", "drbd.r0.nodes.b.role",
                    "iscsi_target.t.nodes", "iscsi_target.t.lun.1.device"], exc.problems
