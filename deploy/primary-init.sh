#!/bin/bash
# Runs once, when the primary's data directory is first initialised (mounted
# into /docker-entrypoint-initdb.d). Creates the role the streaming replica
# connects as and allows it replication connections from any host, with a
# password.
#
# The image executes this file when it is executable and sources it
# otherwise, so it sticks to bash and does not exit or change shell options
# beyond `set -e`.
set -e

replication_user="${REPLICATION_USER:-replicator}"
replication_password="${REPLICATION_PASSWORD:-replicator}"

# psql interpolates :"user" (identifier) and :'password' (literal) safely.
psql -v ON_ERROR_STOP=1 \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v user="$replication_user" -v password="$replication_password" <<'SQL'
CREATE ROLE :"user" WITH REPLICATION LOGIN PASSWORD :'password';
SQL

# "all" in the database column does not cover replication connections, so
# the image's catch-all line does not admit the replica; add one that does.
echo "host replication ${replication_user} all scram-sha-256" >> "$PGDATA/pg_hba.conf"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c 'SELECT pg_reload_conf()'
