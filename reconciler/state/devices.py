"""Observed block devices: what a device the spec names is (its device number, its stable
identity, what holds or mounts it), what ``wipefs`` found on a device that is to become a PV,
and the file system on an LV that grows with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.units import Size


UNSTABLE_IDENTITY = "devno:"  # the prefix of an identity made of device number and size


def is_stable_identity(identity: str) -> bool:
    """Whether an identity names the device itself (dm/md uuid, WWID, serial) rather than its
    device number, which a reboot or a rescan may give to another device."""
    return bool(identity) and not identity.startswith(UNSTABLE_IDENTITY)


@dataclass(frozen=True, slots=True)
class BlockDevice:
    """What clone planning needs to know about a device a clone names."""

    path: str
    devno: tuple[int, int] | None  # None: the path does not exist (or is not a block device)
    name: str = ""  # kernel name (its uevent DEVNAME)
    size: Size | None = None
    holders: tuple[str, ...] = ()  # what is stacked on it or on its partitions ("md100", "dm-0")
    mounts: tuple[str, ...] = ()  # where it or one of its partitions is mounted
    # Who the device is, whatever path names it: "dm-uuid:LVM-...", "wwid:naa.6...",
    # "serial:d1", "md-uuid:...", "<disk's identity>/part1", or, when the kernel shows nothing
    # stable, "devno:M:m,size:BYTES". "" when the device does not exist.
    identity: str = ""

    @property
    def exists(self) -> bool:
        return self.devno is not None


@dataclass(frozen=True, slots=True)
class FileSystem:
    """The file system on an LV as its superblock says (``adapters.fs``). ``kind`` "" when no
    file system the reconciler reads is there; ``size`` None when its size was not read (an
    unknown kind, an error). ext2/3/4 and xfs are sized."""

    kind: str
    size: Size | None = None
    block_size: int = 0
    # ext: what resize2fs's choice of size depends on (its last-group rule)
    first_block: int = 0
    blocks_per_group: int = 0
    inode_blocks_per_group: int = 0
    reserved_gdt_blocks: int = 0
    desc_size: int = 32
    error: str | None = None

    def grown_size(self, device: int) -> int | None:
        """The size resize2fs gives it on a device of ``device`` bytes, on the small side
        (a last group of fewer than its overhead + 50 blocks is left out, the overhead
        counted as if the group held a superblock backup); None when not known."""
        if self.size is None or not self.block_size:
            return None
        total = device // self.block_size
        if self.kind == "xfs":
            # xfs_growfs leaves out a last allocation group of fewer than 64 blocks
            # (XFS_MIN_AG_BLOCKS); with the group size unknown, any tail under 64 blocks.
            rem = total % self.blocks_per_group if self.blocks_per_group else 63
            return (total - (rem if rem < 64 else 0)) * self.block_size
        if not self.blocks_per_group:
            return None
        data = total - self.first_block
        groups = -(-data // self.blocks_per_group)
        desc_blocks = -(-groups * self.desc_size // self.block_size)
        overhead = (2 + self.inode_blocks_per_group + 1 + desc_blocks
                    + self.reserved_gdt_blocks)
        rem = data % self.blocks_per_group
        if groups > 1 and rem and rem < overhead + 50:
            total -= rem
        return total * self.block_size

    def short_of(self, device: int) -> bool:
        """A grow onto ``device`` bytes was not finished: resize2fs would make it bigger."""
        grown = self.grown_size(device)
        return grown is not None and self.size is not None and self.size < grown


@dataclass(frozen=True, slots=True)
class DiskProbe:
    """What ``wipefs --no-act`` found on a device the spec lists as a PV that is not one yet
    (probed only then: ``pvcreate`` never runs over a signature, and is never asked to wipe)."""

    path: str
    signatures: tuple[str, ...] = ()  # wipefs' types: "ext4", "gpt", "linux_raid_member"...
    error: str | None = None  # the probe failed (unreadable, gone): nothing is known
