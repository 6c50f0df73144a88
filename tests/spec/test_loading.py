import textwrap

import pytest
from support import specs

from reconciler import errors
from reconciler.spec import loading, models, text

GOOD = """
[vg.vgglobal]
nodes = ["node-1"]
pvs = ["/dev/mapper/lun02", "/dev/mapper/lun30"]

[vg.vgglobal.lv.lvrepnb]
size = "128M"
placement = ["/dev/mapper/lun02"]
move = "mirror-then-split"
"""


def write(tmp_path, name, text):
    return specs.write(text, tmp_path, name)


def problems(tmp_path, text, name="s.toml"):
    return specs.refused(tmp_path, **{name: text})


def test_good_spec_loads_with_bytes_and_enums(tmp_path):
    write(tmp_path, "a.toml", GOOD)
    loaded = loading.load(tmp_path)
    lv = loaded.spec.vg["vgglobal"].lv["lvrepnb"]
    assert lv.size == 128 * 1024**2
    assert lv.move is models.MoveStrategy.MIRROR_THEN_SPLIT
    assert loaded.origin["vgglobal"].endswith("a.toml")
    assert len(loaded.digest) == 64


def test_node_slicing(tmp_path):
    write(tmp_path, "a.toml", GOOD)
    loaded = loading.load(tmp_path)
    assert list(loaded.for_node("node-1").vg) == ["vgglobal"]
    assert loaded.for_node("node-2").vg == {}


def test_digest_changes_with_content(tmp_path):
    write(tmp_path, "a.toml", GOOD)
    d1 = loading.load(tmp_path).digest
    write(tmp_path, "a.toml", GOOD.replace("128M", "256M"))
    assert loading.load(tmp_path).digest != d1


def test_malformed_toml_names_file_and_line(tmp_path):
    (f, key, msg), = problems(tmp_path, "[vg.x\nnodes = 1\n")
    assert f.endswith("s.toml") and "TOML syntax error" in msg and "line 1" in msg


def test_unknown_key_is_named_with_its_path(tmp_path):
    (f, key, msg), = problems(tmp_path, GOOD + 'placment = ["/dev/x"]\n')
    assert key == "vg.vgglobal.lv.lvrepnb.placment"
    assert "unknown key" in msg


@pytest.mark.parametrize("size, fragment", [
    ('"0"', "positive"), ('"-5G"', "not a size"), ('"10Q"', "not a size"),
    ('"9E"', "8 EiB"), ("true", "size"),
])
def test_impossible_sizes(tmp_path, size, fragment):
    (f, key, msg), = problems(tmp_path, GOOD.replace('"128M"', size))
    assert key == "vg.vgglobal.lv.lvrepnb.size"
    assert fragment in msg


@pytest.mark.parametrize("name", ["bad;rm", "-lead", "a b", "$(x)", "..", "x`y`"])
def test_vg_names_lvm_forbids(tmp_path, name):
    found = problems(tmp_path, GOOD.replace("vg.vgglobal]", f'vg."{name}"]').replace(
        "vg.vgglobal.lv", f'vg."{name}".lv'))
    assert any(key == text.key_path(("vg", name)) and "LVM" in msg for _, key, msg in found)


@pytest.mark.parametrize("name, fragment", [
    ("pvmove0", "reserves"), ("data_rimage_0", "_rimage"), ("snapshot1", "reserves"),
    ("x|y", "only contain"),
])
def test_lv_names_lvm_forbids(tmp_path, name, fragment):
    found = problems(tmp_path, GOOD.replace("lv.lvrepnb]", f'lv."{name}"]'))
    assert any(fragment in msg for _, _, msg in found)


@pytest.mark.parametrize("dev", ["sdb", "/dev/sdb;reboot", "/dev/../etc/passwd", "/dev/a b",
                                 "/dev/$(id)", "/tmp/x"])
def test_device_paths_are_checked(tmp_path, dev):
    found = problems(tmp_path, GOOD.replace('"/dev/mapper/lun30"', f'"{dev}"'))
    assert any(key == "vg.vgglobal.pvs[1]" and "device path" in msg for _, key, msg in found)


def test_placement_must_be_in_vg(tmp_path):
    (f, key, msg), = problems(tmp_path, GOOD.replace('placement = ["/dev/mapper/lun02"]',
                                                     'placement = ["/dev/mapper/lun99"]'))
    assert key == "vg.vgglobal.lv.lvrepnb.placement[0]"
    assert "lun99" in msg and "not in this VG's pvs" in msg


def test_size_required_when_present(tmp_path):
    (f, key, msg), = problems(tmp_path, GOOD.replace('size = "128M"\n', ""))
    assert "size is required" in msg


def test_duplicate_vg_across_files(tmp_path):
    write(tmp_path, "a.toml", GOOD)
    found = problems(tmp_path, GOOD, name="b.toml")
    assert any(key == "vg.vgglobal" and "already declared in" in msg and "a.toml" in msg
               for f, key, msg in found)


def test_pv_claimed_by_two_vgs(tmp_path):
    found = problems(tmp_path, GOOD + textwrap.dedent("""
        [vg.other]
        nodes = ["node-1"]
        pvs = ["/dev/mapper/lun30"]
        """))
    assert any(key == "vg.other.pvs[0]" and "also claimed by VG 'vgglobal'" in msg
               for _, key, msg in found)


def test_duplicate_pv_in_one_list(tmp_path):
    found = problems(tmp_path, GOOD.replace('"/dev/mapper/lun30"', '"/dev/mapper/lun02"'))
    assert any("listed twice" in msg for _, _, msg in found)


def test_all_problems_reported_at_once(tmp_path):
    write(tmp_path, "a.toml", GOOD.replace('"128M"', '"0"'))
    found = problems(tmp_path, "x = [", name="b.toml")
    assert {f.rsplit("/", 1)[1] for f, _, _ in found} == {"a.toml", "b.toml"}


def test_no_files(tmp_path):
    with pytest.raises(errors.SpecError, match="no \\*.toml"):
        loading.load(tmp_path)


def test_hidden_dirs_are_skipped(tmp_path):
    write(tmp_path, "a.toml", GOOD)
    (tmp_path / ".git").mkdir()
    write(tmp_path, ".git/junk.toml", "not toml [")
    assert loading.load(tmp_path).spec.vg


def test_schema_is_json_schema_with_descriptions():
    schema = models.json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert "Vg" in schema["$defs"] and schema["$defs"]["Lv"]["additionalProperties"] is False


def test_size_must_be_whole_sectors(tmp_path):
    (f, key, msg), = problems(tmp_path, GOOD.replace('"128M"', "1048577"))
    assert key == "vg.vgglobal.lv.lvrepnb.size" and "512-byte sectors" in msg


@pytest.mark.parametrize("key, value", [("nodes", '["n1\\n"]'), ("pvs", '["/dev/sda\\n"]')])
def test_trailing_newline_in_a_name_is_refused(tmp_path, key, value):
    text = GOOD.replace('nodes = ["node-1"]', f"nodes = {value}" if key == "nodes" else 'nodes = ["node-1"]')
    if key == "pvs":
        text = text.replace('"/dev/mapper/lun30"', '"/dev/sda\\n"')
    found = problems(tmp_path, text)
    assert found and all("Traceback" not in m for _, _, m in found)


def test_lv_name_with_trailing_newline_is_refused(tmp_path):
    found = problems(tmp_path, GOOD.replace("lv.lvrepnb]", 'lv."data\\n"]'))
    assert any("only contain" in msg for _, _, msg in found)


def test_deeply_nested_toml_is_a_spec_error(tmp_path):
    found = problems(tmp_path, "a = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in found[0][2]
