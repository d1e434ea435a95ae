#!/bin/bash
# Creates the ClickHouse user of Grafana's data source
# (dashboards/provisioning/datasources/clickhouse.yml): it may read the
# database questline and nothing else (readonly = 2: no writes, no DDL;
# settings may change, as the plugin's client sets max_execution_time).
# Grafana runs any SQL a dashboard editor types, so its user must not be
# the default one.
#
# The clickhouse image runs this on its first start (an empty data
# volume). On a volume created before it, run it once:
#   docker-compose exec clickhouse bash /docker-entrypoint-initdb.d/10-grafana-reader.sh
#
# The password is GRAFANA_CLICKHOUSE_PASSWORD, sent as its SHA-256 only
# (no quoting to get wrong, and the plain text never reaches the query log).
set -euo pipefail
: "${GRAFANA_CLICKHOUSE_PASSWORD:?set GRAFANA_CLICKHOUSE_PASSWORD}"
hash=$(printf '%s' "$GRAFANA_CLICKHOUSE_PASSWORD" | sha256sum | cut -d' ' -f1)
clickhouse client --multiquery <<SQL
CREATE USER OR REPLACE grafana IDENTIFIED WITH sha256_hash BY '$hash' SETTINGS readonly = 2;
GRANT SELECT ON questline.* TO grafana;
SQL
