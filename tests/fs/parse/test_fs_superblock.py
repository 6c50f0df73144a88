"""The superblock reader (adapters.fs) on superblocks made by real mke2fs/resize2fs/mkfs.xfs
(tests/fixtures/fs/README.md says how)."""

from pathlib import Path

import pytest
from support import M, FIXTURES

from reconciler.adapters import fs

FIX = FIXTURES / "fs"


def sb(name):
    return (FIX / f"{name}.bin").read_bytes()[:fs.SPAN]


def test_an_ext4_left_behind_by_its_lv_is_short_of_it():
    f = fs.parse(sb("ext4_48M_on_64M"))
    assert (f.kind, f.size, f.block_size, f.error) == ("ext4", 48 * M, 1024, None)
    assert f.short_of(64 * M) and not f.short_of(48 * M)


def test_a_resized_ext4_is_not_short():
    f = fs.parse(sb("ext4_48M_resized_64M"))
    assert (f.kind, f.size) == ("ext4", 64 * M) and not f.short_of(64 * M)
    assert f.short_of(72 * M)  # one more 4 MiB extent: a grow to finish


def test_the_last_group_resize2fs_leaves_out_is_not_asked_for_again():
    # resize2fs on 2049M left the file system at 2048M: the 1 MiB tail cannot hold a group
    f = fs.parse(sb("ext4_1G_resized_2049M"))
    assert (f.kind, f.size, f.block_size) == ("ext4", 2048 * M, 4096)
    assert f.grown_size(2049 * M) == 2048 * M and not f.short_of(2049 * M)
    assert f.short_of(2052 * M)  # 4 MiB more: a whole extent resize2fs would use


@pytest.mark.parametrize("name, kind", [("ext2_64M", "ext2"), ("ext3_64M", "ext3")])
def test_ext2_and_ext3_are_read_too(name, kind):
    f = fs.parse(sb(name))
    assert (f.kind, f.size) == (kind, 64 * M) and not f.short_of(64 * M)


def test_xfs_is_sized_from_its_superblock():
    f = fs.parse(sb("xfs_320M"))
    assert (f.kind, f.size, f.block_size, f.blocks_per_group) == ("xfs", 320 * M, 4096, 20480)
    assert not f.short_of(320 * M) and f.short_of(640 * M)
    # xfs_growfs leaves out a last allocation group of fewer than 64 blocks
    assert not f.short_of(320 * M + 63 * 4096) and f.short_of(320 * M + 64 * 4096)


def test_no_file_system_and_a_short_read():
    assert fs.parse(bytes(fs.SPAN)).kind == "" and fs.parse(bytes(fs.SPAN)).size is None
    assert fs.parse(b"\0" * 100).error


@pytest.mark.parametrize("name, size, made_at", [
    ("ext4_48M_on_64M", 48 * M, 48 * M), ("ext4_48M_resized_64M", 64 * M, 48 * M),
    ("ext4_1G_resized_2049M", 2048 * M, 1024 * M)])
def test_the_simulators_superblock_reads_as_real_mke2fs_ones(name, size, made_at):
    from reconciler.simulate import fs_model
    assert fs.parse(fs_model.head("ext4", size, made_at)) == fs.parse(sb(name))
