#!/bin/sh
# A sample OEM seed/key algorithm, run by the extended-seedkey profile as an external command:
# the seed in hex as the first argument (or a line on standard input), the key in hex on standard
# output. key[i] = ((seed[i] XOR mask[i mod 4]) + i) mod 256, mask = 5A C3 96 3C. It stands in
# for an algorithm an OEM keeps to itself and protects nothing.
set -eu
seed=${1:-}
if [ -z "$seed" ]; then
	read -r seed
fi
case $seed in
'' | *[!0-9A-Fa-f]*)
	echo "seedkey-xor: the seed is not hex" >&2
	exit 2
	;;
esac
if [ $((${#seed} % 2)) -ne 0 ]; then
	echo "seedkey-xor: odd number of hex digits" >&2
	exit 2
fi
i=0
key=''
while [ -n "$seed" ]; do
	rest=${seed#??}
	byte=${seed%"$rest"}
	seed=$rest
	case $((i % 4)) in
	0) mask=0x5A ;;
	1) mask=0xC3 ;;
	2) mask=0x96 ;;
	*) mask=0x3C ;;
	esac
	key=$key$(printf '%02X' $((((0x$byte ^ mask) + i) & 0xFF)))
	i=$((i + 1))
done
echo "$key"
