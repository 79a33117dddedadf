#!/bin/sh
# setup-vcan.sh [IFACE...]: load the vcan module and bring up virtual CAN interfaces (vcan0 when
# none are named) with the CAN FD MTU (72 bytes), so that they carry classic and CAN FD frames.
# Idempotent: interfaces that exist are only set up (one with another MTU is taken down to change
# it). Needs root (or CAP_NET_ADMIN) and a kernel with CAN; on a kernel without it, it says so in
# one line and exits 1.
set -eu

[ "$#" -gt 0 ] || set -- vcan0

if [ ! -d /sys/module/vcan ] && ! modprobe vcan 2>/dev/null; then
	if [ ! -d /sys/module/can ] && ! grep -qs '^can ' /proc/modules; then
		echo "setup-vcan: this kernel has no CAN support (no vcan module); use the in-memory bus (--can mem)" >&2
	else
		echo "setup-vcan: cannot load the vcan module (modprobe vcan failed; root needed?)" >&2
	fi
	exit 1
fi

for iface in "$@"; do
	if ! ip link show "$iface" >/dev/null 2>&1; then
		ip link add dev "$iface" type vcan
	fi
	if [ "$(cat "/sys/class/net/$iface/mtu")" != 72 ]; then
		ip link set down "$iface"
		ip link set "$iface" mtu 72
	fi
	ip link set up "$iface"
	echo "setup-vcan: $iface is up (CAN FD)"
done
