"""The spec writer of `reconcile adopt` writes TOML that reads back as written."""

import tomllib

import pytest

from reconciler.spec import writing


def test_tables_values_and_notes_read_back():
    doc = {"vg": {"vg0": {"nodes": ["n"], "pvs": ["/dev/sdb"], "extent_size": "4M",
                          "lv": {"data": {"size": "1G", "copies": [["/dev/a"], ["/dev/b"]]}}}},
           "drbd": {"r0": {"allow_two_primaries": True, "net": {"ping_timeout": 0.5},
                           "nodes": {"a": {"minor": 0}}}}}
    text = writing.dumps(doc, {("vg", "vg0"): ["a note\nwith a newline"]}, ["header"])
    assert tomllib.loads(text) == doc
    assert text.startswith("# header\n") and "# a note\\nwith a newline\n" in text


@pytest.mark.parametrize("name", ['a b', 'quo"te', "back\\slash", "tab\there", "nl\nx",
                                  "esc\x1b[2J", "bidi\u202e", "é", "a.b"])
def test_odd_names_and_strings_read_back(name):
    doc = {"vg": {name: {"nodes": [name]}}}
    text = writing.dumps(doc)
    assert tomllib.loads(text) == doc
    assert "\x1b" not in text and "\u202e" not in text


def test_a_value_toml_cannot_hold_is_refused():
    with pytest.raises(TypeError):
        writing.dumps({"vg": {"x": {"size": None}}})
    with pytest.raises(TypeError):
        writing.dumps({"vg": {"x": {"rate": float("nan")}}})
