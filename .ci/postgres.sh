#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 for the tests and prints its URL on the last line.
# PostgreSQL refuses to run as root, so the cluster belongs to the postgres user. Idempotent:
# a server already started by this script is reused.
set -euo pipefail

port=${PGPORT_TEST:-54329}
dir=/tmp/shekit-postgres
url="postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable"

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ]; then
	if command -v apt-get >/dev/null; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
		bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	else
		echo "postgres.sh: PostgreSQL is not installed" >&2
		exit 1
	fi
fi
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if ! as_postgres "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
	rm -rf "$dir"
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
	as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c commit_delay=200 -c commit_siblings=5 -c max_connections=200" start >/dev/null
fi
echo "$url"
