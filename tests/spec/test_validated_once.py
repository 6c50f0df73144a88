"""Each table is validated once, where it is read: merging the files and slicing the spec
for a node reuse the validated tables (10,000 LVs: bench/bench_plan.py)."""

from __future__ import annotations

import sys

import pytest

from reconciler.spec import models
from tests.support import specs


def _count_vg_checks(fn):
    code = models.Vg.__pydantic_decorators__.model_validators["_check"].func.__code__
    calls = []

    def prof(frame, event, arg):
        if event == "call" and frame.f_code is code:
            calls.append(frame.f_locals["self"].pvs)

    sys.setprofile(prof)
    try:
        result = fn()
    finally:
        sys.setprofile(None)
    return result, len(calls)


VGS = {"a": {"nodes": ["n1"], "pvs": ["/dev/sdb"], "lv": {"x": {"size": "8M"}}},
       "b": {"nodes": ["n2"], "pvs": ["/dev/sdc"]}}


def test_loading_validates_each_vg_once(tmp_path):
    loaded, n = _count_vg_checks(lambda: specs.load(vg=VGS, directory=tmp_path))
    assert sorted(loaded.spec.vg) == ["a", "b"]
    assert n == 2


def test_a_nodes_slice_is_not_validated_again_and_equals_the_validated_one(tmp_path):
    loaded = specs.load(vg=VGS, directory=tmp_path)
    mine, n = _count_vg_checks(lambda: loaded.for_node("n1"))
    assert n == 0
    assert mine == models.Spec.model_validate({"vg": {"a": VGS["a"]}})
    assert mine.vg["a"] is loaded.spec.vg["a"]
    assert list(mine.vg) == ["a"] and not mine.clone and not mine.drbd
    assert mine.iscsi_target == {} and mine.iscsi_session == {}


def test_a_size_text_is_parsed_once_and_a_refused_one_every_time():
    from reconciler.spec import base
    assert base.parse_size("64M") == 64 * 1024**2
    assert base.parse_size("64M") is base.parse_size("64M")  # parsed once, then looked up
    for _ in range(2):
        with pytest.raises(ValueError, match="is not a size"):
            base.parse_size("64Q")
    assert "64Q" not in base._SIZES
    with pytest.raises(ValueError, match="not a boolean|must be a size"):
        base.parse_size(True)
