#!/usr/bin/env bash
# run-with-monkey.sh -- build the plugin and run it in a real Monkey, in the foreground.
#
#   MONKEY_BIN=/path/to/monkey/bin/monkey scripts/run-with-monkey.sh [PROXY_CONF]
#
# Without PROXY_CONF: the example conf/proxy_reverse.conf, and demo origins (the crate's
# proxy-reverse-demo-origin) on its backend addresses that nothing listens on yet
# (127.0.0.1:8080, :8081, :9001, :9002); they stop with Monkey.
# With PROXY_CONF: that file, read where it is, so the checker, Monkey's log and the
# statistics page name it (the plugin reads PROXY_REVERSE_CONF); no demo origins, unless
# DEMO=1 (then on the 127.0.0.1 servers of its ServerList lines). DEMO=0: none at all.
#
# The configuration is checked, a URL to try per entry and the statistics page are
# printed, then Monkey runs on 127.0.0.1:$PORT (default 2001) with a copy of its own
# configuration (MONKEY_CONF, default <MONKEY_BIN dir>/../conf) in RUN_DIR (default
# target/monkey-run). Ctrl-C stops Monkey and the demo origins.
#
# PREBUILT=DIR takes libproxy_reverse.so, proxy-reverse-check and proxy-reverse-demo-origin
# from DIR instead of building the release ones (the tests do).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${MONKEY_BIN:?set MONKEY_BIN to the monkey binary of a Monkey v1.8 build}
src_conf=${MONKEY_CONF:-$(dirname "$bin")/../conf}
port=${PORT:-2001}
run=${RUN_DIR:-$here/target/monkey-run}
if [ $# -gt 1 ]; then
  echo "usage: MONKEY_BIN=... scripts/run-with-monkey.sh [PROXY_CONF]" >&2
  exit 2
fi
if [ $# -eq 1 ]; then
  proxy_conf=$1
  demo=${DEMO:-0}
else
  proxy_conf=$here/conf/proxy_reverse.conf
  demo=${DEMO:-1}
fi
if [ ! -r "$proxy_conf" ] || [ -d "$proxy_conf" ]; then
  echo "run-with-monkey.sh: cannot read $proxy_conf" >&2
  exit 1
fi
# Monkey gets the absolute path: its messages and the statistics page name this file.
proxy_conf_abs=$(cd "$(dirname "$proxy_conf")" && pwd)/$(basename "$proxy_conf")

if [ -n "${PREBUILT:-}" ]; then
  built=$PREBUILT
else
  cargo build --release --manifest-path "$here/Cargo.toml"
  target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$here/Cargo.toml" |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  built=$target_dir/release
fi

rm -rf "$run/conf"
mkdir -p "$run/conf" "$run/logs"
cp -r "$src_conf"/. "$run/conf/"
# Our own listen address and pid file; keep everything else as the user configured it.
sed -i -E "s|^([[:space:]]+)Listen .*|\1Listen 127.0.0.1:$port|; s|^([[:space:]]+)PidFile .*|\1PidFile $run/monkey.pid|" "$run/conf/monkey.conf"
if ! PREBUILT=$built "$here/scripts/install.sh" "$run/conf" "$run/lib" > "$run/install.log" 2>&1; then
  cat "$run/install.log" >&2
  exit 1
fi
# The file Monkey would read without PROXY_REVERSE_CONF is the user's file too.
ln -sfn "$proxy_conf_abs" "$run/conf/plugins/proxy_reverse/proxy_reverse.conf"
check=$run/lib/proxy-reverse-check

echo "configuration: $proxy_conf"
if ! "$check" "$proxy_conf"; then
  echo "run-with-monkey.sh: fix $proxy_conf first (the plugin would answer 503)" >&2
  exit 1
fi

origin_pid=
monkey_pid=
cleanup() {
  if [ -n "$monkey_pid" ]; then
    kill -TERM "$monkey_pid" 2>/dev/null || true
  fi
  if [ -n "$origin_pid" ]; then
    kill -TERM "$origin_pid" 2>/dev/null || true
    wait "$origin_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if [ "$demo" = 1 ]; then
  # The loopback servers the file names; the origin skips those something listens on.
  mapfile -t addrs < <(sed -n 's/^[[:space:]]*ServerList[[:space:]]//p' "$proxy_conf" |
    grep -oE '127\.0\.0\.1:[0-9]+' | sort -u)
  if [ ${#addrs[@]} -eq 0 ]; then
    echo "  no 127.0.0.1:PORT server in $proxy_conf: no demo origin started"
  else
    "$built/proxy-reverse-demo-origin" --exit-with-parent "${addrs[@]}" > "$run/demo-origins.log" 2>&1 &
    origin_pid=$!
    for _ in $(seq 200); do
      grep -q '^ready:' "$run/demo-origins.log" && break
      kill -0 "$origin_pid" 2>/dev/null || break
      sleep 0.05
    done
    sed 's/^ready: //; s/^/  /' "$run/demo-origins.log"
  fi
fi

echo
echo "proxy_reverse in Monkey on http://127.0.0.1:$port/ -- try (Ctrl-C stops it):"
# --urls repeats the checker's warnings, printed above already.
"$check" --urls "$proxy_conf" 2> "$run/urls.err" | sed "s|^|  http://127.0.0.1:$port|"
grep -v ': warning: ' "$run/urls.err" >&2 || true
echo

PROXY_REVERSE_CONF=$proxy_conf_abs "$bin" -c "$run/conf" &
monkey_pid=$!
# Ctrl-C reaches Monkey directly (same process group); TERM to this script is passed on.
trap 'kill -TERM "$monkey_pid" 2>/dev/null || true' INT TERM
status=0
while :; do
  wait "$monkey_pid" && status=0 || status=$?
  kill -0 "$monkey_pid" 2>/dev/null || break
done
monkey_pid=
exit "$status"
