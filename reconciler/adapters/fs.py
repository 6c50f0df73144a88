"""What file system an LV holds and how big it is, from its first bytes (no process).

Read only for an LV whose spec says ``resize_fs`` and only while it is active: ``lvextend
--resizefs`` grows the LV first and then runs fsadm, so a failing fsadm or a crash between
the two leaves the LV at its size and the file system smaller; the LV's size alone cannot
show it. The ext2/3/4 superblock (1024 bytes at offset 1024, little-endian) gives the block
count and size; xfs's superblock (512 bytes at offset 0, big-endian) gives its data block
count, block size and allocation-group size. Anything else is not a file system the
reconciler reads: nothing is grown by it, and a superblock it cannot read is reported,
never guessed.

resize2fs does not always fill the device: a last block group too small for its own
metadata is left out (resize2fs's ``adjust_fs_info``: fewer than its overhead + 50 blocks).
``FileSystem.short_of`` counts that overhead on the large side (every group as if it held a
superblock backup), so a file system resize2fs has grown never counts as short: a grow that
is finished is never asked for again.
"""

from __future__ import annotations

import struct

from reconciler import state

SPAN = 2048  # bytes read from the device's start: the ext superblock ends at 2048
_EXT_MAGIC = 0xEF53
_COMPAT_HAS_JOURNAL = 0x4
_INCOMPAT_EXTENTS, _INCOMPAT_64BIT, _INCOMPAT_FLEX_BG = 0x40, 0x80, 0x200


def device_path(vg: str, lv: str) -> str:
    """The LV's device-mapper node (created by libdm with or without udev)."""
    return f"/dev/mapper/{state.dm_name(vg, lv)}"


def parse(data: bytes) -> state.FileSystem:
    """The first ``SPAN`` bytes of a device -> what file system it holds and its size."""
    if len(data) < SPAN:
        return state.FileSystem(kind="", error=f"only {len(data)} bytes could be read")
    sb = data[1024:2048]
    if struct.unpack_from("<H", sb, 0x38)[0] == _EXT_MAGIC:
        return _ext(sb)
    if data[:4] == b"XFSB":
        return _xfs(data)
    return state.FileSystem(kind="")


def _xfs(sb: bytes) -> state.FileSystem:
    """xfs's superblock (big-endian): block size at 4, data blocks at 8, blocks per
    allocation group at 84 (0 when unknown: then the grow rule is the lenient one)."""
    block, dblocks = struct.unpack_from(">IQ", sb, 4)
    if not block or block & (block - 1) or block > 65536:
        return state.FileSystem(kind="xfs", error=f"sb_blocksize {block} is not xfs's")
    agblocks = struct.unpack_from(">I", sb, 84)[0]
    return state.FileSystem(kind="xfs", size=dblocks * block, block_size=block,
                            blocks_per_group=agblocks)


def _ext(sb: bytes) -> state.FileSystem:
    def u32(off: int) -> int:
        return struct.unpack_from("<I", sb, off)[0]

    def u16(off: int) -> int:
        return struct.unpack_from("<H", sb, off)[0]

    log_block = u32(0x18)
    if log_block > 6:  # 64 KiB is ext's largest block
        return state.FileSystem(kind="ext?", error=f"s_log_block_size {log_block} is not ext's")
    block = 1024 << log_block
    compat, incompat = u32(0x5C), u32(0x60)
    blocks = u32(0x04)
    is64 = bool(incompat & _INCOMPAT_64BIT)
    if is64:
        blocks |= u32(0x150) << 32
    kind = ("ext4" if incompat & (_INCOMPAT_EXTENTS | _INCOMPAT_64BIT | _INCOMPAT_FLEX_BG)
            else "ext3" if compat & _COMPAT_HAS_JOURNAL else "ext2")
    per_group = u32(0x20)
    inode_size = u16(0x58) or 128  # revision 0: 128-byte inodes
    if not per_group:
        return state.FileSystem(kind=kind, error="s_blocks_per_group is 0")
    return state.FileSystem(
        kind=kind, size=blocks * block, block_size=block, first_block=u32(0x14),
        blocks_per_group=per_group,
        inode_blocks_per_group=-(-u32(0x28) * inode_size // block),
        reserved_gdt_blocks=u16(0xCE),
        desc_size=(u16(0xFE) or 64) if is64 else 32)
