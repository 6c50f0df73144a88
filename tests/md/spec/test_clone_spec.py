"""Validation of ``[clone.NAME]`` tables: every problem names its file and key."""

from __future__ import annotations

import textwrap

import pytest

from support import ROOT

from reconciler import errors
from reconciler.spec import loading, models

CLONE = """
[clone.db]
nodes = ["node-1"]
source = "/dev/mapper/old"
target = "/dev/mapper/new"
md = "/dev/md100"
"""


def write(tmp_path, name, text):
    (tmp_path / name).write_text(textwrap.dedent(text))


def problems(tmp_path, **files):
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(errors.SpecError) as exc:
        loading.load(tmp_path)
    return exc.value.problems


def test_a_clone_loads_with_defaults_and_sizes(tmp_path):
    write(tmp_path, "c.toml", CLONE + 'speed_limit_min = "1M"\nspeed_limit_max = "50M"\n')
    loaded = loading.load(tmp_path)
    c = loaded.spec.clone["db"]
    assert c.state is models.CloneState.MIRRORED
    assert (c.speed_limit_min, c.speed_limit_max) == (1 << 20, 50 << 20)
    assert loaded.clone_origin["db"].endswith("c.toml")
    assert list(loaded.for_node("node-1").clone) == ["db"]
    assert loaded.for_node("node-2").clone == {}
    assert c.recopy is None
    write(tmp_path, "c.toml", CLONE + 'recopy = "2024-06-01 after the SAN move"\n')
    assert loading.load(tmp_path).spec.clone["db"].recopy == "2024-06-01 after the SAN move"


@pytest.mark.parametrize("line,key,words", [
    ('md = "/dev/md/foo"', "clone.db.md", "not an md device"),
    ('md = "/dev/md0100"', "clone.db.md", "no leading zeros"),
    ('md = "/dev/md1048576"', "clone.db.md", "not an md device"),
    ('md = "/dev/md100\\n"', "clone.db.md", "not an md device"),
    ('source = "sda"', "clone.db.source", "not a device path"),
    ('target = "/dev/../etc/passwd"', "clone.db.target", "not a device path"),
    ('state = "done"', "clone.db.state", "mirrored"),
    ('speed_limit_max = "100"', "clone.db.speed_limit_max", "below 1K"),
    ('colour = "blue"', "clone.db.colour", "unknown key"),
    ('recopy = ""', "clone.db.recopy", "recopy must be a non-empty printable value"),
    ('recopy = "  "', "clone.db.recopy", "recopy must be a non-empty printable value"),
    ('recopy = "a\\nb"', "clone.db.recopy", "recopy must be a non-empty printable value"),
    ('recopy = 2024', "clone.db.recopy", "string"),
    (f'recopy = "{"x" * 129}"', "clone.db.recopy", "at most 128"),
])
def test_bad_values_name_the_key(tmp_path, line, key, words):
    text = CLONE.replace(f"{line.split(' =')[0]} = ", "#") + line + "\n"
    (f, k, msg), = problems(tmp_path, **{"s.toml": text})
    assert f.endswith("s.toml") and k == key and words in msg, (k, msg)


def test_clone_wide_rules(tmp_path):
    text = CLONE.replace('target = "/dev/mapper/new"', 'target = "/dev/mapper/old"')
    (_, key, msg), = problems(tmp_path, **{"s.toml": text})
    assert key == "clone.db.target" and "same device" in msg
    text = CLONE + 'speed_limit_min = "10M"\nspeed_limit_max = "5M"\n'
    (_, key, msg), = problems(tmp_path, **{"s.toml": text})
    assert "speed_limit_min is above speed_limit_max" in msg
    text = CLONE.replace('source = "/dev/mapper/old"', 'source = "/dev/md100"')
    (_, key, msg), = problems(tmp_path, **{"s.toml": text})
    assert "own array" in msg
    bad_name = CLONE.replace("[clone.db]", "[clone.-db]")
    (_, key, msg), = problems(tmp_path, **{"s.toml": bad_name})
    assert "clone name" in msg


def test_a_clone_declared_twice_and_devices_shared(tmp_path):
    (f, key, msg), = problems(tmp_path, **{"a.toml": CLONE, "b.toml": CLONE})
    assert f.endswith("b.toml") and key == "clone.db" and "already declared in" in msg


def test_a_device_in_two_clones(tmp_path):
    other = CLONE.replace("[clone.db]", "[clone.web]").replace("/dev/md100", "/dev/md101") \
        .replace("/dev/mapper/old", "/dev/mapper/web")
    found = problems(tmp_path, **{"a.toml": CLONE, "b.toml": other})
    assert [(f.rsplit("/", 1)[1], k) for f, k, _ in found] == [("b.toml", "clone.web.target")]
    assert "already the target of clone 'db'" in found[0][2] and "a.toml" in found[0][2]


def test_a_device_in_a_clone_and_a_vg(tmp_path):
    vg = """
    [vg.data]
    nodes = ["node-9"]
    pvs = ["/dev/mapper/new", "/dev/md100"]
    """
    found = problems(tmp_path, **{"a.toml": CLONE, "b.toml": vg})
    keys = sorted(k for _, k, _ in found)
    assert keys == ["clone.db.md", "clone.db.target"]
    assert all("VG 'data'" in m and "b.toml" in m for _, _, m in found)


def test_md_names_clash_only_on_shared_nodes(tmp_path):
    other = (CLONE.replace("[clone.db]", "[clone.web]").replace("/dev/mapper/old", "/dev/sdb")
             .replace("/dev/mapper/new", "/dev/sdc"))
    write(tmp_path, "a.toml", CLONE)
    write(tmp_path, "b.toml", other.replace('"node-1"', '"node-2"'))
    assert loading.load(tmp_path).spec.clone.keys() == {"db", "web"}
    write(tmp_path, "b.toml", other.replace('"node-1"', '"*"'))
    (_, key, msg), = problems(tmp_path)
    assert key == "clone.web.md" and "on a node they share" in msg


def test_a_clone_is_the_array_of_another(tmp_path):
    other = (CLONE.replace("[clone.db]", "[clone.web]").replace("/dev/mapper/old", "/dev/md100")
             .replace("/dev/mapper/new", "/dev/sdc").replace('md = "/dev/md100"', 'md = "/dev/md7"'))
    (_, key, msg), = problems(tmp_path, **{"a.toml": CLONE, "b.toml": other})
    assert key == "clone.web.source" and "array of clone 'db'" in msg


def test_schema_knows_clones():
    schema = models.json_schema()
    assert "Clone" in schema["$defs"]
    assert schema["$defs"]["Clone"]["additionalProperties"] is False
    assert schema["$defs"]["Clone"]["properties"]["state"]


def test_the_shipped_example_loads():
    from pathlib import Path
    loaded = loading.load(ROOT / "specs" / "examples" / "clone.toml")
    c = loaded.spec.clone["vm-db"]
    assert (c.md, c.state, c.speed_limit_min, c.speed_limit_max) == (
        "/dev/md100", models.CloneState.MIRRORED, 10 << 20, 200 << 20)
