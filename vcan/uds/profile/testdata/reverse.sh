#!/bin/sh
# Test seed/key command: the key is the seed's bytes in reverse order. The seed comes as the last
# argument, or on standard input when there is none; any other arguments are echoed to stderr.
seed=""
for a in "$@"; do seed=$a; done
if [ $# -gt 1 ]; then
	echo "args: $*" >&2
fi
if [ -z "$seed" ]; then
	read -r seed
fi
key=''
while [ -n "$seed" ]; do
	rest=${seed#??}
	key=${seed%"$rest"}$key
	seed=$rest
done
echo "$key"
