#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on their local ports, starting (and if need be
# installing, from Debian's packages) local servers when they do not. Servers already running
# are left as they are.
set -euo pipefail

PG_HOST=${PID_PG_HOST:-127.0.0.1}
PG_PORT=${PID_PG_PORT:-5432}
REDIS_PORT=${PID_REDIS_PORT:-6379}

listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {
    local name=$1 host=$2 port=$3
    for _ in $(seq 1 60); do
        listening "$host" "$port" && return 0
        sleep 0.5
    done
    echo "error: $name did not start on $host:$port" >&2
    return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
    echo "installing $* from Debian's packages"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
    if listening "$PG_HOST" "$PG_PORT"; then return 0; fi
    command -v pg_ctlcluster >/dev/null || install_packages postgresql
    local version
    version=$(ls /etc/postgresql | sort -V | tail -1)
    echo "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_for PostgreSQL "$PG_HOST" "$PG_PORT"
    # Local trust for the postgres role over TCP, as the default settings expect.
    if ! psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -c "select 1" >/dev/null 2>&1; then
        local hba="/etc/postgresql/$version/main/pg_hba.conf"
        as_root sed -i 's/^\(host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\).*/\1trust/' "$hba"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
}

ensure_redis() {
    if listening 127.0.0.1 "$REDIS_PORT"; then return 0; fi
    command -v redis-server >/dev/null || install_packages redis-server
    echo "starting Redis"
    mkdir -p var/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
        --appendonly no --dir "$PWD/var/redis" --logfile "$PWD/var/redis/redis.log"
    wait_for Redis 127.0.0.1 "$REDIS_PORT"
}

ensure_postgres
ensure_redis
echo "PostgreSQL on $PG_HOST:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT are up"
