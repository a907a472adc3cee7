#!/bin/sh
# Entrypoint of the offline postgres image built by harness/postgres/image.py.
# Follows the official image's env contract (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB,
# PGDATA, POSTGRES_HOST_AUTH_METHOD, POSTGRES_INITDB_ARGS). Uses only shell builtins and the
# PostgreSQL binaries, so it runs the same under busybox sh and dash. Never prints the password.
set -eu

case "${1:-}" in -*) set -- postgres "$@" ;; esac
if [ "${1:-}" != postgres ]; then
	exec "$@"
fi
shift

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
export PGDATA

die() {
	printf 'docker-entrypoint: error: %s\n' "$*" >&2
	exit 1
}

quote_ident() { # print $1 as a double-quoted SQL identifier
	rest=$1 out=
	while :; do
		case $rest in
			*'"'*) out="$out${rest%%\"*}\"\"" rest=${rest#*\"} ;;
			*) break ;;
		esac
	done
	printf '"%s"' "$out$rest"
}

init_cluster() {
	set -f # POSTGRES_INITDB_ARGS is split into words, never globbed
	# shellcheck disable=SC2086
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		printf '%s\n' "$POSTGRES_PASSWORD" | initdb --pwfile=/dev/stdin --username="$POSTGRES_USER" \
			--encoding=UTF8 --locale=C --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
			--no-instructions ${POSTGRES_INITDB_ARGS:-}
	else
		initdb --username="$POSTGRES_USER" \
			--encoding=UTF8 --locale=C --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
			--no-instructions ${POSTGRES_INITDB_ARGS:-}
	fi
	set +f
	printf '\n# docker-entrypoint.sh: TCP from anywhere\nhost all all all %s\n' \
		"$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

create_database() { # single-user backend: no TCP listener, so no premature readiness
	sql="CREATE DATABASE $(quote_ident "$POSTGRES_DB");"
	out=$(printf '%s\n\n' "$sql" | postgres --single -j -D "$PGDATA" postgres 2>&1) || {
		printf '%s\n' "$out" >&2
		die "could not create database $POSTGRES_DB"
	}
	case $out in
		*ERROR:* | *FATAL:* | *PANIC:*)
			printf '%s\n' "$out" >&2
			die "could not create database $POSTGRES_DB"
			;;
	esac
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		die 'POSTGRES_PASSWORD is not set: set it to a non-empty password, or set' \
			'POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password.'
	fi
	init_cluster
	if [ "$POSTGRES_DB" != postgres ]; then
		create_database
	fi
	printf 'docker-entrypoint: PostgreSQL init process complete; ready for start up.\n'
fi

exec postgres -c listen_addresses='*' -p 5432 "$@"
