#!/usr/bin/env bash
# run-with-monkey.sh -- build the plugin and run it in a real Monkey, in the foreground.
#
#   MONKEY_BIN=/path/to/monkey/bin/monkey scripts/run-with-monkey.sh [PROXY_CONF]
#
# Copies Monkey's configuration (MONKEY_CONF, default <MONKEY_BIN dir>/../conf) to
# target/monkey-run/conf, listens on 127.0.0.1:$PORT (default 2001), installs the release
# plugin there with scripts/install.sh, uses PROXY_CONF (default conf/proxy_reverse.conf) as
# the plugin configuration, checks it, and starts Monkey. Ctrl-C stops it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${MONKEY_BIN:?set MONKEY_BIN to the monkey binary of a Monkey v1.8 build}
src_conf=${MONKEY_CONF:-$(dirname "$bin")/../conf}
port=${PORT:-2001}
proxy_conf=${1:-$here/conf/proxy_reverse.conf}
run="$here/target/monkey-run"

rm -rf "$run/conf"
mkdir -p "$run/conf" "$run/logs"
cp -r "$src_conf"/. "$run/conf/"
# Our own listen address and pid file; keep everything else as the user configured it.
sed -i -E "s|^([[:space:]]+)Listen .*|\1Listen 127.0.0.1:$port|; s|^([[:space:]]+)PidFile .*|\1PidFile $run/monkey.pid|" "$run/conf/monkey.conf"
"$here/scripts/install.sh" "$run/conf" "$run/lib"
cp "$proxy_conf" "$run/conf/plugins/proxy_reverse/proxy_reverse.conf"
cargo run --quiet --release --manifest-path "$here/Cargo.toml" --bin proxy-reverse-check -- "$run/conf/plugins/proxy_reverse/proxy_reverse.conf"
echo "starting Monkey on http://127.0.0.1:$port/"
exec "$bin" -c "$run/conf"
