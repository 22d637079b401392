#!/usr/bin/env bash
# install.sh -- build the release plugin and install it into an existing Monkey configuration.
#
#   scripts/install.sh MONKEY_CONF_DIR [LIB_DIR]
#
# MONKEY_CONF_DIR is the directory Monkey is started with (`monkey -c DIR`), holding monkey.conf,
# plugins.load and sites/. LIB_DIR (default MONKEY_CONF_DIR/../lib) receives the plugin as
# `monkey-proxy_reverse.so` -- Monkey derives the symbol from the text after the last `-`.
# The script then makes sure that:
#   * plugins.load has `Load LIB_DIR/monkey-proxy_reverse.so` under [PLUGINS];
#   * sites/default has `Match /.* proxy_reverse` under [HANDLERS] (Monkey only hands requests
#     that a handler rule maps to the plugin; the plugin answers 404 to paths no entry matches);
#   * plugins/proxy_reverse/proxy_reverse.conf exists (the documented example is copied if not).
# It never overwrites an existing proxy_reverse.conf. Run `proxy-reverse-check` on it afterwards.
set -euo pipefail
conf=${1:?usage: scripts/install.sh MONKEY_CONF_DIR [LIB_DIR]}
conf=$(cd "$conf" && pwd)
lib=${2:-$conf/../lib}
mkdir -p "$lib"
lib=$(cd "$lib" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)

cargo build --release --manifest-path "$here/Cargo.toml"
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$here/Cargo.toml" | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
install -m 0755 "$target_dir/release/libproxy_reverse.so" "$lib/monkey-proxy_reverse.so"
so="$lib/monkey-proxy_reverse.so"
# The release build keeps line tables for profiling (Cargo.toml); the installed copy needs
# none of them (14 MB -> about 2 MB). Function names stay, for backtraces.
if command -v strip >/dev/null; then
  strip --strip-debug "$so"
fi

# plugins.load: one Load line for us under [PLUGINS] (indent with four spaces, as Monkey's files do).
load="$conf/plugins.load"
[ -f "$load" ] || printf '[PLUGINS]\n' > "$load"
grep -q '^\[PLUGINS\]' "$load" || printf '[PLUGINS]\n' >> "$load"
if ! grep -q "monkey-proxy_reverse.so" "$load"; then
  sed -i "/^\[PLUGINS\]/a\\    Load $so" "$load"
fi

# sites/default: the handler rule.
site="$conf/sites/default"
if ! grep -q 'proxy_reverse' "$site"; then
  grep -q '^\[HANDLERS\]' "$site" || printf '\n[HANDLERS]\n' >> "$site"
  sed -i '/^\[HANDLERS\]/a\    Match /.* proxy_reverse' "$site"
fi

# The plugin's own configuration.
mkdir -p "$conf/plugins/proxy_reverse"
if [ ! -f "$conf/plugins/proxy_reverse/proxy_reverse.conf" ]; then
  cp "$here/conf/proxy_reverse.conf" "$conf/plugins/proxy_reverse/proxy_reverse.conf"
fi
echo "installed $so"
echo "configuration: $conf/plugins/proxy_reverse/proxy_reverse.conf"
