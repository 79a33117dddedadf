#!/usr/bin/env bash
# run-in-vm.sh COMMAND [ARGS...]: run COMMAND inside a throwaway QEMU VM whose kernel has CAN, with
# vcan0 and vcan1 up (CAN FD MTU, 72), and return its exit code. For hosts whose kernel has no CAN (WSL, containers,
# CI machines): the VM sees the host's file system read-only with a throwaway writable layer on
# top, in the same working directory and environment, so it also serves as
#
#   go test -exec "$PWD/vcan/run-in-vm.sh" ./vcan/...
#
# The command's standard output and error come back on standard output (a virtio serial port).
# Needs Linux on x86-64 with qemu-system-x86, busybox-static and Debian's apt; as root it installs
# what is missing. The kernel is Debian's stock linux-image-amd64, downloaded and unpacked (never
# installed) into the cache: $SHEKIT_VM_CACHE, default ~/.cache/shekit-vm.
#
# Environment: SHEKIT_VM_MEMORY (MiB, default 2048), SHEKIT_VM_CPUS (default: the host's, at most
# 4), SHEKIT_VM_TIMEOUT (seconds, default 1800), SHEKIT_VM_CONSOLE (a file for the kernel's
# console, for debugging the VM itself).
set -euo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 COMMAND [ARGS...]" >&2
	exit 2
fi

cache=${SHEKIT_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shekit-vm}
layout=3 # the version of the initramfs below: bump it when /init or the module list changes
modules="can can-raw can-bcm can-gw can-isotp can-j1939 vcan vxcan virtio_pci virtio_console 9pnet_virtio 9p overlay"

die() {
	echo "run-in-vm: $*" >&2
	exit 125
}

# Tools: install what is missing when we can (idempotent), else say what is needed.
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
command -v xz >/dev/null || missing+=(xz-utils)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "run-in-vm: installing ${missing[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } ||
			die "could not install ${missing[*]}"
	else
		die "needs the Debian packages ${missing[*]} (install them as root)"
	fi
fi

# The kernel: Debian's stock one (the cloud flavour has no CAN and no 9p), its ELF vmlinux pulled
# out of the compressed image (it boots through PVH in seconds instead of the BIOS's fifteen), and
# an initramfs with busybox, the modules and /init.
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
if [ ! -s "$cache/kernel" ] || [ ! -s "$(cat "$cache/kernel")/initrd.$layout" ]; then
	dl=$(mktemp -d)
	trap 'rm -rf "$dl"' EXIT
	(cd "$dl" && apt-get download -q linux-image-amd64 >/dev/null 2>&1) || die "apt-get download linux-image-amd64 failed"
	pkg=$(dpkg-deb -f "$dl"/linux-image-amd64_*.deb Depends | grep -o 'linux-image-[0-9][^ ,]*' | head -n 1)
	[ -n "$pkg" ] || die "linux-image-amd64 names no kernel package"
	(cd "$dl" && apt-get download -q "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
	dpkg-deb -x "$dl"/"$pkg"_*.deb "$dl/x"
	version=$(ls "$dl/x/lib/modules")
	dir="$cache/$version"
	# Only the staging directory is replaced: the initrds of other layouts (other checkouts) and a
	# vmlinux that a running VM may be reading stay.
	rm -rf "$dir/initrd" && mkdir -p "$dir/initrd/bin" "$dir/initrd/lib/modules"
	vmlinuz=$(ls "$dl"/x/boot/vmlinuz-*)
	offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n 1 | cut -d: -f1 || true)
	[ -n "$offset" ] || die "no xz stream in $vmlinuz"
	tail -c +$((offset + 1)) "$vmlinuz" | xz -dc >"$dir/vmlinux.new" 2>/dev/null || true # trailing data after the stream
	[ "$(head -c 4 "$dir/vmlinux.new" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || die "could not extract vmlinux from $vmlinuz"
	mv "$dir/vmlinux.new" "$dir/vmlinux"
	# Modules in dependency order, each after what it depends on (from the .ko's modinfo).
	kmods="$dl/x/lib/modules/$version/kernel"
	declare -A path=() done=()
	while read -r f; do
		n=$(basename "$f" .ko)
		path[${n//-/_}]=$f
	done < <(find "$kmods" -name '*.ko')
	order=()
	add() {
		local n=${1//-/_} d
		[ -n "${done[$n]:-}" ] && return
		done[$n]=1
		[ -n "${path[$n]:-}" ] || die "no module $1 in $pkg"
		for d in $(tr '\0' '\n' <"${path[$n]}" | sed -n 's/^depends=//p' | tr ',' ' '); do add "$d"; done
		cp "${path[$n]}" "$dir/initrd/lib/modules/$n.ko"
		order+=("$n")
	}
	for m in $modules; do add "$m"; done
	printf '%s\n' "${order[@]}" >"$dir/initrd/modules"
	cp /bin/busybox "$dir/initrd/bin/busybox"
	cat >"$dir/initrd/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
grep -q shekit.debug /proc/cmdline && set -x
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules); do insmod /lib/modules/$m.ko || echo "insmod $m failed"; done
run=$(sed -n 's/.*shekit.run=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p /host /layer /root
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 host /host
mount -t tmpfs -o size=75% layer /layer
mkdir -p /layer/upper /layer/work
mount -t overlay -o lowerdir=/host,upperdir=/layer/upper,workdir=/layer/work root /root
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 run "/root$run"
mount -t proc proc /root/proc
mount -t sysfs sysfs /root/sys
mount -t devtmpfs devtmpfs /root/dev
mkdir -p /root/dev/pts /root/dev/shm
mount -t devpts devpts /root/dev/pts
mount -t tmpfs shm /root/dev/shm
ip link set lo up multicast on
ip route add 224.0.0.0/4 dev lo 2>/dev/null
for i in 0 1; do ip link add dev vcan$i type vcan && ip link set vcan$i mtu 72 && ip link set vcan$i up; done
out=$(ls /dev/vport*p1 | head -n 1)
chroot /root /bin/bash "$run/cmd" >"$out" 2>&1 </dev/null
echo $? >"/root$run/rc"
sync
poweroff -f
INIT
	chmod +x "$dir/initrd/init"
	(cd "$dir/initrd" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$dir/initrd.$layout"
	rm -rf "$dir/initrd"
	echo "$dir" >"$cache/kernel"
	rm -rf "$dl"
	trap - EXIT
fi
flock -u 9
dir=$(cat "$cache/kernel")

# The run: the command, its directory and environment in a shared folder that also takes the
# exit code back.
run=$(mktemp -d "${TMPDIR:-/tmp}/shekit-vm.XXXXXX")
trap 'rm -rf "$run"' EXIT
{
	echo 'set -a'
	export -p | grep -v -E '^declare -x (PWD|OLDPWD|SHLVL|_)='
	printf 'cd %q || exit 126\n' "$PWD"
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$run/cmd"

accel=tcg
if [ -w /dev/kvm ] && grep -q -E -w 'vmx|svm' /proc/cpuinfo; then accel=kvm; fi
cpus=${SHEKIT_VM_CPUS:-$(nproc)}
[ "$cpus" -gt 4 ] && cpus=4
console=${SHEKIT_VM_CONSOLE:-/dev/null}
quiet="quiet"
[ -n "${SHEKIT_VM_CONSOLE:-}" ] && quiet="shekit.debug"

# no_timer_check: under software emulation on a loaded host the kernel's boot-time check of the
# IO-APIC timer can fail and panic the VM ("IO-APIC + timer doesn't work").
set +e
timeout "${SHEKIT_VM_TIMEOUT:-1800}" qemu-system-x86_64 -M pc,accel=$accel -nodefaults -no-user-config -display none \
	-cpu max -smp "$cpus" -m "${SHEKIT_VM_MEMORY:-2048}" -no-reboot \
	-kernel "$dir/vmlinux" -initrd "$dir/initrd.$layout" \
	-append "console=ttyS0 $quiet panic=-1 no_timer_check cryptomgr.notests mitigations=off shekit.run=$run" \
	-serial "file:$console" \
	-fsdev local,id=host,path=/,security_model=none,readonly=on,multidevs=remap -device virtio-9p-pci,fsdev=host,mount_tag=host \
	-fsdev local,id=run,path="$run",security_model=none -device virtio-9p-pci,fsdev=run,mount_tag=run \
	-device virtio-serial-pci -chardev file,id=out,path=/dev/stdout -device virtserialport,chardev=out,name=out \
	</dev/null | cat
status=${PIPESTATUS[0]}
set -e
if [ ! -s "$run/rc" ]; then
	die "the VM ended (qemu status $status) without the command's exit code; set SHEKIT_VM_CONSOLE=file to see its console"
fi
exit "$(cat "$run/rc")"
