#!/usr/bin/env bash
# Starts (or reuses) a local clickhouse-server for the quick start, with its
# config and data under $1 (default ./questline-data/clickhouse), listening on
# 127.0.0.1 only: native port $CH_TCP_PORT (19000), HTTP $CH_HTTP_PORT (18123).
# Ports other than 9000/8123 keep clear of a system server from Debian's package.
#   scripts/clickhouse-local.sh start [dir]   start, wait until it answers
#   scripts/clickhouse-local.sh stop [dir]    stop it cleanly
set -euo pipefail
cmd=${1:-start}
dir=$(realpath -m "${2:-./questline-data/clickhouse}")
tcp=${CH_TCP_PORT:-19000}
http=${CH_HTTP_PORT:-18123}
pidfile=$dir/clickhouse.pid
server=$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)

# running: the pid file names a live clickhouse-server of this directory's
# config (a pid file a crash left behind may name an unrelated process by
# now: it is removed, never signalled).
running() {
  [[ -f $pidfile ]] || return 1
  local pid; pid=$(cat "$pidfile")
  if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "--config-file=$dir/config.xml"; then
    return 0
  fi
  rm -f "$pidfile"
  return 1
}

case $cmd in
stop)
  if running; then
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "clickhouse: still running after 20 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
    echo "clickhouse: stopped"
  fi
  exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop [dir]" >&2; exit 2 ;;
esac

if running; then
  echo "clickhouse: already running (pid $(cat "$pidfile")) on 127.0.0.1:$tcp"
  exit 0
fi
if curl -fsS "http://127.0.0.1:$http/ping" >/dev/null 2>&1 || (exec 3<>"/dev/tcp/127.0.0.1/$tcp") 2>/dev/null; then
  echo "clickhouse: 127.0.0.1:$tcp or :$http is taken by another process; set CH_TCP_PORT and CH_HTTP_PORT, or QUESTLINE_CLICKHOUSE_DSN to use that server" >&2
  exit 1
fi
mkdir -p "$dir"/{data,tmp,user_files,format_schemas,log}
cat > "$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log><errorlog>$dir/log/server.err.log</errorlog><size>50M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$tcp</tcp_port>
  <http_port>$http</http_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <timezone>UTC</timezone>
  <mark_cache_size>536870912</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <users_config>$dir/users.xml</users_config>
</yandex>
XML
cat > "$dir/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
XML
# In a session of its own: a Ctrl-C in the quick start's terminal must not
# stop the server before questline has written its last rows (the quick
# start stops it last).
# Without the quick start's lock (fd 9): the server outliving a crashed
# quick start must not keep the next one out.
setsid "$server" --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 9>&- &
echo $! >"$pidfile"
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$http/ping" >/dev/null 2>&1; then
    echo "clickhouse: running on 127.0.0.1:$tcp (data in $dir)"
    exit 0
  fi
  sleep 0.2
done
echo "clickhouse: did not start; see $dir/log/" >&2
tail -n 20 "$dir/log/server.err.log" >&2 || true
exit 1
