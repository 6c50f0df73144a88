#!/bin/sh
# Stage-2 init of a lab guest, run as PID 1 by the host's /bin/sh after the initramfs has
# mounted the host root read-only (9p) with writable /etc /var /root /tmp (overlays) and /run /mnt (tmpfs);
# the overlays of /etc /var /root move onto the persistent disk here (see below).
# Configures the guest from lab.* kernel arguments, then execs the agent (guest_agent.py),
# which stays PID 1, serves commands on the virtio-serial port and powers off on EOF.
#
# Kernel arguments read here (all written by harness.py):
#   lab.hostname=NAME  lab.udev=0|1  lab.net=MAC=ADDR/PREFIX[,MAC=ADDR/PREFIX...]
#   lab.agent=PATH     lab.python=PATH  lab.repo=PATH  lab.lvm=KEY=VALUE[,KEY=VALUE...]
#   lab.systemd=0|1    1: exec the host's systemd as PID 1 instead (see the end of this file)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C LANG=C HOME=/root

fail() {
  echo "lab: stage2: $*"
  echo o >/proc/sysrq-trigger
  sleep 10
  exit 1
}

mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t configfs configfs /sys/kernel/config 2>/dev/null
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr

# /etc /var /root keep their upper layers on the harness's per-guest disk (serial lab-persist,
# attached after the test's disks): formatted at the first boot, reused at the next ones, so
# a reset keeps what a real host's reboot keeps (/etc/drbd.d, /etc/iscsi, /etc/lvm/archive,
# /var/lib/...). Stage 1's overlays (upper layers in /run) stay underneath, unused; /tmp
# keeps its tmpfs upper layer (emptied at boot, as on a Debian host).
PERSIST= FIRST_BOOT=1
for b in /sys/block/vd*; do
  [ "$(cat "$b/serial" 2>/dev/null)" = lab-persist ] && PERSIST=/dev/${b##*/}
done
if [ -n "$PERSIST" ]; then
  modprobe ext4 2>/dev/null
  if [ "$(blkid -p -o value -s TYPE "$PERSIST" 2>/dev/null)" = ext4 ]; then
    FIRST_BOOT=0
    e2fsck -p "$PERSIST" >/dev/null 2>&1  # what a host's boot does after a crash (journal replay)
    [ $? -le 1 ] || fail "e2fsck $PERSIST (lab-persist) exited $?"
  else
    mkfs.ext4 -q -F -L lab-persist -E lazy_itable_init=1,lazy_journal_init=1 "$PERSIST" ||
      fail "mkfs.ext4 $PERSIST (lab-persist)"
  fi
  mkdir -p /run/lab-persist /run/lab-root
  mount -t ext4 "$PERSIST" /run/lab-persist || fail "mount $PERSIST (lab-persist)"
  mount --bind / /run/lab-root || fail "bind mount of the host root"
  # Under systemd (lab.systemd=1) /usr and /opt too: a test installs the project there.
  PERSIST_DIRS="etc var root"
  grep -q 'lab.systemd=1' /proc/cmdline && PERSIST_DIRS="$PERSIST_DIRS usr opt"
  for d in $PERSIST_DIRS; do
    mkdir -p /run/lab-persist/$d/upper /run/lab-persist/$d/work
    mount -t overlay -o lowerdir=/run/lab-root/$d,upperdir=/run/lab-persist/$d/upper,workdir=/run/lab-persist/$d/work \
      overlay /$d || fail "persistent overlay on /$d"
  done
  echo "LAB-T persist $PERSIST first_boot=$FIRST_BOOT $(cat /proc/uptime)"
fi
mkdir -p /run/lock /run/lvm /run/mdadm /var/tmp

HOSTNAME=lab UDEV=0 NET= AGENT= PY=/usr/bin/python3 REPO= LVMSET= SYSTEMD=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    lab.hostname=*) HOSTNAME=${arg#*=} ;;
    lab.udev=*) UDEV=${arg#*=} ;;
    lab.net=*) NET=${arg#*=} ;;
    lab.agent=*) AGENT=${arg#*=} ;;
    lab.python=*) PY=${arg#*=} ;;
    lab.repo=*) REPO=${arg#*=} ;;
    lab.lvm=*) LVMSET=${arg#*=} ;;
    lab.systemd=*) SYSTEMD=${arg#*=} ;;
  esac
done
[ -n "$AGENT" ] || fail "no lab.agent= on the kernel command line"

hostname "$HOSTNAME"
echo "$HOSTNAME" >/etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$HOSTNAME" >/etc/hosts
# A per-guest machine id (udev, iscsi and sanlock like to have one), kept across reboots.
[ "$FIRST_BOOT" = 1 ] && cat /proc/sys/kernel/random/uuid | tr -d '-' >/etc/machine-id

# Network: loopback, then each NIC by MAC address. Only link-local addresses ever come here.
ip link set lo up
if [ -n "$NET" ]; then
  for spec in $(echo "$NET" | tr ',' ' '); do
    mac=${spec%%=*}; addr=${spec#*=}
    dev=
    for d in /sys/class/net/*; do
      [ "$(cat "$d/address")" = "$mac" ] && dev=${d##*/}
    done
    [ -n "$dev" ] || fail "no NIC with MAC $mac"
    ip addr add "$addr" dev "$dev" || fail "ip addr add $addr dev $dev"
    ip link set "$dev" up
  done
fi

# LVM: no lvmpolld in the guest; without udev, libdm must not wait for it.
if [ -f /etc/lvm/lvm.conf ]; then
  set_lvm() {  # section-agnostic: the commented default line sits inside the right section
    sed -i -E "s/^([[:space:]]*)#?[[:space:]]*$1 = .*/\1$1 = $2/" /etc/lvm/lvm.conf
  }
  set_lvm use_lvmpolld 0
  if [ "$UDEV" != 1 ]; then
    set_lvm udev_sync 0
    set_lvm udev_rules 0
    set_lvm obtain_device_list_from_udev 0
  fi
  # extra settings from the test (Guest(lvm={...})), e.g. polling_interval=1
  for kv in $(echo "$LVMSET" | tr ',' ' '); do
    set_lvm "${kv%%=*}" "${kv#*=}"
    grep -Eq "^[[:space:]]*${kv%%=*} = ${kv#*=}\$" /etc/lvm/lvm.conf || fail "lvm.conf has no setting ${kv%%=*}"
  done
fi

if [ "$UDEV" = 1 ] && [ "$SYSTEMD" != 1 ]; then  # under systemd, its own systemd-udevd.service
  UDEVD=/lib/systemd/systemd-udevd
  [ -x "$UDEVD" ] || UDEVD=/usr/lib/systemd/systemd-udevd
  "$UDEVD" --daemon || fail "systemd-udevd did not start"
  udevadm trigger --type=subsystems --action=add
  udevadm trigger --type=devices --action=add
  udevadm settle --timeout=60 || echo "lab: udevadm settle timed out"
fi

# /dev/lab/<serial> for every virtio disk, so tests can name disks without guessing vdX.
mkdir -p /dev/lab
for b in /sys/block/vd*; do
  [ -e "$b/serial" ] || continue
  s=$(cat "$b/serial")
  [ -n "$s" ] && ln -sf "/dev/${b##*/}" "/dev/lab/$s"
done

# What this boot wrote to /etc (machine id, lvm.conf) must not hang on the first reset.
[ -n "$PERSIST" ] && sync

if [ "$SYSTEMD" = 1 ]; then
  # systemd as PID 1 (the host's /lib/systemd/systemd), booted into lab.target: sysinit.target
  # (journald, udevd, tmpfiles, the host's lvm2/iscsi/mdadm sysinit units) plus the agent as
  # a plain service that powers the guest off when it ends (the host closed the channel).
  # What the test installs goes to /etc/systemd/system, as on a host; the lab's own units are
  # runtime units in /run/systemd/system, gone at the next boot.
  SYSTEMD_BIN=/lib/systemd/systemd
  [ -x "$SYSTEMD_BIN" ] || fail "no $SYSTEMD_BIN on the host root"
  U=/run/systemd/system
  mkdir -p "$U/lab.target.wants"
  cat >"$U/lab.target" <<EOT
[Unit]
Description=Lab guest (sysinit.target and the lab agent)
Requires=sysinit.target
Wants=lab-agent.service
After=sysinit.target
AllowIsolate=yes
EOT
  cat >"$U/lab-agent.service" <<EOT
[Unit]
Description=Lab guest agent (commands from the host over virtio-serial)
DefaultDependencies=no
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
ExecStart=$PY -S -E -B -u $AGENT --python $PY --repo $REPO
KillMode=process
EOT
  # Units of the host that have no business in a throw-away guest and cost seconds each under
  # TCG: time sync (no network), the crash-dump store, users (the host root has them), binfmt
  # and the debug/tracing/hugepages/mqueue/fuse mounts, the journal's flush to /var (the
  # journal stays in /run/log/journal), dmeventd monitoring of existing LVs (lvm2-monitor).
  for u in systemd-timesyncd.service systemd-pstore.service systemd-sysusers.service \
           systemd-binfmt.service proc-sys-fs-binfmt_misc.automount dev-hugepages.mount \
           dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
           sys-fs-fuse-connections.mount systemd-journal-flush.service lvm2-monitor.service; do
    ln -sf /dev/null "$U/$u"
  done
  # systemd-tmpfiles-setup empties /tmp at boot (D /tmp in tmp.conf), which through the
  # overlay would mean a whiteout for every file of the host's /tmp (a minute here) and would
  # hide a checkout there: a runtime tmp.conf of the same name overrides it (d: keep).
  mkdir -p /run/tmpfiles.d
  echo 'd /tmp 1777 root root -' >/run/tmpfiles.d/tmp.conf
  echo "LAB-T systemd $(cat /proc/uptime)"
  exec "$SYSTEMD_BIN" --unit=lab.target
fi

echo "LAB-T agent $(cat /proc/uptime)"
exec "$PY" -S -E -B -u "$AGENT" --pid1 --python "$PY" --repo "$REPO"
