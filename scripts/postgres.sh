#!/bin/sh
# A throwaway PostgreSQL cluster on 127.0.0.1 for the tests and benchmarks of sessionpacks.
#
# Usage:  scripts/postgres.sh [start]   start (initdb the first time); prints the DSN last
#         scripts/postgres.sh dsn       print the DSN without starting anything
#         scripts/postgres.sh status    exit 0 if the server runs
#         scripts/postgres.sh stop      stop the server (pg_ctl stop -m fast)
#         scripts/postgres.sh destroy   stop and delete the data directory
# Env:    PGDATA   (default /tmp/sessionpacks-pg/data)   PGPORT (default 54329)
#         PGSOCK   (default /tmp)   PGLOG (default $PGDATA.log)
#         PG_OPTS  extra server options, after the defaults below
#         SESSIONPACKS_PG_INSTALL=0  never install the Debian package: exit 3 if it is missing
#
# The cluster is for throwaway data: it trusts local connections, listens on 127.0.0.1 only,
# and commits without waiting for the WAL flush (synchronous_commit=off: a crash may lose the
# last few commits, never corrupts). A client can ask for durable commits per session with
# SET synchronous_commit = on, as benchmarks/bench_postgres.py does.
set -eu
PGDATA=${PGDATA:-/tmp/sessionpacks-pg/data}
PGPORT=${PGPORT:-54329}
PGSOCK=${PGSOCK:-/tmp}
PGLOG=${PGLOG:-$PGDATA.log}
PG_OPTS=${PG_OPTS:-}
DEFAULT_OPTS="-c synchronous_commit=off -c max_connections=200"
DSN="postgresql://postgres@127.0.0.1:$PGPORT/test"
COMMAND=${1:-start}

case "$COMMAND" in
start | stop | destroy | dsn | status) ;;
*)
    echo "usage: $0 [start|stop|destroy|dsn|status]" >&2
    exit 2
    ;;
esac

if [ "$COMMAND" = dsn ]; then
    echo "$DSN"
    exit 0
fi

if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
    if [ "$COMMAND" != start ]; then
        exit 0 # nothing installed, so nothing runs
    fi
    if [ "${SESSIONPACKS_PG_INSTALL:-1}" = 0 ]; then
        echo "postgresql is not installed (and SESSIONPACKS_PG_INSTALL=0)" >&2
        exit 3
    fi
    echo "installing postgresql (Debian)..." >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
fi
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}

# initdb and postgres refuse to run as root: run them as the 'postgres' OS user.
if [ "$(id -u)" = 0 ]; then
    AS="runuser -u postgres --"
else
    AS=""
fi

running() {
    [ -f "$PGDATA/PG_VERSION" ] && $AS "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

case "$COMMAND" in
status)
    running
    exit $?
    ;;
stop)
    if running; then
        $AS "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >&2
    fi
    exit 0
    ;;
destroy)
    if running; then
        $AS "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >&2 || true
    fi
    rm -rf "$PGDATA" "$PGLOG"
    exit 0
    ;;
esac

if [ ! -f "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    touch "$PGLOG"
    if [ -n "$AS" ]; then
        chown postgres:postgres "$PGDATA" "$PGLOG"
    fi
    chmod 700 "$PGDATA"
    $AS "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >&2
fi

if ! running; then
    $AS "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 \
        -o "-k $PGSOCK -h 127.0.0.1 -p $PGPORT $DEFAULT_OPTS $PG_OPTS" start >&2
fi

# The 'test' database, created once.
if ! "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -qc "CREATE DATABASE test" >&2
fi

echo "$DSN"
