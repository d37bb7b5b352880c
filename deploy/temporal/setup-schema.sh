#!/bin/sh
# The temporal-schema service of docker-compose.yml: Temporal's two databases and their
# schemas on the temporal-postgresql service. Each step is idempotent in
# temporal-sql-tool itself: `create` accepts a database that exists, `setup-schema -v 0.0`
# leaves a newer schema alone, `update-schema` applies only the versions not yet applied.
# So a rerun (every `docker compose up`) changes nothing, and any error stops it.
set -eu

SCHEMA_DIR=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  case $db in
    temporal) versions=$SCHEMA_DIR/temporal/versioned ;;
    *) versions=$SCHEMA_DIR/visibility/versioned ;;
  esac
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
    -u "$POSTGRES_USER" --db "$db" create
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
    -u "$POSTGRES_USER" --db "$db" setup-schema -v 0.0
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
    -u "$POSTGRES_USER" --db "$db" update-schema -d "$versions"
  echo "database $db: schema up to date"
done
