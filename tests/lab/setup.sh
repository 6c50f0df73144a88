#!/bin/bash
# Prepare this machine to run the storage lab (tests/lab): host packages, a Debian guest
# kernel unpacked under /opt/reconciler-lab, its ELF vmlinux and a small busybox initramfs.
#
# Idempotent, run as root:   bash tests/lab/setup.sh
#
# What it does, in order (each step is skipped when already done):
#   1. apt-get install --no-install-recommends the lab's packages (apt-get update only if
#      one is missing). A policy-rc.d returning 101 is in place during the install, so no
#      host daemon (iscsid, tgt, sanlock, ...) is started.
#   2. apt-get download the Debian generic kernel package (never installed), unpack it
#      into /opt/reconciler-lab/kernel/<kver>/root and run depmod there.
#   3. Symlink /lib/modules/<kver> to it: guests mount the host root read-only over 9p and
#      load their modules from there. (The host runs another kernel, so this is harmless.)
#   4. Extract the ELF vmlinux from the bzImage (qemu boots it through its PVH entry point,
#      which saves the slow in-guest decompression under TCG).
#   5. Build initramfs.gz: static busybox, the virtio/9p/overlay modules, a stage-1 init.
#   6. Download the wheels of the project's dependencies into /opt/reconciler-lab/wheels
#      (pip download, Debian's python3): the guest has no network, and the systemd lab test
#      installs the project there the README's way (PIP_NO_INDEX=1 PIP_FIND_LINKS=...).
#   7. Write /opt/reconciler-lab/lab.json, which the harness reads.
#
# Environment: LAB_DIR (default /opt/reconciler-lab), LAB_KERNEL_PACKAGE (default: what
# linux-image-amd64 depends on).

set -euo pipefail

LAB_DIR=${LAB_DIR:-/opt/reconciler-lab}
# Bump when the initramfs layout or the stage-1 init changes; the harness checks it.
INITRAMFS_FORMAT=1

T0=$(date +%s.%N)
say() { printf '[lab-setup %5.1fs] %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$*"; }
die() { printf '[lab-setup] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || printf "[lab-setup] FAILED (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' EXIT

[ "$(id -u)" = 0 ] || die "must run as root (the lab installs packages and writes /opt and /lib/modules)"
command -v apt-get >/dev/null || die "apt-get not found: the lab needs a Debian-family host"
[ "$(uname -m)" = x86_64 ] || die "the lab needs an x86_64 host (it boots amd64 Debian kernels)"

export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# ---------------------------------------------------------------------------------------------
# 1. packages
PACKAGES=(
  qemu-system-x86 qemu-utils busybox-static cpio kmod xz-utils lz4 zstd gzip
  dbus udev lvm2 lvm2-lockd sanlock corosync dlm-controld pacemaker pacemaker-cli-utils
  resource-agents gfs2-utils  # mkfs.gfs2: test_lab_lockd_dlm.py's GFS2 on dual-primary DRBD
  mdadm drbd-utils open-iscsi targetcli-fb tgt
  e2fsprogs xfsprogs util-linux procps iproute2 psmisc python3 python3-venv python3-pip
  prometheus  # promtool: tests/daemon/test_monitoring.py checks and runs monitoring/'s alert rules
)
missing=()
for p in "${PACKAGES[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done

POLICY=/usr/sbin/policy-rc.d
restore_policy() {
  if [ -e "$POLICY.lab-saved" ]; then mv -f "$POLICY.lab-saved" "$POLICY"; else rm -f "$POLICY"; fi
}
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${#missing[@]} missing packages: ${missing[*]}"
  if [ -e "$POLICY" ]; then cp -p "$POLICY" "$POLICY.lab-saved"; fi
  printf '#!/bin/sh\n# written by tests/lab/setup.sh for the duration of an install\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  # apt-get update may complain about unrelated third-party sources; the install decides.
  apt-get update -q >/tmp/lab-apt-update.log 2>&1 || say "apt-get update exited $? (see /tmp/lab-apt-update.log); trying the install anyway"
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/lab-apt-install.log 2>&1; then
    restore_policy
    tail -n 30 /tmp/lab-apt-install.log >&2
    die "apt-get install failed (full log: /tmp/lab-apt-install.log)"
  fi
  restore_policy
  # Packages whose postinst starts services through invoke-rc.d are held back by the
  # policy above; some (iscsid socket units, etc.) do nothing without systemd anyway.
  say "packages installed"
else
  say "all ${#PACKAGES[@]} packages already installed"
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing after install"

# ---------------------------------------------------------------------------------------------
# 2. kernel package
KPKG=${LAB_KERNEL_PACKAGE:-}
if [ -z "$KPKG" ]; then
  KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  if [ -z "$KPKG" ]; then
    say "apt-cache knows no linux-image-amd64 yet; running apt-get update"
    apt-get update -q >/tmp/lab-apt-update.log 2>&1 || true
    KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  fi
fi
[ -n "$KPKG" ] || die "cannot find the Debian generic kernel package (apt-cache depends linux-image-amd64)"
KVER=${KPKG#linux-image-}
KDIR=$LAB_DIR/kernel/$KVER
KROOT=$KDIR/root
mkdir -p "$LAB_DIR/kernel"

if [ -e "$KDIR/.unpacked" ]; then
  say "kernel $KVER already unpacked in $KROOT"
else
  say "downloading $KPKG"
  rm -rf "$KDIR"; mkdir -p "$KDIR/dl"
  (cd "$KDIR/dl" && apt-get download -q "$KPKG" >/tmp/lab-apt-download.log 2>&1) || {
    say "apt-get download failed, updating the package lists and retrying"
    apt-get update -q >/tmp/lab-apt-update.log 2>&1 || true
    (cd "$KDIR/dl" && apt-get download -q "$KPKG" >/tmp/lab-apt-download.log 2>&1) ||
      { cat /tmp/lab-apt-download.log >&2; die "apt-get download $KPKG failed"; }
  }
  DEB=$(ls "$KDIR"/dl/*.deb)
  say "unpacking $(basename "$DEB") ($(du -h "$DEB" | cut -f1))"
  dpkg-deb -x "$DEB" "$KROOT"
  rm -rf "$KDIR/dl"
  touch "$KDIR/.unpacked"
fi

# Modules live in lib/modules (or usr/lib/modules on merged-/usr kernels).
if [ -d "$KROOT/lib/modules/$KVER" ]; then MODDIR=$KROOT/lib/modules/$KVER
elif [ -d "$KROOT/usr/lib/modules/$KVER" ]; then MODDIR=$KROOT/usr/lib/modules/$KVER
else die "no modules directory for $KVER in $KROOT"; fi
VMLINUZ=$KROOT/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || die "no $VMLINUZ in the kernel package"

if [ ! -e "$KDIR/.depmod" ]; then
  say "depmod $KVER"
  # depmod -b wants <base>/lib/modules/<kver>
  depmod -b "${MODDIR%/lib/modules/$KVER}" "$KVER"
  touch "$KDIR/.depmod"
fi

# ---------------------------------------------------------------------------------------------
# 3. modules visible on the host at /lib/modules/<kver>
mkdir -p /lib/modules
if [ -L "/lib/modules/$KVER" ] && [ "$(readlink "/lib/modules/$KVER")" = "$MODDIR" ]; then
  :
elif [ -e "/lib/modules/$KVER" ] && [ ! -L "/lib/modules/$KVER" ]; then
  if [ "$(uname -r)" = "$KVER" ]; then
    say "/lib/modules/$KVER is the running host kernel's own tree; leaving it alone"
  else
    die "/lib/modules/$KVER exists and is not the lab's symlink; remove it or set LAB_KERNEL_PACKAGE"
  fi
else
  ln -sfn "$MODDIR" "/lib/modules/$KVER"
  say "linked /lib/modules/$KVER -> $MODDIR"
fi

# ---------------------------------------------------------------------------------------------
# 4. ELF vmlinux for PVH boot
if [ -s "$KDIR/vmlinux" ] && [ "$KDIR/vmlinux" -nt "$VMLINUZ" ]; then
  say "vmlinux already extracted"
else
  say "extracting the ELF vmlinux from $(basename "$VMLINUZ")"
  python3 - "$VMLINUZ" "$KDIR/vmlinux.tmp" <<'PY'
import lzma, gzip, struct, subprocess, sys

src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
if data[0x202:0x206] != b"HdrS":
    sys.exit(f"{src}: not a bzImage (no HdrS)")
setup_sects = data[0x1F1] or 4
payload_offset, payload_length = struct.unpack_from("<II", data, 0x248)
start = (setup_sects + 1) * 512 + payload_offset
payload = data[start:start + payload_length]

def run(argv, blob):
    p = subprocess.run(argv, input=blob, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # zstd/lz4 may complain about trailing bytes (the size field) but still write the image
    return p.stdout

if payload.startswith(b"\xfd7zXZ\x00"):
    out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    kind = "xz"
elif payload.startswith(b"\x1f\x8b"):
    out = gzip.GzipFile(fileobj=__import__("io").BytesIO(payload)).read()
    kind = "gzip"
elif payload.startswith(b"\x28\xb5\x2f\xfd"):
    out = run(["zstd", "-dc"], payload); kind = "zstd"
elif payload.startswith(b"\x02\x21\x4c\x18"):
    out = run(["lz4", "-dc"], payload); kind = "lz4"
else:
    sys.exit(f"{src}: unknown payload compression {payload[:6].hex()}")
if not out.startswith(b"\x7fELF"):
    sys.exit(f"{src}: decompressed payload ({kind}) is not an ELF file")

# Check for the PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY = 18, owner "Xen").
e_phoff, = struct.unpack_from("<Q", out, 0x20)
e_phentsize, e_phnum = struct.unpack_from("<HH", out, 0x36)
pvh = False
for i in range(e_phnum):
    p_type, _f, p_offset, _va, _pa, p_filesz = struct.unpack_from("<IIQQQQ", out, e_phoff + i * e_phentsize)
    if p_type != 4:  # PT_NOTE
        continue
    pos, end = p_offset, p_offset + p_filesz
    while pos + 12 <= end:
        namesz, descsz, ntype = struct.unpack_from("<III", out, pos)
        name = out[pos + 12:pos + 12 + namesz].rstrip(b"\0")
        if name == b"Xen" and ntype == 18:
            pvh = True
        pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
if not pvh:
    sys.exit(f"{src}: kernel has no PVH entry note; qemu cannot boot its ELF directly")
open(dst, "wb").write(out)
print(f"  {kind} payload, vmlinux {len(out) // (1 << 20)} MiB, PVH entry present")
PY
  mv -f "$KDIR/vmlinux.tmp" "$KDIR/vmlinux"
fi

# ---------------------------------------------------------------------------------------------
# 5. initramfs
INITRAMFS_MODULES=(virtio_pci virtio_blk virtio_net virtio_console 9pnet_virtio 9p overlay)
STAMP="format=$INITRAMFS_FORMAT modules=${INITRAMFS_MODULES[*]} busybox=$(md5sum /bin/busybox | cut -c1-12) script=$(md5sum "$0" | cut -c1-12)"
if [ -s "$KDIR/initramfs.gz" ] && [ "$(cat "$KDIR/initramfs.stamp" 2>/dev/null)" = "$STAMP" ]; then
  say "initramfs up to date"
else
  say "building the initramfs"
  BUILD=$(mktemp -d "$LAB_DIR/initramfs-build.XXXXXX")
  mkdir -p "$BUILD"/{bin,dev,proc,sys,newroot,mods,etc}
  cp /bin/busybox "$BUILD/bin/busybox"
  for applet in sh mount umount insmod mkdir switch_root cat sleep echo ls mknod ln; do
    ln -s busybox "$BUILD/bin/$applet"
  done
  : >"$BUILD/mods/order"
  BASE=${MODDIR%/lib/modules/$KVER}
  for m in "${INITRAMFS_MODULES[@]}"; do
    deps=$(modprobe -d "$BASE" -S "$KVER" --show-depends "$m") || die "modprobe --show-depends $m failed"
    while read -r kind path _; do
      [ "$kind" = insmod ] || continue
      name=$(basename "$path"); name=${name%.xz}; name=${name%.zst}; name=${name%.gz}
      grep -qx "$name" "$BUILD/mods/order" && continue
      case "$path" in
        *.ko.xz) xz -dc "$path" >"$BUILD/mods/$name" ;;
        *.ko.zst) zstd -qdc "$path" >"$BUILD/mods/$name" ;;
        *.ko.gz) gzip -dc "$path" >"$BUILD/mods/$name" ;;
        *) cp "$path" "$BUILD/mods/$name" ;;
      esac
      echo "$name" >>"$BUILD/mods/order"
    done <<<"$deps"
  done
  cat >"$BUILD/init" <<'INIT'
#!/bin/sh
# Stage-1 init of the reconciler lab (built by tests/lab/setup.sh). Mounts the host root
# read-only over 9p, gives it writable /etc /var /root (overlays) and /run /tmp /mnt
# (tmpfs), then hands over to the stage-2 script named by lab.init= on the command line.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "LAB-T stage1 $(cat /proc/uptime)"
for m in $(cat /mods/order); do insmod /mods/$m || echo "lab: insmod $m failed"; done
LAB_INIT= ; LAB_9P_CACHE=loose
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    lab.init=*) LAB_INIT=${arg#lab.init=} ;;
    lab.9pcache=*) LAB_9P_CACHE=${arg#lab.9pcache=} ;;
  esac
done
fail() { echo "lab: stage1: $*"; echo o >/proc/sysrq-trigger; sleep 5; exit 1; }
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144,cache=$LAB_9P_CACHE hostroot /newroot ||
  fail "cannot mount the host root over 9p"
mount -t tmpfs -o mode=755 tmpfs /newroot/run || fail "tmpfs /run"
mkdir -p /newroot/run/lab-overlay /newroot/run/lock
# /tmp is an overlay too, not a bare tmpfs: a checkout under the host's /tmp (where CI may
# clone the project) must stay visible to the guest, which runs the project from it.
for d in etc var root tmp; do
  mkdir -p /newroot/run/lab-overlay/$d/upper /newroot/run/lab-overlay/$d/work
  mount -t overlay -o lowerdir=/newroot/$d,upperdir=/newroot/run/lab-overlay/$d/upper,workdir=/newroot/run/lab-overlay/$d/work overlay /newroot/$d ||
    fail "overlay on /$d"
done
mount -t tmpfs -o mode=755 tmpfs /newroot/mnt || fail "tmpfs /mnt"
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
[ -n "$LAB_INIT" ] || fail "no lab.init= on the kernel command line"
echo "LAB-T stage2 $(cat /newroot/proc/uptime)"
exec switch_root /newroot /bin/sh "$LAB_INIT"
INIT
  chmod 755 "$BUILD/init"
  (cd "$BUILD" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6 >"$KDIR/initramfs.gz.tmp")
  mv -f "$KDIR/initramfs.gz.tmp" "$KDIR/initramfs.gz"
  echo "$STAMP" >"$KDIR/initramfs.stamp"
  say "initramfs: $(du -h "$KDIR/initramfs.gz" | cut -f1), $(wc -l <"$BUILD/mods/order") modules ($(tr '\n' ' ' <"$BUILD/mods/order"))"
  rm -rf "$BUILD"
fi

# ---------------------------------------------------------------------------------------------
# 6. wheels of the dependencies, for an install in a guest (no network there)
WHEELS=$LAB_DIR/wheels
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DEPS=$(/usr/bin/python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$REPO/pyproject.toml")
if [ -d "$WHEELS" ] && [ "$(cat "$WHEELS/.deps" 2>/dev/null)" = "$DEPS" ]; then
  say "wheels up to date in $WHEELS"
else
  say "downloading the wheels of: $(echo $DEPS)"
  rm -rf "$WHEELS.tmp" && mkdir -p "$WHEELS.tmp"
  # shellcheck disable=SC2086
  (IFS=$'\n'; /usr/bin/python3 -m pip download --quiet --disable-pip-version-check \
     --only-binary=:all: -d "$WHEELS.tmp" $DEPS) || die "pip download of the dependencies failed"
  echo "$DEPS" >"$WHEELS.tmp/.deps"
  rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
  say "wheels: $(ls "$WHEELS" | tr '\n' ' ')"
fi

# ---------------------------------------------------------------------------------------------
# 7. manifest for the harness
cat >"$LAB_DIR/lab.json.tmp" <<JSON
{
  "kver": "$KVER",
  "kernel_package": "$KPKG",
  "vmlinux": "$KDIR/vmlinux",
  "initramfs": "$KDIR/initramfs.gz",
  "modules": "/lib/modules/$KVER",
  "initramfs_format": $INITRAMFS_FORMAT,
  "wheels": "$WHEELS"
}
JSON
mv -f "$LAB_DIR/lab.json.tmp" "$LAB_DIR/lab.json"
say "ready: kernel $KVER, manifest $LAB_DIR/lab.json"
