"""The iSCSI spec tables: what is accepted, what is refused (naming the key), and that a node
whose slice holds only iSCSI tables is not told "nothing applies to this node"."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reconciler import cli
from reconciler.spec import loading, models

IQN = "iqn.2003-01.org.example.a:export0"
TARGET = {"nodes": ["a"], "iqn": IQN, "acls": ["iqn.2004-10.com.example:b"],
          "lun": {"0": {"device": "/dev/vdb"}}}
SESSION = {"nodes": ["b"], "portal": "192.0.2.1:3260", "target": IQN}


def _spec(**tables) -> models.Spec:
    return models.Spec.model_validate(tables)


def test_a_target_and_a_session_are_accepted_with_their_defaults():
    s = _spec(iscsi_target={"t": TARGET}, iscsi_session={"s": SESSION})
    t, ses = s.iscsi_target["t"], s.iscsi_session["s"]
    assert t.portals == ("0.0.0.0:3260",) and t.chap_file is None and not t.export_ends
    assert ses.luns == (0,) and ses.state.value == "logged-in" and ses.initiator is None
    named = _spec(iscsi_session={"s": {**SESSION, "initiator": "iqn.2004-10.com.example:b"}})
    assert named.iscsi_session["s"].initiator == "iqn.2004-10.com.example:b"
    assert ses.disks() == (f"/dev/disk/by-path/ip-192.0.2.1:3260-iscsi-{IQN}-lun-0",)


@pytest.mark.parametrize("table, change, words", [
    ("iscsi_target", {"iqn": "IQN.bad"}, "not an iSCSI name"),
    ("iscsi_target", {"portals": ["192.0.2.1"]}, "must be IPv4:port"),
    ("iscsi_target", {"lun": {"x": {"device": "/dev/vdb"}}}, "must be a number"),
    ("iscsi_target", {"lun": {"0": {"device": "/dev/vdb"}, "1": {"device": "/dev/vdb"}}},
     "exported as two LUNs"),
    ("iscsi_target", {"chap_file": "secret.txt"}, "absolute file path"),
    ("iscsi_target", {"password": "x"}, "Extra inputs are not permitted"),
    ("iscsi_session", {"luns": [0, 0]}, "distinct"),
    ("iscsi_session", {"nodes": ["bad node"]}, "must be a host name"),
    ("iscsi_session", {"state": "up"}, "logged-in"),
    ("iscsi_session", {"initiator": "IQN.2004-10.com.example:B"}, "not an iSCSI name"),
    ("iscsi_session", {"initiator": "b"}, "not an iSCSI name"),
    ("iscsi_session", {"initiator": "iqn.2004-10.com.example:b", "nodes": ["b", "c"]},
     "exactly one node"),
    ("iscsi_session", {"initiator": "iqn.2004-10.com.example:b", "nodes": ["*"]},
     "exactly one node"),
])
def test_bad_values_are_refused(table, change, words):
    base = TARGET if table == "iscsi_target" else SESSION
    with pytest.raises(ValidationError, match=words):
        _spec(**{table: {"x": {**base, **change}}})


def test_a_node_with_only_iscsi_tables_is_reconciled(tmp_path):
    (tmp_path / "s.toml").write_text(f'''
[iscsi_target.t]
nodes = ["a"]
iqn = "{IQN}"
acls = ["iqn.2004-10.com.example:b"]
[iscsi_target.t.lun.0]
device = "/dev/vdb"
''')
    loaded = loading.load(tmp_path)
    assert cli._nothing_for_node(loaded, "a") is None
    assert cli._nothing_for_node(loaded, "b") is not None
    assert list(loaded.for_node("a").iscsi_target) == ["t"]
    assert cli._nodes_named(loaded) == ["a"]
