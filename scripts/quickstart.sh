#!/usr/bin/env bash
# The quick start behind `make run`: a local ClickHouse (unless
# QUESTLINE_CLICKHOUSE_DSN is set), the schema, `questline run` on the
# embedded broker, and the load generator driving it, with a live summary
# read back from ClickHouse. Ctrl-C stops everything cleanly; the data stays
# under $QUESTLINE_DATA_DIR (default ./questline-data) for the next run.
#
# Environment: QUESTLINE_* as documented in the README; LOADGEN_RATE
# (events/s, default 500), LOADGEN_DURATION (default 2h), LOADGEN_SEED;
# QUESTLINE_BIN (default ./bin/questline, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${QUESTLINE_BIN:-./bin/questline}
[[ -x $bin ]] || go build -o "$bin" ./cmd/questline

export QUESTLINE_DATA_DIR=${QUESTLINE_DATA_DIR:-$PWD/questline-data}
export QUESTLINE_HTTP_ADDR=${QUESTLINE_HTTP_ADDR:-127.0.0.1:8080}
export QUESTLINE_METRICS_ADDR=${QUESTLINE_METRICS_ADDR:-127.0.0.1:9464}
# The load generator stands in for an edge proxy on loopback: it sends each
# simulated device's address in X-Forwarded-For and its country in
# X-Edge-Country, which ingest believes only from a trusted proxy.
export QUESTLINE_TRUSTED_PROXIES=${QUESTLINE_TRUSTED_PROXIES:-127.0.0.1/32}
# Windows get their first row 5 s after they end, not the product's default
# 30 s: a first look wants rows soon (later events still update them).
export QUESTLINE_PROCESS_OUT_OF_ORDER=${QUESTLINE_PROCESS_OUT_OF_ORDER:-5s}
data=$QUESTLINE_DATA_DIR
mkdir -p "$data"
# One quick start per data directory: a second one would start a second
# embedded broker on the same files, and stop the first one's ClickHouse
# when it gave up. The lock is fd 9, held by this script and questline run.
exec 9>"$data/.quickstart.lock"
if ! flock -n 9; then
  echo "quickstart: another quick start is using $data (stop it with Ctrl-C in its terminal, or set QUESTLINE_DATA_DIR to another directory)" >&2
  exit 1
fi

# Development keys: random, generated once, kept with the data.
if [[ ! -f $data/dev-keys.env ]]; then
  umask 077
  printf 'QUESTLINE_API_KEYS=dev-server-%s\nQUESTLINE_CLIENT_KEYS=dev-client-%s\n' \
    "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$data/dev-keys.env"
fi
# The API's attempt-token secret (added to a data directory made before it).
if ! grep -q '^QUESTLINE_API_SECRET=' "$data/dev-keys.env"; then
  (umask 077; printf 'QUESTLINE_API_SECRET=%s\n' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>"$data/dev-keys.env")
fi
set -a; . "$data/dev-keys.env"; set +a

# The embedded broker's address must be free: with another process on it,
# questline would use that process as its broker.
taken() { [[ -n $1 ]] && (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
kafka_addr=${QUESTLINE_EMBEDDED_KAFKA_ADDR:-127.0.0.1:9092}
if [[ -z ${QUESTLINE_KAFKA_BROKERS:-} ]] && taken "$kafka_addr"; then
  echo "quickstart: $kafka_addr is taken by another process (another questline?); set QUESTLINE_EMBEDDED_KAFKA_ADDR to a free address (or QUESTLINE_KAFKA_BROKERS to use that Kafka)" >&2
  exit 1
fi
for a in HTTP_ADDR METRICS_ADDR; do
  v=QUESTLINE_$a
  if taken "${!v}"; then
    echo "quickstart: ${!v} is taken by another process; set $v to a free address" >&2
    exit 1
  fi
done

pids=()
own_ch=0
stop_all() {
  # Once: a second Ctrl-C while stopping must not cut the stop short.
  trap - EXIT
  trap '' INT TERM
  echo
  echo "stopping..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if ((own_ch)); then scripts/clickhouse-local.sh stop "$data/clickhouse"; fi
  echo "stopped. Data kept in $data (delete it for a fresh start)."
}
# Ctrl-C (or a TERM) stops everything and ends the script; EXIT covers
# the error paths. Set before ClickHouse starts: a Ctrl-C while it starts
# stops it too.
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

. scripts/clickhouse-dsn.sh
ch_host=127.0.0.1
ch_port=${CH_TCP_PORT:-19000}
ch_db=questline
ch_auth=()
if [[ -z ${QUESTLINE_CLICKHOUSE_DSN:-} ]]; then
  # Ours to stop at the end, also when it was running already: with the
  # lock held, that is a server a crashed quick start of this directory
  # left behind.
  own_ch=1
  scripts/clickhouse-local.sh start "$data/clickhouse"
  export QUESTLINE_CLICKHOUSE_DSN="clickhouse://127.0.0.1:$ch_port/questline"
elif ch_from_dsn "$QUESTLINE_CLICKHOUSE_DSN" "$data"; then
  : # the summary and the commands printed below read the same server
else
  echo "quickstart: cannot read host and port from QUESTLINE_CLICKHOUSE_DSN for the summary; it will show no figures" >&2
fi
# A NULL (\N: e.g. a lift without control converters yet) shows as "-".
chc() { clickhouse-client --host "$ch_host" --port "$ch_port" "${ch_auth[@]}" -d "$ch_db" "$@"; }
chq() { { chc --format TSV -q "$1" 2>/dev/null || true; } | sed 's/^\\N$//'; }

"$bin" migrate
"$bin" run >>"$data/questline.log" 2>&1 &
pids+=($!)
ready=0
for _ in $(seq 1 100); do
  [[ -z $QUESTLINE_METRICS_ADDR ]] && break # no /readyz to ask
  curl -fsS "http://$QUESTLINE_METRICS_ADDR/readyz" >/dev/null 2>&1 && { ready=1; break; }
  kill -0 "${pids[0]}" 2>/dev/null || { echo "questline run exited; see $data/questline.log" >&2; tail -n 20 "$data/questline.log" >&2; exit 1; }
  sleep 0.3
done
if ((!ready)) && [[ -n $QUESTLINE_METRICS_ADDR ]]; then
  echo "quickstart: questline run is not ready after 30 s (a long restore?); going on, see $data/questline.log" >&2
fi
echo "questline run: ingest and the quest/drop API on http://$QUESTLINE_HTTP_ADDR, metrics on http://$QUESTLINE_METRICS_ADDR/metrics (log: $data/questline.log)"

# The first live drop starts 30 s in (default 2 min), so lift shows sooner.
QUESTLINE_METRICS_ADDR= "$bin" loadgen -rate "${LOADGEN_RATE:-500}" -duration "${LOADGEN_DURATION:-2h}" -drop-first 30s \
  -seed "${LOADGEN_SEED:-$(date +%s)}" -skip-expected >>"$data/loadgen.log" 2>&1 &
pids+=($!)

cat <<MSG

The pipeline is running with synthetic traffic (log: $data/loadgen.log).
Query it from another terminal, e.g.:
  clickhouse-client --host $ch_host --port $ch_port ${ch_auth[*]} -d $ch_db -q 'SELECT type, count() FROM events FINAL GROUP BY type'
  clickhouse-client --host $ch_host --port $ch_port ${ch_auth[*]} -d $ch_db -q 'SELECT * FROM offer_yield FINAL WHERE scope = '\''all'\'' AND placement = '\'''\'' AND bidder_id = '\'''\'' ORDER BY window_start DESC LIMIT 5'
Tables and queries: docs/analysts.md. The quest/drop API (docs/api.md;
its OpenAPI document: http://$QUESTLINE_HTTP_ADDR/v1/openapi.json), e.g.:
  set -a; . $data/dev-keys.env; set +a   # the development keys
  curl -s -H "Authorization: Bearer \$QUESTLINE_API_KEYS" -H 'Content-Type: application/json' \\
    -d '{"quest_id":"q-demo","min_duration_ms":60000}' http://$QUESTLINE_HTTP_ADDR/v1/quests
Press Ctrl-C to stop everything.

MSG

# One probe, with its error shown: a summary of zeros says nothing.
if ! probe=$(chc -q 'SELECT 1' 2>&1); then
  echo "quickstart: the summary cannot read ClickHouse at $ch_host:$ch_port: $probe" >&2
fi

# tables: how many of the seven window tables have rows yet.
tables_q="SELECT (SELECT count() > 0 FROM quest_completion) + (SELECT count() > 0 FROM conversion_latency)
  + (SELECT count() > 0 FROM quest_conversions) + (SELECT count() > 0 FROM creator_lift) + (SELECT count() > 0 FROM offer_yield)
  + (SELECT count() > 0 FROM bidstream_integrity) + (SELECT count() > 0 FROM bot_signals)"
printf '%-8s %9s %8s %10s %7s %12s %9s %8s %8s\n' time events ev/s rejected tables yield_rpm lift p99_ms bots
prev=0 prev_t=${EPOCHREALTIME//[.,]/} loadgen_done=0
while sleep 5; do
  if ! kill -0 "${pids[0]}" 2>/dev/null; then
    # Ctrl-C in a terminal reaches every process of the group: questline
    # run stops cleanly (status 0) even when this shell's trap does not
    # run (bash skips it when a child it waited for, clickhouse-client,
    # handled the SIGINT itself). A clean exit is a stop, not a failure.
    st=0; wait "${pids[0]}" || st=$?
    ((st == 0)) && exit 0
    echo "questline run exited with status $st; see $data/questline.log" >&2; exit 1
  fi
  if ((!loadgen_done)) && ! kill -0 "${pids[1]}" 2>/dev/null; then
    loadgen_done=1
    echo "quickstart: the load generator stopped (its duration, or an error: see $data/loadgen.log); the pipeline keeps running" >&2
  fi
  total=$(chq "SELECT count() FROM events")
  total=${total:-0}
  now_t=${EPOCHREALTIME//[.,]/}
  rate=$(( (total - prev) * 1000000 / (now_t - prev_t) )); ((prev == 0)) && rate=0; prev=$total prev_t=$now_t
  rejected=$(chq "SELECT count() FROM rejected_events")
  rpm=$(chq "SELECT round(rpm, 3) FROM offer_yield FINAL WHERE scope = 'all' AND placement = '' AND bidder_id = '' ORDER BY window_start DESC LIMIT 1")
  lift=$(chq "SELECT round(lift, 3) FROM creator_lift FINAL WHERE scope = 'all' ORDER BY updated_at DESC LIMIT 1")
  p99=$(chq "SELECT p99_ms FROM conversion_latency FINAL WHERE scope = 'all' AND quest_id = '' ORDER BY window_start DESC LIMIT 1")
  bots=$(chq "SELECT uniqExactIf(entity_id, flagged = 1) FROM bot_signals FINAL")
  tables=$(chq "$tables_q")
  printf '%-8s %9s %8s %10s %7s %12s %9s %8s %8s\n' "$(date +%H:%M:%S)" "$total" "$rate" "${rejected:-0}" "${tables:-0}/7" "${rpm:--}" "${lift:--}" "${p99:--}" "${bots:--}"
done
