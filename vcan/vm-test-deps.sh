#!/usr/bin/env bash
# vm-test-deps.sh: install (as root, idempotently) the third-party peers the tests talk to:
# can-utils and python3 with scapy and cryptography, for the tests inside vcan/run-in-vm.sh on
# vcan0 (the VM sees the host's files) and for the DoIP interop test on the host; and chromium, which
# the web console's browser tests drive. run-in-vm.sh installs what the VM itself needs. Without root it lists
# what is missing and exits 1.
set -euo pipefail

missing=()
command -v candump >/dev/null && command -v isotpsend >/dev/null || missing+=(can-utils)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import scapy' 2>/dev/null || missing+=(python3-scapy)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import cryptography' 2>/dev/null || missing+=(python3-cryptography)
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "vm-test-deps: the VM tests need the Debian packages ${missing[*]}; install them as root" >&2
	exit 1
fi
echo "vm-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
	{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
