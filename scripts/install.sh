#!/usr/bin/env bash
# install.sh -- build the release plugin and its checker and install them into an existing
# Monkey configuration.
#
#   scripts/install.sh MONKEY_CONF_DIR [LIB_DIR]
#
# MONKEY_CONF_DIR is the directory Monkey is started with (`monkey -c DIR`), holding monkey.conf,
# plugins.load and sites/. LIB_DIR (default MONKEY_CONF_DIR/../lib) receives the plugin as
# `monkey-proxy_reverse.so` -- Monkey derives the symbol from the text after the last `-` --
# and the configuration checker next to it as `proxy-reverse-check`.
# The script then makes sure that:
#   * plugins.load has `Load LIB_DIR/monkey-proxy_reverse.so` under [PLUGINS];
#   * sites/default has `Match /.* proxy_reverse` under [HANDLERS] (Monkey only hands requests
#     that a handler rule maps to the plugin; the plugin answers 404 to paths no entry matches);
#   * plugins/proxy_reverse/proxy_reverse.conf exists (the documented example is copied if not,
#     its checker commands rewritten to the installed checker and file).
# It never overwrites an existing proxy_reverse.conf; it checks it with the installed checker.
#
# PREBUILT=DIR installs DIR/libproxy_reverse.so and DIR/proxy-reverse-check instead of
# building them (scripts/run-with-monkey.sh and the tests use it).
set -euo pipefail
conf=${1:?usage: scripts/install.sh MONKEY_CONF_DIR [LIB_DIR]}
conf=$(cd "$conf" && pwd)
lib=${2:-$conf/../lib}
mkdir -p "$lib"
lib=$(cd "$lib" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "${PREBUILT:-}" ]; then
  built=$PREBUILT
else
  cargo build --release --manifest-path "$here/Cargo.toml"
  # The target directory as cargo sees it (CARGO_TARGET_DIR, .cargo/config.toml, ...).
  target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$here/Cargo.toml" |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  built=$target_dir/release
fi
so="$lib/monkey-proxy_reverse.so"
check="$lib/proxy-reverse-check"
install -m 0755 "$built/libproxy_reverse.so" "$so"
install -m 0755 "$built/proxy-reverse-check" "$check"
# The release build keeps line tables for profiling (Cargo.toml); the installed copies need
# none of them (14 MB -> about 2 MB). Function names stay, for backtraces.
if command -v strip >/dev/null; then
  strip --strip-debug "$so" "$check"
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
if ! grep -qs 'proxy_reverse' "$site"; then
  mkdir -p "$conf/sites"
  grep -qs '^\[HANDLERS\]' "$site" || printf '\n[HANDLERS]\n' >> "$site"
  sed -i '/^\[HANDLERS\]/a\    Match /.* proxy_reverse' "$site"
fi

# The plugin's own configuration: the example, with its checker commands (written for the
# source tree) pointing at the installed checker and this copy.
plugin_conf="$conf/plugins/proxy_reverse/proxy_reverse.conf"
mkdir -p "$conf/plugins/proxy_reverse"
if [ ! -f "$plugin_conf" ]; then
  sed -e "s|^# The checker (these commands run it from the source tree.*|# The checker, installed by scripts/install.sh next to the plugin:|" \
      -e "s|cargo run --bin proxy-reverse-check -- conf/proxy_reverse.conf|$check $plugin_conf|" \
      -e "s|cargo run --bin proxy-reverse-check --|$check|" \
      "$here/conf/proxy_reverse.conf" > "$plugin_conf"
fi
echo "installed $so"
echo "installed $check (the configuration checker: $check --help)"
echo "configuration: $plugin_conf"
"$check" "$plugin_conf" || echo "fix $plugin_conf before starting Monkey (the plugin would answer 503)"
