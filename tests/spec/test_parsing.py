"""The spec's TOML is read by compiled tomli when installed, exactly as tomllib reads it."""

from __future__ import annotations

import datetime
import tomllib

import pytest

from reconciler.spec import parsing

VALID = """
[vg.vg0]
nodes = ["*"]
scope = "local"
pvs = ["/dev/disk/by-id/lun00000", 'literal\\path']
when = 2024-06-01
at = 1979-05-27T07:32:00-08:00
n = 0x10
f = 1e3
[vg.vg0.lv."quoted.name"]
size = "64M"
inline = { a = 1, b = [1, 2, [3]] }
"""

INVALID = ["a = ", "a = 1\na = 2", "[vg\n", 'a = "unterminated', "a = [1,,]", "a = 1979-13-01",
           "a = { b = 1, }", "a = \"\\e\""]


def test_the_loader_reads_with_the_compiled_parser(monkeypatch, tmp_path):
    from reconciler.spec import loading
    assert parsing._fast is not None  # tomli is a dependency (pyproject)
    calls = []
    real = parsing._fast.loads
    monkeypatch.setattr(parsing._fast, "loads", lambda text: calls.append(text) or real(text))
    text = '[vg.vg0]\nnodes = ["n1"]\npvs = ["/dev/sdb"]\n'
    (tmp_path / "a.toml").write_text(text)
    assert list(loading.load(tmp_path).spec.vg) == ["vg0"]
    assert calls == [text]


def test_a_valid_document_reads_as_tomllib_reads_it():
    got = parsing.loads(VALID)
    assert got == tomllib.loads(VALID)
    assert got["vg"]["vg0"]["when"] == datetime.date(2024, 6, 1)


@pytest.mark.parametrize("text", INVALID)
def test_an_invalid_document_raises_tomllibs_own_error(text):
    with pytest.raises(tomllib.TOMLDecodeError) as want:
        tomllib.loads(text)
    with pytest.raises(tomllib.TOMLDecodeError) as got:
        parsing.loads(text)
    assert type(got.value) is tomllib.TOMLDecodeError
    assert str(got.value) == str(want.value)


def test_without_tomli_tomllib_reads_everything(monkeypatch):
    monkeypatch.setattr(parsing, "_fast", None)
    assert parsing.loads(VALID) == tomllib.loads(VALID)
    with pytest.raises(tomllib.TOMLDecodeError):
        parsing.loads("a = ")
