"""The spec keys of issue 10: shared VGs, their creator, lock type and per-node activation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reconciler.spec import models


def vg(**kw) -> dict:
    base = {"nodes": ["node-a", "node-b"], "scope": "shared", "create_on": "node-a",
            "pvs": ["/dev/vda"], "lv": {}}
    base.update(kw)
    return base


def load(v: dict) -> models.Vg:
    return models.Spec.model_validate({"vg": {"vgs": v}}).vg["vgs"]


def lv(**activation) -> dict:
    return {"data": {"size": "32M", "activation": activation}}


def refused(v: dict) -> str:
    with pytest.raises(ValidationError) as e:
        load(v)
    return str(e.value)


def test_a_shared_vg_with_its_creator_and_activation_is_accepted():
    got = load(vg(lv={"data": {"size": "32M", "activation": {"node-a": "exclusive",
                                                             "*": "inactive"}}}))
    assert got.scope is models.Scope.SHARED and got.lock_type is models.LockType.SANLOCK
    assert got.create_on == "node-a"
    assert got.lv["data"].activation == {"node-a": models.Activation.EXCLUSIVE,
                                         "*": models.Activation.INACTIVE}
    assert load(vg(lock_type="dlm", lv=lv(**{"*": "shared"}))).lock_type is models.LockType.DLM


@pytest.mark.parametrize("v, words", [
    (vg(create_on=None), "needs create_on"),
    (vg(create_on="node-c"), "must be one of this VG's nodes"),
    (vg(lv=lv(**{"node-c": "exclusive"})), "is not in this VG's nodes"),
    (vg(lv=lv(**{"node-a": "exclusive", "node-b": "exclusive"})), "exclusive on one node at most"),
    (vg(lv=lv(**{"*": "exclusive"})), "exclusive on one node at most"),
    (vg(lv=lv(**{"node-a": "exclusive", "*": "shared"})), "grants an exclusive lock only"),
    (vg(lv=lv(**{"node-a": "active"})), "is not an activation of a shared VG"),
    (vg(scope="local", create_on=None, nodes=["node-a"], lv=lv(**{"node-a": "exclusive"})),
     "is not an activation of a local VG"),
    (vg(scope="local"), "create_on is for shared VGs"),
    (vg(scope="local", create_on=None, lock_type="dlm"), "lock_type is for shared VGs"),
    (vg(lv={"data": {"state": "absent", "activation": {"*": "inactive"}}}), "has no activation"),
])
def test_what_the_validator_refuses(v, words):
    assert words in refused(v)


def test_a_local_vg_may_say_where_its_lvs_are_active():
    got = load({"nodes": ["node-1"], "pvs": ["/dev/sdb"],
                "lv": {"data": {"size": "8M", "activation": {"*": "inactive"}}}})
    assert got.lv["data"].activation == {"*": models.Activation.INACTIVE}
