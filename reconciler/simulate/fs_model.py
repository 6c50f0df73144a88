"""The first bytes of a simulated LV that holds a file system: its superblock.

Written from the on-disk formats (ext4's ``struct ext4_super_block``, xfs's ``xfs_sb``) and
mke2fs 1.47.0's defaults for the sizes the simulator makes (``SimulatedHost.mkfs``), not from
the reconciler's reader: tests compare what it renders with superblocks real mke2fs made
(tests/fixtures/fs). ext4 as mke2fs makes it: below 512 MiB the "small" type (1 KiB blocks,
one inode per 4 KiB), else 4 KiB blocks and one inode per 16 KiB; 256-byte inodes, 64-bit
group descriptors, and the reserved GDT blocks mke2fs sets aside for a 1024-fold growth.
"""

from __future__ import annotations

import struct

SMALL = 512 * 2**20  # mke2fs.conf's "small" type below this size


def ext4_block(made_at: int) -> int:
    """mke2fs's block size, by the size the file system was made at."""
    return 1024 if made_at < SMALL else 4096


def ext4_superblock(size: int, made_at: int) -> bytes:
    """The 1024 bytes at offset 1024 of an ext4 of ``size`` bytes made at ``made_at``."""
    block = ext4_block(made_at)
    ratio = 4096 if made_at < SMALL else 16384
    per_group = 8 * block
    first = 1 if block == 1024 else 0
    blocks = size // block
    made_blocks = made_at // block
    groups = -(-(blocks - first) // per_group)
    inodes_per_group = per_group * block // ratio
    desc_per_block = block // 64
    # mke2fs's calc_reserved_gdt_blocks: room for the descriptors of a 1024-fold growth
    max_blocks = min(made_blocks * 1024, 2**32)
    made_groups = -(-(made_blocks - first) // per_group)
    rsv = -(-(-(-max_blocks // per_group)) // desc_per_block) - -(-made_groups // desc_per_block)
    rsv = max(0, min(rsv, block // 4))
    sb = bytearray(1024)
    struct.pack_into("<IIII", sb, 0x00, groups * inodes_per_group, blocks & 0xFFFFFFFF,
                     0, 0)
    struct.pack_into("<II", sb, 0x14, first, block.bit_length() - 11)
    struct.pack_into("<I", sb, 0x20, per_group)
    struct.pack_into("<I", sb, 0x28, inodes_per_group)
    struct.pack_into("<H", sb, 0x38, 0xEF53)
    struct.pack_into("<H", sb, 0x58, 256)
    # has_journal, ext_attr, resize_inode, dir_index; filetype, extents, 64bit, flex_bg
    struct.pack_into("<II", sb, 0x5C, 0x3C, 0x2C2)
    struct.pack_into("<H", sb, 0xCE, rsv)
    struct.pack_into("<H", sb, 0xFE, 64)
    struct.pack_into("<I", sb, 0x150, blocks >> 32)
    return bytes(sb)


def xfs_superblock(size: int) -> bytes:
    """The first 512 bytes of an xfs of ``size`` bytes (4 KiB blocks; magic, block size and
    data block count: big-endian)."""
    sb = bytearray(512)
    sb[0:4] = b"XFSB"
    struct.pack_into(">IQ", sb, 4, 4096, size // 4096)
    return bytes(sb)


def head(fs: str | None, size: int, made_at: int) -> bytes:
    """The first 2048 bytes of a device holding ``fs`` (None: nothing the model records)."""
    out = bytearray(2048)
    if fs == "ext4":
        out[1024:2048] = ext4_superblock(size, made_at)
    elif fs == "xfs":
        out[0:512] = xfs_superblock(size)
    return bytes(out)
