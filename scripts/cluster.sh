#!/usr/bin/env bash
# Loupe on several nodes on this machine, on loopback, laid out as README "Deploying" says:
# PostgreSQL and Redis on private ports, N Loupe nodes (gunicorn, config/gunicorn.py) that
# share them and one data folder, and Debian's nginx in front of them with a self-signed
# certificate (config/nginx/loupe.conf). Its state lives in one folder (default
# ./data/cluster) and is kept between runs; every process is stopped by its PID.
#
#   scripts/cluster.sh [--nodes N] [--port P] [--demo] [--detach] [--dir D]
#       Start. Serves https://localhost:P/ (P: 8443); the nodes listen on P+1 ... P+N,
#       PostgreSQL on P+20, Redis on P+21, all on 127.0.0.1. --demo loads the demo
#       studies and prints a login (manage.py demo --no-serve). In the foreground, Ctrl-C
#       stops everything it started; with --detach it returns once all answer.
#   scripts/cluster.sh stop [--dir D]
#       Stop the cluster of that folder (by the PIDs it recorded when it started).
#
# D/env holds the nodes' environment (with the secret key: mode 0600), so that
# `. D/env && .venv/bin/python manage.py createsuperuser` works on the cluster's database.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

nodes=2
port=8443
demo=0
detach=0
dir="$PWD/data/cluster"
command=start
while [ $# -gt 0 ]; do
  case "$1" in
    stop) command=stop ;;
    --nodes) nodes="${2:?--nodes needs a number}"; shift ;;
    --port) port="${2:?--port needs a number}"; shift ;;
    --dir) dir="${2:?--dir needs a folder}"; shift ;;
    --demo) demo=1 ;;
    --detach) detach=1 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$nodes" =~ ^[1-9]$ ]] || { echo "cluster.sh: --nodes must be 1 to 9" >&2; exit 2; }
[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1024 ] && [ "$port" -le 65000 ] ||
  { echo "cluster.sh: --port must be 1024 to 65000" >&2; exit 2; }
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
run="$dir/run"
pids="$run/pids" # one line per process: name, PID, a fragment its command line holds

PG_BIN="${LOUPE_PG_BIN:-/usr/lib/postgresql/15/bin}"
pg_port=$((port + 20))
redis_port=$((port + 21))
as_postgres=()
[ "$(id -u)" -eq 0 ] && as_postgres=(runuser -u postgres --)

# The process recorded as PID $1 is still the one started (its command line holds $2).
is_ours() {
  local cmdline
  cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline")" || return 1
  [[ "$cmdline" == *"$2"* ]]
}

stop_cluster() {
  [ -f "$pids" ] || return 0
  local name pid mark signal
  # The last started first: nginx, the nodes, Redis, PostgreSQL.
  tac "$pids" | while read -r name pid mark; do
    is_ours "$pid" "$mark" || continue
    signal=TERM
    [ "$name" = postgres ] && signal=INT # PostgreSQL's fast shutdown
    kill "-$signal" "$pid" 2>/dev/null || continue
    for _ in $(seq 1 300); do
      is_ours "$pid" "$mark" || break
      sleep 0.1
    done
    if is_ours "$pid" "$mark"; then
      kill -KILL "$pid" 2>/dev/null || true
      echo "killed $name (PID $pid): it did not stop within 30 s"
    else
      echo "stopped $name (PID $pid)"
    fi
  done
  rm -f "$pids" "$run/cluster.pid"
}

if [ "$command" = stop ]; then
  if [ -f "$run/cluster.pid" ] && is_ours "$(cat "$run/cluster.pid")" cluster.sh; then
    kill -TERM "$(cat "$run/cluster.pid")" # the foreground script stops its own processes
    for _ in $(seq 1 600); do
      [ -f "$pids" ] || break
      sleep 0.1
    done
  fi
  stop_cluster
  exit 0
fi

if [ -f "$pids" ]; then
  while read -r name pid mark; do
    if is_ours "$pid" "$mark"; then
      echo "cluster.sh: a cluster of $dir is running ($name, PID $pid): scripts/cluster.sh stop --dir $dir" >&2
      exit 1
    fi
  done <"$pids"
  rm -f "$pids"
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
node_ports=()
for i in $(seq 1 "$nodes"); do node_ports+=($((port + i))); done
for p in "$port" "${node_ports[@]}" "$pg_port" "$redis_port"; do
  if port_in_use "$p"; then
    echo "cluster.sh: port $p on 127.0.0.1 is in use (choose another --port)" >&2
    exit 1
  fi
done

apt_install postgresql redis-server nginx openssl curl
ensure_venv requirements.txt

mkdir -p "$run"
trap stop_cluster EXIT
trap 'exit 130' INT TERM
echo "$$" >"$run/cluster.pid"

# Bounded wait: until "$@" succeeds, at most $1 seconds; $2 names what is awaited, $3 its log.
wait_for() {
  local seconds="$1" what="$2" log="$3"
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "cluster.sh: $what did not answer within $seconds s; the end of $log:" >&2
      tail -n 30 "$log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}

echo "== PostgreSQL on 127.0.0.1:$pg_port"
mkdir -p "$dir/postgres/sock"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir/postgres" "$dir/postgres/sock"; fi
if [ ! -f "$dir/postgres/data/PG_VERSION" ]; then
  "${as_postgres[@]}" "$PG_BIN/initdb" -D "$dir/postgres/data" -A trust -U postgres -E UTF8 >/dev/null
fi
setsid "${as_postgres[@]}" "$PG_BIN/postgres" -D "$dir/postgres/data" -p "$pg_port" \
  -c listen_addresses=127.0.0.1 -k "$dir/postgres/sock" -c max_connections=200 \
  >>"$dir/postgres/postgres.log" 2>&1 &
wait_for 30 PostgreSQL "$dir/postgres/postgres.log" "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$pg_port"
echo "postgres $(head -n 1 "$dir/postgres/data/postmaster.pid") $dir/postgres/data" >>"$pids"
if [ -z "$("$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'loupe'")" ]; then
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres loupe
fi

echo "== Redis on 127.0.0.1:$redis_port"
mkdir -p "$dir/redis"
setsid redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir/redis" --save "" \
  --appendonly no --maxmemory 512mb --maxmemory-policy allkeys-lru --daemonize no \
  >>"$dir/redis/redis.log" 2>&1 &
echo "redis $! 127.0.0.1:$redis_port" >>"$pids" # redis-server retitles itself "redis-server <address>"
redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping)" = PONG ]; }
wait_for 20 Redis "$dir/redis/redis.log" redis_ping

# The nodes' shared environment.
if [ ! -s "$dir/secret-key" ]; then
  (umask 077 && .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" >"$dir/secret-key")
fi
unset LOUPE_DEBUG LOUPE_DEMO LOUPE_CACHE_DIR
export LOUPE_SECRET_KEY="$(cat "$dir/secret-key")"
export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/loupe"
export LOUPE_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export LOUPE_DATA_DIR="$dir/shared"
export LOUPE_HTTPS=1
export LOUPE_TRUSTED_PROXIES=127.0.0.1
export LOUPE_ALLOWED_HOSTS=localhost,127.0.0.1
(
  umask 077
  for name in LOUPE_SECRET_KEY DATABASE_URL LOUPE_REDIS_URL LOUPE_DATA_DIR LOUPE_HTTPS \
    LOUPE_TRUSTED_PROXIES LOUPE_ALLOWED_HOSTS; do
    printf 'export %s=%q\n' "$name" "${!name}"
  done >"$dir/env"
)

echo "== migrate"
.venv/bin/python manage.py migrate -v0
if [ "$demo" = 1 ]; then
  echo "== demo studies"
  .venv/bin/python manage.py demo --no-serve --port "$port" |
    sed -e "s#http://127.0.0.1:$port/#https://localhost:$port/#g" -e '/demo EHR:/d'
fi

for i in $(seq 1 "$nodes"); do
  node_port="${node_ports[$((i - 1))]}"
  echo "== node $i on 127.0.0.1:$node_port"
  mkdir -p "$dir/node$i"
  LOUPE_CACHE_DIR="$dir/node$i/cache" setsid .venv/bin/gunicorn -c config/gunicorn.py \
    config.wsgi --bind "127.0.0.1:$node_port" >>"$dir/node$i/gunicorn.log" 2>&1 &
  echo "node$i $! 127.0.0.1:$node_port" >>"$pids"
done
for i in $(seq 1 "$nodes"); do
  wait_for 60 "node $i" "$dir/node$i/gunicorn.log" \
    curl -sf -o /dev/null -H "X-Forwarded-Proto: https" "http://127.0.0.1:${node_ports[$((i - 1))]}/login/"
done

echo "== nginx on 127.0.0.1:$port"
mkdir -p "$dir/nginx/logs" "$dir/nginx/temp" "$dir/tls"
if [ ! -s "$dir/tls/certificate.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/tls/key.pem" -out "$dir/tls/certificate.pem" 2>/dev/null
  chmod 600 "$dir/tls/key.pem"
fi
upstreams=""
for p in "${node_ports[@]}"; do upstreams+="server 127.0.0.1:$p; "; done
sed -e "s|@LISTEN@|127.0.0.1:$port|g" -e "s|@SERVER_NAME@|localhost|g" \
  -e "s|@UPSTREAM_SERVERS@|$upstreams|g" \
  -e "s|@CERTIFICATE@|$dir/tls/certificate.pem|g" -e "s|@CERTIFICATE_KEY@|$dir/tls/key.pem|g" \
  -e "s|@CACHE_DIR@|$dir/nginx/cache|g" -e "s|@LOG_DIR@|$dir/nginx/logs|g" \
  config/nginx/loupe.conf >"$dir/nginx/loupe.conf"
if grep -q '@[A-Z_]*@' "$dir/nginx/loupe.conf"; then
  echo "cluster.sh: config/nginx/loupe.conf has a placeholder this script does not fill:" >&2
  grep -o '@[A-Z_]*@' "$dir/nginx/loupe.conf" | sort -u >&2
  exit 1
fi
{
  [ "$(id -u)" -eq 0 ] && echo "user www-data www-data;"
  echo "pid $dir/nginx/nginx.pid;"
  echo "error_log $dir/nginx/logs/error.log warn;"
  echo "daemon off;"
  echo "worker_processes auto;"
  echo "events { worker_connections 1024; }"
  echo "http {"
  echo "    include /etc/nginx/mime.types;"
  echo "    default_type application/octet-stream;"
  for kind in client_body proxy fastcgi uwsgi scgi; do
    echo "    ${kind}_temp_path $dir/nginx/temp/$kind;"
  done
  echo "    include $dir/nginx/loupe.conf;"
  echo "}"
} >"$dir/nginx/nginx.conf"
setsid nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/logs/error.log" \
  >>"$dir/nginx/logs/nginx.log" 2>&1 &
echo "nginx $! $dir/nginx" >>"$pids"
wait_for 20 nginx "$dir/nginx/logs/error.log" \
  curl -sf -o /dev/null --cacert "$dir/tls/certificate.pem" "https://localhost:$port/login/"

cat <<EOF

Loupe cluster ready: $nodes nodes behind nginx
  open:        https://localhost:$port/   (trust $dir/tls/certificate.pem, or accept it)
  nodes:       $(for p in "${node_ports[@]}"; do printf 'http://127.0.0.1:%s ' "$p"; done)(reachable from this machine only)
  PostgreSQL:  $DATABASE_URL
  Redis:       $LOUPE_REDIS_URL
  data:        $LOUPE_DATA_DIR (shared), $dir/node<N>/cache (per node)
  logs:        $dir/node<N>/gunicorn.log, $dir/nginx/logs/loupe-access.log
  an account:  . $dir/env && .venv/bin/python manage.py createsuperuser
  stop:        scripts/cluster.sh stop --dir $dir
EOF

if [ "$detach" = 1 ]; then
  rm -f "$run/cluster.pid"
  trap - EXIT INT TERM
  exit 0
fi
echo "Serving (Ctrl-C stops everything)…"
while true; do
  sleep 1 &
  wait $! || true
done
