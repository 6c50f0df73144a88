"""One rule for device paths and node names in every table (reconciler/spec/names.py)."""

import pytest

from reconciler.spec import drbd, iscsi, md, models


@pytest.mark.parametrize("check", [models.check_device, iscsi.check_device, drbd._check_device])
@pytest.mark.parametrize("bad", ["/dev/sdb\n", "/dev/../etc/passwd", "/dev/./sdb", "dev/sdb",
                                 "/dev/sd b", "/dev/" + "a" * 4092])
def test_every_table_refuses_the_same_device_paths(check, bad):
    with pytest.raises(ValueError):
        check(bad)


@pytest.mark.parametrize("check", [models.check_node, iscsi.check_node, drbd._check_node])
@pytest.mark.parametrize("bad", ["node-1\n", "-node", "node_1", "a..b", ""])
def test_every_table_refuses_the_same_node_names(check, bad):
    with pytest.raises(ValueError):
        check(bad)


def test_the_same_names_pass_everywhere():
    for check in (models.check_device, iscsi.check_device, drbd._check_device):
        assert check("/dev/disk/by-path/ip-10.0.0.2:3260-iscsi-iqn.2026-11.x:y-lun-0")
    for check in (models.check_node, iscsi.check_node, drbd._check_node):
        assert check("core-01.example")


@pytest.mark.parametrize("check", [md.check_clone_name, iscsi.check_name, drbd.check_resource_name])
@pytest.mark.parametrize("bad", ["db\n", "-db", "a" * 65, "", "d b", "db/x"])
def test_every_table_refuses_the_same_object_names(check, bad):
    with pytest.raises(ValueError):
        check(bad)
