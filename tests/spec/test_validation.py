"""What the validator refuses (issue 8 item 16, item 8's scope) and how it says it (issue 9).

Each case here passed validation on dd85a21 and failed later (at vgcreate, or worse), or was
reported in Python's words, raw, or uncut.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from support import ROOT

from reconciler import errors, units
from reconciler.spec import loading, models


VG = """
[vg.vg0]
nodes = ["node-1"]
pvs = ["/dev/sdb", "/dev/sdc"]

[vg.vg0.lv.data]
size = "1G"
"""

CLONE = """
[clone.db]
nodes = ["node-1"]
source = "/dev/mapper/old"
target = "/dev/mapper/new"
md = "/dev/md100"
"""


def problems(tmp_path, text, name="s.toml"):
    (tmp_path / name).write_text(textwrap.dedent(text))
    with pytest.raises(errors.SpecError) as exc:
        loading.load(tmp_path)
    return exc.value.problems


def one(tmp_path, text):
    (f, key, msg), = problems(tmp_path, text)
    assert f.endswith("s.toml")
    return key, msg


# -- extent_size (lvm2's rule, measured in the lab) ------------------------------------------

@pytest.mark.parametrize("value, words", [
    ('"1000"', "not a power of two"), ('"3M"', "not a power of two"),
    ('"7K"', "not a power of two"), ('"192K"', "not a power of two"),
    ('"2K"', "below 4K"), ('"512"', "below 4K"), ('"2T"', "above 1T"),
    ('"0"', "positive"), ("true", "not a boolean"),
])
def test_extent_sizes_lvm2_would_refuse_are_refused(tmp_path, value, words):
    key, msg = one(tmp_path, VG.replace('pvs = [', f"extent_size = {value}\npvs = ["))
    assert key == "vg.vg0.extent_size" and words in msg, msg


@pytest.mark.parametrize("value, size", [('"4K"', 4096), ('"4M"', 4 << 20), ('"32MiB"', 32 << 20),
                                         ('"1T"', 1 << 40), ("8388608", 8 << 20)])
def test_extent_sizes_lvm2_takes_are_accepted(tmp_path, value, size):
    (tmp_path / "s.toml").write_text(VG.replace('pvs = [', f"extent_size = {value}\npvs = ["))
    assert loading.load(tmp_path).spec.vg["vg0"].extent_size == size


# -- sizes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, words", [
    ('"8E"', "8 EiB"), ("9223372036854775807", "512-byte"), ("9223372036854775808", "8 EiB"),
    ('"8192P"', "8 EiB"), ('"١٢G"', "not a size"), ('"１２G"', "not a size"),
    ('"10\\nG"', "not a size"), ('"10G\\n"', "not a size"), ('"10\\u00a0G"', "not a size"),
    ('"\\t10G"', "not a size"), ('"1.0000001K"', "whole number of bytes"),
    pytest.param('"' + "9" * 5000 + '"', "8 EiB", id="5000-digits"), ("1.5", "not a float"),
    ("[1]", "not an array"),
])
def test_sizes_are_ascii_whole_and_below_8_eib(tmp_path, value, words):
    key, msg = one(tmp_path, VG.replace('size = "1G"', f"size = {value}"))
    assert key == "vg.vg0.lv.data.size" and words in msg, msg
    assert len(msg) < 300


def test_the_largest_sizes_below_8_eib_are_accepted():
    assert units.parse_size("8191P") == 8191 * 1024**5
    assert units.parse_size("1 K") == 1024 and units.parse_size(" 10 GiB ") == 10 << 30


def test_a_size_that_is_not_a_multiple_of_1k_can_be_printed():
    # Size.__str__ -> format_size -> f"{n}B" used to call Size.__str__ again, forever.
    assert str(units.parse_size("1000")) == "1000B" and repr(units.Size(1536)) == "Size(1536B)"


# -- booleans --------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ['"yes"', "1", '"off"', '"true"', "0"])
def test_booleans_are_strict(tmp_path, value):
    key, msg = one(tmp_path, VG + f"allow_shrink = {value}\n")
    assert key == "vg.vg0.lv.data.allow_shrink" and "must be true or false" in msg


# -- the same device twice -------------------------------------------------------------------

@pytest.mark.parametrize("extra, key", [
    ('[vg.vg1]\nnodes = ["node-2"]\npvs = ["/dev/sdc"]\n', "vg.vg1.pvs[0]"),
    ('[vg.vg0.lv.x]\nsize = "1G"\nplacement = ["/dev/sdb", "/dev/sdb"]\n', "vg.vg0.lv.x.placement[1]"),
    (CLONE.replace("/dev/mapper/old", "/dev/sdb"), "clone.db.source"),
    (CLONE.replace("/dev/mapper/new", "/dev/sdc"), "clone.db.target"),
    (CLONE + CLONE.replace("[clone.db]", "[clone.web]").replace('"/dev/md100"', '"/dev/md101"')
     .replace("/dev/mapper/old", "/dev/mapper/other"), "clone.web.target"),
])
def test_a_device_path_appears_once_in_the_whole_spec(tmp_path, extra, key):
    found = problems(tmp_path, VG + extra)
    assert any(k == key for _, k, _ in found), found


def test_a_pv_listed_twice_names_the_second_item(tmp_path):
    key, msg = one(tmp_path, VG.replace('"/dev/sdc"]', '"/dev/sdc", "/dev/sdb"]'))
    assert key == "vg.vg0.pvs[2]" and "listed twice" in msg


# -- scope (interfaces.md #2) ----------------------------------------------------------------

@pytest.mark.parametrize("nodes", ['["*"]', '["a", "b"]', '["a", "*"]'])
def test_scope_must_be_written_when_several_hosts_may_run_the_vg(tmp_path, nodes):
    key, msg = one(tmp_path, VG.replace('["node-1"]', nodes))
    assert key == "vg.vg0.scope" and '"local"' in msg and '"shared"' in msg


def test_one_node_is_local_by_default_and_local_is_accepted_for_a_fleet(tmp_path):
    (tmp_path / "a.toml").write_text(VG)
    (tmp_path / "b.toml").write_text(VG.replace("vg0", "fleet").replace('["node-1"]', '["*"]')
                                     .replace("/dev/sd", "/dev/vd")
                                     .replace("pvs =", 'scope = "local"\npvs ='))
    spec = loading.load(tmp_path).spec
    assert spec.vg["vg0"].scope is models.Scope.LOCAL
    assert spec.vg["fleet"].scope is models.Scope.LOCAL


def test_a_shared_vg_needs_the_node_that_creates_it(tmp_path):
    key, msg = one(tmp_path, VG.replace('["node-1"]', '["a", "b"]')
                   .replace("pvs =", 'scope = "shared"\npvs ='))
    assert key == "vg.vg0.create_on" and "the one node that creates it" in msg


def test_every_shipped_spec_validates():
    for location in [ROOT / "specs" / "demo", *sorted((ROOT / "specs" / "examples").glob("*.toml"))]:
        loading.load(location)


def test_schema_says_what_the_validator_says():
    schema = models.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    check = jsonschema.Draft202012Validator(schema)
    import tomllib
    for path in [ROOT / "specs" / "demo" / "vgglobal.toml",
                 *sorted((ROOT / "specs" / "examples").glob("*.toml"))]:
        assert not list(check.iter_errors(tomllib.loads(path.read_text()))), path
    text = json.dumps(schema)
    assert '"null"' not in text  # TOML has no null: optional keys are left out
    fleet = {"vg": {"v": {"nodes": ["*"], "pvs": ["/dev/sdb"]}}}
    assert list(check.iter_errors(fleet))  # scope required for "*"
    fleet["vg"]["v"]["scope"] = "local"
    assert not list(check.iter_errors(fleet))
    assert list(check.iter_errors({"vg": {"v": {"nodes": ["a"], "pvs": ["/dev/sdb"],
                                                "lv": {"x": {"size": "1G", "allow_shrink": "yes"}}}}}))


# -- messages in TOML's words, one notation, escaped, cut ------------------------------------

@pytest.mark.parametrize("change, key, words", [
    (('nodes = ["node-1"]', 'nodes = "node-1"'), "vg.vg0.nodes", "must be an array, not a string"),
    (('nodes = ["node-1"]', "nodes = []"), "vg.vg0.nodes", "must list at least 1 item"),
    (('pvs = ["/dev/sdb", "/dev/sdc"]', 'pvs = ["/dev/sdb", 3]'), "vg.vg0.pvs[1]",
     "must be a string, not an integer"),
    (("[vg.vg0.lv.data]\nsize = \"1G\"", 'lv = 5'), "vg.vg0.lv", "must be a table, not an integer"),
    (('size = "1G"', 'size = "1G"\nmove = "copy"'), "vg.vg0.lv.data.move",
     "must be \"pvmove\" or \"mirror-then-split\", not 'copy'"),
    (('size = "1G"', "size = \"1G\"\nstate = 1979-05-27"), "vg.vg0.lv.data.state",
     "not a date"),
])
def test_messages_use_tomls_words(tmp_path, change, key, words):
    found = problems(tmp_path, VG.replace(*change))
    assert any(k == key and words in m for _, k, m in found), found
    for _, _, m in found:
        for python_word in ("valid tuple", "dictionary", "instance of", "after validation",
                            "Input should", "Value error"):
            assert python_word not in m, m


def test_one_index_notation_everywhere(tmp_path):
    (tmp_path / "a.toml").write_text(VG)
    found = problems(tmp_path, VG.replace("vg0", "vg1").replace('"/dev/sdb", ', "")
                     .replace('"/dev/sdc"', '"/dev/sdd", "sde", "/dev/sdc"'), name="b.toml")
    keys = [k for _, k, _ in found]
    # the bad path, and the PV another VG claims, by its index in the file
    assert keys == ["vg.vg1.pvs[1]", "vg.vg1.pvs[2]"]
    assert "'/dev/sdc' is also claimed by VG 'vg0'" in found[1][2]
    found = problems(tmp_path, VG.replace("vg0", "vg1").replace('"/dev/sdb", ', ""),
                     name="b.toml")
    assert [k for _, k, _ in found] == ["vg.vg1.pvs[0]"]


def test_a_huge_key_is_cut_with_its_length(tmp_path):
    key, msg = one(tmp_path, VG + "k" * 1_000_000 + " = 1\n")
    assert len(key) < 120 and "(1000000 characters)" in key and "unknown key" in msg


def test_a_huge_name_is_cut_in_the_message_too(tmp_path):
    found = problems(tmp_path, VG.replace("[vg.vg0]", '[vg."' + "x" * 200_000 + ';"]')
                     .replace("[vg.vg0.lv.data]", '[vg."' + "x" * 200_000 + ';".lv.data]'))
    assert found and all(len(k) + len(m) < 600 for _, k, m in found), [len(m) for _, _, m in found]
    assert str(errors.SpecError(found)).count("x") < 1000


@pytest.mark.parametrize("raw", ["a\\u001b[2J\\n", "x\\ny", "evil\\r\\nINFO forged", "\\u202egnp.exe"])
def test_control_characters_never_reach_a_message_raw(tmp_path, raw):
    found = problems(tmp_path, VG.replace("[vg.vg0]", f'[vg."{raw}"]')
                     .replace("[vg.vg0.lv.data]", f'[vg."{raw}".lv.data]')
                     .replace('"node-1"', f'"{raw}"').replace('"/dev/sdc"', f'"/dev/{raw}"'))
    text = str(errors.SpecError(found))
    assert len(found) >= 3
    for bad in ("\x1b", "\r", "\u202e"):
        assert bad not in text
    assert text.count("\n") == len(found)  # one line per problem: no forged lines


# -- the server move (issue 13): copies, handover, takeover, growth ------------------------------

MOVE = """
[vg.vg0]
nodes = ["old"]
pvs = ["/dev/sdb"]
{vg}
[vg.vg0.lv.data]
size = "1G"
{lv}
"""


@pytest.mark.parametrize("vg, lv, key, words", [
    ('', 'copies = [["/dev/sdb"]]', "vg.vg0.lv.data.copies", "at least two PV sets"),
    ('', 'copies = [["/dev/sdb"], []]', "vg.vg0.lv.data.copies[1]", "at least one PV"),
    ('', 'copies = [["/dev/sdb"], ["/dev/sdb"]]', "vg.vg0.lv.data.copies[1][0]", "in two copies"),
    ('', 'copies = [["/dev/sdb"], ["/dev/sdc"]]', "vg.vg0.lv.data.copies[1][0]", "not in this VG's pvs"),
    ('pvs = ["/dev/sdb", "/dev/sdc"]', 'copies = [["/dev/sdb"], ["/dev/sdc"]]\nplacement = ["/dev/sdb"]',
     "vg.vg0.lv.data.copies", "exclude each other"),
    ('pvs = ["/dev/sdb", "/dev/sdc"]', 'copies = [["/dev/sdb"], ["/dev/sdc"]]\nmove = "pvmove"',
     "vg.vg0.lv.data.move", "keeps them"),
    ('[vg.vg0.handover]\npvs = ["/dev/sdb"]\nvg = "vg1"', '', "vg.vg0.handover.pvs[0]",
     "also in the VG's pvs"),
    ('[vg.vg0.handover]\npvs = ["/dev/sdc"]\nvg = "vg0"', '', "vg.vg0.handover.vg",
     "a name of its own"),
    ('[vg.vg0.handover]\npvs = ["/dev/sdc"]\nvg = "-bad"', '', "vg.vg0.handover.vg", "LVM's rule"),
    ('takeover = "vg1"\n[vg.vg0.handover]\npvs = ["/dev/sdc"]\nvg = "vg1"', '', "vg.vg0.takeover",
     "not both"),
    ('takeover = "vg 1"', '', "vg.vg0.takeover", "LVM's rule"),
    ('state = "absent"\ntakeover = "vg1"', '', "vg.vg0.takeover", "absent"),
    ('', 'resize_fs = "yes"', "vg.vg0.lv.data.resize_fs", "boolean"),
    ('grow_pvs = 1', '', "vg.vg0.grow_pvs", "boolean"),
])
def test_move_keys_are_checked_and_named(tmp_path, vg, lv, key, words):
    if vg.startswith("pvs = "):
        text = MOVE.replace('pvs = ["/dev/sdb"]\n{vg}', vg).format(lv=lv)
    else:
        text = MOVE.format(vg=vg, lv=lv)
    if 'state = "absent"' in vg:
        text = text.replace('size = "1G"', 'state = "absent"')
    found = problems(tmp_path, text)
    assert any(k == key and words in m for _, k, m in found), found


def test_move_keys_accepted(tmp_path):
    (tmp_path / "old.toml").write_text(textwrap.dedent("""
        [vg.vg0]
        nodes = ["old"]
        pvs = ["/dev/sdb", "/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-iqn.2003-01.org.example:e0-lun-0"]
        [vg.vg0.lv.data]
        size = "1G"
        copies = [["/dev/sdb"], ["/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-iqn.2003-01.org.example:e0-lun-0"]]
        [vg.vg9]
        nodes = ["old"]
        pvs = ["/dev/sdd"]
        [vg.vg9.handover]
        pvs = ["/dev/sde"]
        vg = "vg9moved"
        [vg.vgnew]
        nodes = ["new"]
        pvs = ["/dev/sdf"]
        takeover = "vg9moved"
        grow_pvs = true
        [vg.vgnew.lv.data]
        size = "2G"
        resize_fs = true
        """))
    sp = loading.load(tmp_path).spec
    assert sp.vg["vg0"].lv["data"].copies[1][0].endswith("lun-0")
    assert sp.vg["vg9"].handover.vg == "vg9moved"
    assert sp.vg["vgnew"].takeover == "vg9moved" and sp.vg["vgnew"].grow_pvs
