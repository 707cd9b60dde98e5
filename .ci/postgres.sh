# Sourced by .ci/run: installs (if needed) and starts a throwaway PostgreSQL 15 on 127.0.0.1
# as the postgres user, and sets MLC_TEST_DATABASE_URL. Stops it when the caller exits.
PG_PORT=${PG_PORT:-55432}
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
PG_DATA=$(mktemp -d /tmp/mlc-ci-pg.XXXXXX)
chown postgres "$PG_DATA"
# UTF8 whatever the caller's locale: under SQL_ASCII psycopg returns text as bytes
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --locale=C \
    >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA" start >/dev/null
trap 'runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast stop >/dev/null; rm -rf "$PG_DATA"' EXIT
MLC_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
