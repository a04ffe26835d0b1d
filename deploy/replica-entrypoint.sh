#!/bin/sh
# Entrypoint of the streaming replica (postgres:15 image, started as root).
#
# On first start the data directory does not exist yet: clone the primary
# with pg_basebackup (-R writes standby.signal and primary_conninfo), retrying
# until the primary answers. Then run postgres as the postgres user with the
# container's command as extra arguments (e.g. -c hot_standby=on).
#
# The clone is made in a staging directory next to $PGDATA and renamed into
# place only once complete, so an interrupted clone is simply redone on the
# next start. $PGDATA must therefore be a subdirectory of the volume, not the
# mount point itself.
#
# Environment: PGDATA, PRIMARY_HOST, PRIMARY_PORT, REPLICATION_USER,
# REPLICATION_PASSWORD.
set -eu

: "${PGDATA:=/var/lib/postgresql/data/pgdata}"
: "${PRIMARY_HOST:=primary}"
: "${PRIMARY_PORT:=5432}"
: "${REPLICATION_USER:=replicator}"
: "${REPLICATION_PASSWORD:=replicator}"

parent="$(dirname "$PGDATA")"
staging="$PGDATA.clone"

# As root: hand the volume to postgres, then rerun this script as postgres,
# as the image's own entrypoint does.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$parent"
    chown postgres:postgres "$parent"
    if [ -d "$PGDATA" ]; then
        find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    fi
    exec gosu postgres sh "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
        echo "replica: $PGDATA is not empty but holds no cluster; remove the volume to reclone" >&2
        exit 1
    fi

    echo "replica: cloning $PRIMARY_HOST:$PRIMARY_PORT into $PGDATA"
    until
        rm -rf "$staging"
        PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup \
            -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER" \
            -D "$staging" -R -X stream --checkpoint=fast
    do
        echo "replica: primary not ready, retrying in 2s"
        sleep 2
    done

    # An empty $PGDATA left by an earlier attempt would make mv nest the clone.
    if [ -d "$PGDATA" ]; then
        rmdir "$PGDATA"
    fi
    mv "$staging" "$PGDATA"
    echo "replica: clone complete"
fi

# postgres refuses to start on a data directory others can read.
chmod 0700 "$PGDATA"

# The walreceiver reads the password from primary_conninfo (written by -R)
# or, failing that, from the environment.
export PGPASSWORD="$REPLICATION_PASSWORD"
exec postgres -D "$PGDATA" "$@"
