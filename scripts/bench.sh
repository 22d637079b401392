#!/usr/bin/env bash
# bench.sh -- load benchmark: Monkey + proxy_reverse against nginx and haproxy, same origin.
#
#   MONKEY_BIN=/path/to/monkey/bin/monkey scripts/bench.sh
#   ROUNDS=1 DURATION=5s MONKEY_BIN=... scripts/bench.sh          # a quick look
#   SIZES=1k CONNS="50" ROUNDS=5 MONKEY_BIN=... scripts/bench.sh   # one cell, more rounds
#   SIZES=1k CONNS=1000 DURATION=12s MONKEY_BIN=... scripts/bench.sh
#       # many connections: every wrk run opens them all at once and Monkey accepts one per
#       # turn of its loop, so short rounds measure mostly that start-up (see BENCHMARKS.md)
#   UPSTREAM_TLS=1 CONNS=50 MONKEY_BIN=... scripts/bench.sh   # the origin behind HTTPS
#
# What runs (everything on 127.0.0.1, free ports picked at start):
#   origin   nginx (Debian package), 1 worker, serves /1k and /64k (fixed files), keep-alive
#   nginx    nginx proxy, 1 worker, upstream keepalive = the largest connection count,
#            proxy_http_version 1.1, proxy_buffering on (nginx's default)
#   haproxy  haproxy, nbthread 1, mode http, http-reuse always
#   l4       (L4=1 only) haproxy, nbthread 1, `mode tcp`: relays bytes without parsing HTTP,
#            one origin connection per client connection -- the floor of a proxy's work
#   monkey   Monkey (Workers 1) from MONKEY_BIN with the release plugin
#            (`cargo build --release`, installed as lib/monkey-proxy_reverse.so),
#            UpstreamKeepAlive = the largest connection count
# Servers are pinned to CPU $SERVER_CPU (default 1), wrk to CPU $WRK_CPU (default 0).
# Before measuring, each proxy must return the exact bytes of both files.
#
# Rounds are interleaved: round r runs every (size, conns, target) once, the targets in a
# rotated order, so a noisy neighbour hurts all targets alike. Per cell the table shows the
# median req/s (with the lowest and highest round) and median p99 over the rounds, errors
# summed (non-2xx/3xx + socket errors), the target's CPU time per request (utime+stime deltas
# of its processes from /proc/<pid>/stat, divided by the requests wrk counted), the origin's
# CPU time per request in the same runs (it shares the servers' CPU), the context switches of
# the target's threads and of the origin's per 100 requests (/proc/<pid>/task/*/status: on
# one shared core, how many requests each side handles before the other runs), and paired
# ratios to nginx and haproxy: per round the target's req/s (or p99) over the peer's in the
# same round, median over the rounds (steadier than a ratio of medians on a machine whose
# speed drifts), and with L4=1 the same ratio of req/s to the byte relay. Then the RSS of
# each proxy after the run.
#
# Environment (defaults in brackets):
#   MONKEY_BIN (required)  MONKEY_CONF [<MONKEY_BIN dir>/../conf] (monkey.conf, monkey.mime)
#   ROUNDS [10]  DURATION [4s]  SIZES ["1k 64k"]  CONNS ["50 256"]  WRK_THREADS [1]
#   WARMUP [2s] (an unmeasured wrk run per target and cell before round 1; "0": none)
#   WRK_CPU [0]  SERVER_CPU [1]  KEEP [unset: scratch dir removed; set: kept and printed]
#   MATCH [^/] (the plugin entry's `Match` rule; bench-peers.sh and the seed's example use ^/.*)
#   L4 [0] (1: the byte relay `l4` joins the rounds and the table gains `x_l4`, every target's
#            paired req/s ratio to it; not with UPSTREAM_TLS=1, as it cannot speak TLS)
#   PEER_FORWARDING [0] (1: nginx and haproxy add the X-Forwarded-* headers the plugin adds)
#   UPSTREAM_TLS [0] (1: the origin serves HTTPS only, with a certificate for localhost and
#            127.0.0.1 signed by a CA made for the run (openssl); every proxy speaks TLS to it
#            and verifies it: nginx `proxy_ssl_verify on`, `proxy_ssl_session_reuse on`, its
#            upstream keepalive; haproxy `ssl verify required ca-file`, `http-reuse always`;
#            the plugin `https://` with `UpstreamCaFile`. Clients still speak plain HTTP.)
#   ACCESS_LOG [0] (1: a second Monkey + plugin, `monkey_log`, the same but with `AccessLog`
#            on (a file in the scratch dir), joins the rounds; the table is followed by the
#            paired ratio monkey_log / monkey per cell and the log's line count against the
#            requests it proxied; with INSTRUCTIONS=1, the one Monkey measured writes the log)
#   INSTRUCTIONS [0] (1: no load rounds; instead, Monkey + plugin alone runs under valgrind's
#            callgrind and each size is requested for DURATION by wrk with the first CONNS value
#            while instrumentation is on; prints user-space instructions per proxied request
#            by object (plugin, Monkey, libc) and the plugin's costliest functions. Counts do
#            not drift with the machine's speed as timings do: use them to compare two builds
#            of the plugin. Needs valgrind.)
#
# Needs: wrk, nginx, haproxy, curl, taskset, cargo. Everything it starts is stopped by pid on
# exit (also on Ctrl-C or error).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
MONKEY_BIN=${MONKEY_BIN:?set MONKEY_BIN to the monkey binary of a Monkey v1.8 build}
MONKEY_CONF=${MONKEY_CONF:-$(dirname "$MONKEY_BIN")/../conf}
ROUNDS=${ROUNDS:-10}
WARMUP=${WARMUP:-2s}
DURATION=${DURATION:-4s}
SIZES=${SIZES:-"1k 64k"}
CONNS=${CONNS:-"50 256"}
WRK_THREADS=${WRK_THREADS:-1}
WRK_CPU=${WRK_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
INSTRUCTIONS=${INSTRUCTIONS:-0}
UPSTREAM_TLS=${UPSTREAM_TLS:-0}
ACCESS_LOG=${ACCESS_LOG:-0}
L4=${L4:-0}
MATCH=${MATCH:-^/}
TARGETS=(nginx haproxy monkey)
if [ "$ACCESS_LOG" = 1 ]; then TARGETS+=(monkey_log); fi
if [ "$L4" = 1 ]; then
    [ "$UPSTREAM_TLS" = 1 ] && { echo "bench.sh: L4=1 cannot be combined with UPSTREAM_TLS=1" >&2; exit 2; }
    TARGETS=(l4 "${TARGETS[@]}")
fi
tools=(wrk nginx haproxy curl taskset cargo awk cmp)
[ "$UPSTREAM_TLS" = 1 ] && tools+=(openssl)
if [ "$INSTRUCTIONS" = 1 ]; then
    TARGETS=(monkey)
    tools+=(valgrind callgrind_control callgrind_annotate)
fi

for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "bench.sh: $tool not found" >&2; exit 1; }
done
[ -x "$MONKEY_BIN" ] || { echo "bench.sh: $MONKEY_BIN is not executable" >&2; exit 1; }
[ -f "$MONKEY_CONF/monkey.mime" ] || { echo "bench.sh: no monkey.mime in $MONKEY_CONF (set MONKEY_CONF)" >&2; exit 1; }

# No `-` in the path: Monkey derives the plugin symbol from the text after the last `-`.
S=$(mktemp -d /tmp/proxy_reverse_bench.XXXXXX)
chmod 755 "$S"   # nginx workers may run as another user
PIDS=()

stop_all() {
    local pid i
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    if [ -n "${KEEP:-}" ]; then echo "scratch kept: $S"; else rm -rf "$S"; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# A port nothing listens on (bounded tries).
USED=" "
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 40000))
        case "$USED" in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            USED="$USED$p "
            echo "$p"
            return 0
        fi
    done
    echo "bench.sh: no free port" >&2
    return 1
}

# Waits (at most $3 seconds, default 10) until 127.0.0.1:$2 accepts; fails if pid $1 died.
wait_port() {
    local i
    for ((i = 0; i < ${3:-10} * 20; i++)); do
        kill -0 "$1" 2>/dev/null || { echo "bench.sh: pid $1 exited at start-up" >&2; return 1; }
        (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench.sh: nothing accepts on port $2 after ${3:-10} s" >&2
    return 1
}

max_conns=0
for c in $CONNS; do [ "$c" -gt "$max_conns" ] && max_conns=$c; done

declare -A PORT PID
PORT[origin]=$(free_port)
for t in nginx haproxy l4 monkey monkey_log; do PORT[$t]=$(free_port); done   # every config is written

# ---- files ---------------------------------------------------------------------------
mkdir -p "$S/www" "$S/logs" "$S/tmp" "$S/wrk"
for s in $SIZES; do
    case "$s" in
        *k) n=$((${s%k} * 1024)) ;;
        *m) n=$((${s%m} * 1024 * 1024)) ;;
        *) n=$s ;;
    esac
    head -c "$n" /dev/urandom >"$S/www/$s"
    chmod 644 "$S/www/$s"
done

# ---- what the peers add to requests ------------------------------------------------
# The plugin always sends X-Forwarded-For (the client address), X-Forwarded-Proto and
# X-Forwarded-Host and keeps the client's Host. With PEER_FORWARDING=1 the peers are set up to
# do the same (the work every production deployment of them does); by default they add
# nothing, as in ../shared/tools/bench-peers.sh.
nginx_forwarding=""
haproxy_forwarding=""
if [ "${PEER_FORWARDING:-0}" = 1 ]; then
    nginx_forwarding='            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;'
    haproxy_forwarding='    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]'
fi

# ---- TLS to the origin (UPSTREAM_TLS=1) ------------------------------------------------
origin_listen=""
origin_tls=""
nginx_upstream="http://origin"
nginx_tls=""
haproxy_tls=""
plugin_server="127.0.0.1:${PORT[origin]}"
plugin_tls=""
curl_origin="http://127.0.0.1:${PORT[origin]}"
curl_tls=()
if [ "$UPSTREAM_TLS" = 1 ]; then
    mkdir -p "$S/pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=bench CA" -keyout "$S/pki/ca.key" -out "$S/pki/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$S/pki/origin.key" -out "$S/pki/origin.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$S/pki/ext"
    openssl x509 -req -in "$S/pki/origin.csr" -CA "$S/pki/ca.pem" -CAkey "$S/pki/ca.key" \
        -CAcreateserial -days 2 -extfile "$S/pki/ext" -out "$S/pki/origin.pem" 2>/dev/null
    chmod 644 "$S/pki/"*
    origin_listen=" ssl"
    origin_tls="        ssl_certificate $S/pki/origin.pem;
        ssl_certificate_key $S/pki/origin.key;
        ssl_session_cache shared:origin:10m;"
    nginx_upstream="https://origin"
    nginx_tls="            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $S/pki/ca.pem;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;"
    haproxy_tls=" ssl verify required ca-file $S/pki/ca.pem verifyhost localhost sni str(localhost)"
    plugin_server="https://127.0.0.1:${PORT[origin]}"
    plugin_tls="    UpstreamTlsName localhost
    UpstreamCaFile $S/pki/ca.pem"
    curl_origin="https://localhost:${PORT[origin]}"
    curl_tls=(--cacert "$S/pki/ca.pem" --resolve "localhost:${PORT[origin]}:127.0.0.1")
fi

# ---- origin and nginx proxy ----------------------------------------------------------
nginx_head() {   # common top of an nginx config: one worker, foreground, private temp dirs
    cat <<EOF
worker_processes 1;
daemon off;
pid $S/$1.pid;
error_log $S/logs/$1-error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $S/tmp/$1-body;
    proxy_temp_path $S/tmp/$1-proxy;
    fastcgi_temp_path $S/tmp/$1-fastcgi;
    uwsgi_temp_path $S/tmp/$1-uwsgi;
    scgi_temp_path $S/tmp/$1-scgi;
EOF
}
{
    nginx_head origin
    cat <<EOF
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:${PORT[origin]}$origin_listen reuseport backlog=4096;
$origin_tls
        root $S/www;
        default_type application/octet-stream;
    }
}
EOF
} >"$S/origin.conf"
{
    nginx_head nginx
    cat <<EOF
    upstream origin {
        server 127.0.0.1:${PORT[origin]};
        keepalive $max_conns;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096;
        location / {
            proxy_pass $nginx_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
$nginx_tls
$nginx_forwarding
        }
    }
}
EOF
} >"$S/nginx.conf"

# ---- haproxy -------------------------------------------------------------------------
cat >"$S/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always
frontend fe
    bind 127.0.0.1:${PORT[haproxy]}
    default_backend be
backend be
$haproxy_forwarding
    server origin 127.0.0.1:${PORT[origin]} maxconn $max_conns$haproxy_tls
EOF

# ---- l4: haproxy relaying bytes (L4=1) -------------------------------------------------
cat >"$S/l4.cfg" <<EOF
global
    nbthread 1
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:${PORT[l4]}
    default_backend be
backend be
    server origin 127.0.0.1:${PORT[origin]}
EOF

# ---- Monkey + plugin -----------------------------------------------------------------
echo "building the release plugin..." >&2
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$here/Cargo.toml" |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
# monkey_dir DIR PORT DEFAULTS: a Monkey configuration root in DIR listening on PORT, with
# the plugin's [PROXY_DEFAULTS] lines DEFAULTS.
monkey_dir() {
    local M=$1 port=$2 defaults=$3
    mkdir -p "$M/conf/sites" "$M/conf/plugins/proxy_reverse" "$M/lib" "$M/htdocs"
    install -m 0755 "$target_dir/release/libproxy_reverse.so" "$M/lib/monkey-proxy_reverse.so"
    cp "$MONKEY_CONF/monkey.mime" "$M/conf/"
    # Monkey's keys must be indented. No `User`: the server keeps the caller's identity.
    cat >"$M/conf/monkey.conf" <<EOF
[SERVER]
    Listen 127.0.0.1:$port
    Workers 1
    Timeout 15
    PidFile $M/monkey.pid
    UserDir public_html
    Indexfile index.html
    HideVersion Off
    Resume On
    KeepAlive On
    KeepAliveTimeout 60
    MaxKeepAliveRequest 1000000
    MaxRequestSize 32
    SymLink Off
    DefaultMimeType text/plain
    FDT On
    OverCapacity Resist
EOF
    printf '[PLUGINS]\n    Load %s\n' "$M/lib/monkey-proxy_reverse.so" >"$M/conf/plugins.load"
    printf '[HOST]\n    ServerName 127.0.0.1\n    DocumentRoot %s\n\n[HANDLERS]\n    Match /.* proxy_reverse\n' \
        "$M/htdocs" >"$M/conf/sites/default"
    cat >"$M/conf/plugins/proxy_reverse/proxy_reverse.conf" <<EOF
[PROXY_DEFAULTS]
    StatisticsURL /proxy-bench-stats
$defaults
[PROXY_ENTRY]
    Match $MATCH
    ServerList $plugin_server
$plugin_tls
    UpstreamKeepAlive $max_conns
    UpstreamKeepAliveRequests 1000000
EOF
}
ACCESS_FILE="$S/logs/access.log"
M="$S/monkey"
if [ "$INSTRUCTIONS" = 1 ] && [ "$ACCESS_LOG" = 1 ]; then
    # Instructions with the access log on: the one Monkey measured writes it.
    monkey_dir "$M" "${PORT[monkey]}" "    AccessLog $ACCESS_FILE"
else
    monkey_dir "$M" "${PORT[monkey]}" ""
fi
if [ "$ACCESS_LOG" = 1 ] && [ "$INSTRUCTIONS" != 1 ]; then
    monkey_dir "$S/monkey_log" "${PORT[monkey_log]}" "    AccessLog $ACCESS_FILE"
fi

# ---- start ---------------------------------------------------------------------------
start() {   # start NAME CMD...: pinned to SERVER_CPU, output to logs/NAME.out
    local name=$1
    shift
    taskset -c "$SERVER_CPU" "$@" >"$S/logs/$name.out" 2>&1 &
    PID[$name]=$!
    PIDS+=("$!")
    # Under valgrind Monkey takes seconds to start.
    wait_port "${PID[$name]}" "${PORT[$name]}" 60 || { cat "$S/logs/$name.out" >&2; exit 1; }
}
start origin nginx -p "$S" -e "$S/logs/origin-error.log" -c "$S/origin.conf"
if [ "$INSTRUCTIONS" = 1 ]; then
    start monkey valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$S/callgrind.out" "$MONKEY_BIN" -c "$M/conf"
else
    start nginx nginx -p "$S" -e "$S/logs/nginx-error.log" -c "$S/nginx.conf"
    start haproxy haproxy -db -f "$S/haproxy.cfg"
    if [ "$L4" = 1 ]; then start l4 haproxy -db -f "$S/l4.cfg"; fi
    start monkey "$MONKEY_BIN" -c "$M/conf"
    if [ "$ACCESS_LOG" = 1 ]; then start monkey_log "$MONKEY_BIN" -c "$S/monkey_log/conf"; fi
fi

# The pids of a target: the started process and its direct children (nginx's worker).
pids_of() {
    local p=${PID[$1]}
    echo "$p"
    pgrep -P "$p" 2>/dev/null || true
}
cpu_ticks() {   # utime+stime (clock ticks) summed over a target's processes
    local sum=0 p f
    for p in $(pids_of "$1"); do
        f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        # Fields after the parenthesised command: state is field 3; utime 14, stime 15.
        f=${f##*) }
        set -- $f
        sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}
csw_count() {   # context switches (voluntary + involuntary) summed over a target's threads
    local sum=0 p v
    for p in $(pids_of "$1"); do
        v=$(cat /proc/"$p"/task/*/status 2>/dev/null |
            awk '/^(non)?voluntary_ctxt_switches:/ {n += $2} END {print n + 0}') || continue
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
rss_kib() {
    local sum=0 p v
    for p in $(pids_of "$1"); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
HZ=$(getconf CLK_TCK)

# ---- exact bytes first ---------------------------------------------------------------
for t in origin "${TARGETS[@]}"; do
    for s in $SIZES; do
        opts=()
        if [ "$t" = origin ]; then
            url="$curl_origin/$s"
            opts=("${curl_tls[@]}")
        else
            url="http://127.0.0.1:${PORT[$t]}/$s"
        fi
        curl -sS --max-time 10 "${opts[@]}" -o "$S/check" "$url" ||
            { echo "bench.sh: $t: request for /$s failed" >&2; exit 1; }
        cmp -s "$S/check" "$S/www/$s" ||
            { echo "bench.sh: $t: /$s is not the exact file" >&2; exit 1; }
    done
done
echo "exact bytes: origin, ${TARGETS[*]} return both files unchanged" >&2

# ---- warm-up -------------------------------------------------------------------------
# Every target first fills its connection pools and allocates its buffers unmeasured, so
# round 1 does not charge start-up costs to whichever target happens to run first.
if [ "$WARMUP" != "0" ]; then
    for s in $SIZES; do
        for c in $CONNS; do
            for t in "${TARGETS[@]}"; do
                taskset -c "$WRK_CPU" wrk -t"$WRK_THREADS" -c"$c" -d"$WARMUP" --timeout 5s \
                    "http://127.0.0.1:${PORT[$t]}/$s" >/dev/null 2>&1 || true
            done
        done
    done
    echo "warm-up: $WARMUP per target and cell" >&2
fi

# ---- instructions per request (INSTRUCTIONS=1) -----------------------------------------
if [ "$INSTRUCTIONS" = 1 ]; then
    c=${CONNS%% *}
    vpid=${PID[monkey]}
    echo
    echo "# user-space instructions per proxied request (callgrind), wrk -t$WRK_THREADS -c$c -d$DURATION per size"
    printf '%-5s %9s %9s %9s %9s %9s %9s\n' size requests plugin monkey libc other total
    for s in $SIZES; do
        out="$S/wrk/instructions-$s.txt"
        callgrind_control -i on "$vpid" >/dev/null 2>&1
        taskset -c "$WRK_CPU" wrk -t"$WRK_THREADS" -c"$c" -d"$DURATION" --timeout 10s \
            "http://127.0.0.1:${PORT[monkey]}/$s" >"$out" 2>&1 || true
        callgrind_control -i off "$vpid" >/dev/null 2>&1
        # The k-th dump writes the counts since the previous one to callgrind.out.k.
        dumps=$((${dumps:-0} + 1))
        dump="$S/callgrind.out.$dumps"
        callgrind_control -d "$vpid" >/dev/null 2>&1
        [ -s "$dump" ] || { echo "bench.sh: callgrind wrote no $dump" >&2; exit 1; }
        reqs=$(awk '/ requests in / {print $1}' "$out")
        [ "${reqs:-0}" -gt 0 ] || { echo "bench.sh: wrk made no request:" >&2; cat "$out" >&2; exit 1; }
        callgrind_annotate --auto=no --threshold=100 "$dump" >"$S/wrk/instructions-$s.annotate"
        # Self counts per function line: "N (p%)  file:function [object]"; inlined code
        # carries no object: Rust's is the plugin's, C's (a .c or .h file: Monkey built
        # with -g inlines its headers' functions) is Monkey's.
        awk -v n="$reqs" -v size="$s" '
            /^ *[0-9,]+ +\(/ && !/PROGRAM TOTALS/ {
                x = $1; gsub(",", "", x)
                o = "other"
                if ($0 ~ /proxy_reverse|\.rs:|\/rustc\/|\.cargo\//) o = "plugin"
                if ($0 ~ /\[[^]]*libc\.so[^]]*\]$/) o = "libc"
                else if ($0 ~ /\[[^]]*\/monkey\]$/) o = "monkey"
                else if ($0 !~ /\]$/ && $0 ~ /\.[ch]:[^ ]+$/) o = "monkey"
                sum[o] += x; total += x
            }
            END {
                printf "%-5s %9d %9.0f %9.0f %9.0f %9.0f %9.0f\n", size, n, sum["plugin"] / n,
                    sum["monkey"] / n, sum["libc"] / n, sum["other"] / n, total / n
            }' "$S/wrk/instructions-$s.annotate"
    done
    echo
    echo "# the plugin's costliest functions (self, per request), last size:"
    awk -v n="$reqs" '
        /^ *[0-9,]+ +\(/ && !/PROGRAM TOTALS/ && !/libc\.so|\/monkey\]$|ld-linux|\.[ch]:[^ ]+$/ {
            x = $1; gsub(",", "", x)
            name = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", name); sub(/ +\[.*$/, "", name)
            sub(/^[^:]*:/, "", name)   # the file name before the function
            sum[name] += x
        }
        END { for (f in sum) if (sum[f] / n >= 50) printf "%9.0f  %s\n", sum[f] / n, f }' \
        "$S/wrk/instructions-$s.annotate" | sort -rn | head -15
    exit 0
fi

# ---- rounds --------------------------------------------------------------------------
to_ms() {   # wrk latency (e.g. 812.00us, 1.23ms, 2.01s) to milliseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}
: >"$S/raw.tsv"
ntargets=${#TARGETS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    for s in $SIZES; do
        for c in $CONNS; do
            for ((k = 0; k < ntargets; k++)); do
                t=${TARGETS[$(((k + r - 1) % ntargets))]}
                out="$S/wrk/$t-$s-$c-$r.txt"
                before=$(cpu_ticks "$t")
                obefore=$(cpu_ticks origin)
                cbefore=$(csw_count "$t")
                ocbefore=$(csw_count origin)
                taskset -c "$WRK_CPU" wrk -t"$WRK_THREADS" -c"$c" -d"$DURATION" --timeout 5s --latency \
                    "http://127.0.0.1:${PORT[$t]}/$s" >"$out" 2>&1 || true
                after=$(cpu_ticks "$t")
                oafter=$(cpu_ticks origin)
                cafter=$(csw_count "$t")
                ocafter=$(csw_count origin)
                reqs=$(awk '/ requests in / {print $1}' "$out")
                rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
                p99=$(awk '$1 == "99%" {print $2}' "$out")
                errs=$(awk '/^ *Non-2xx or 3xx responses:/ {e += $NF}
                    /^ *Socket errors:/ {gsub(",", ""); e += $4 + $6 + $8 + $10}
                    END {print e + 0}' "$out")
                cpu_us=$(awk -v d=$((after - before)) -v hz="$HZ" -v n="${reqs:-0}" \
                    'BEGIN {printf "%.1f", (n > 0) ? d * 1e6 / hz / n : 0}')
                origin_us=$(awk -v d=$((oafter - obefore)) -v hz="$HZ" -v n="${reqs:-0}" \
                    'BEGIN {printf "%.1f", (n > 0) ? d * 1e6 / hz / n : 0}')
                # Context switches per 100 requests, the target's and the origin's: on one
                # shared core they say how many requests each process handles per turn.
                csw=$(awk -v d=$((cafter - cbefore)) -v n="${reqs:-0}" \
                    'BEGIN {printf "%.1f", (n > 0) ? d * 100 / n : 0}')
                ocsw=$(awk -v d=$((ocafter - ocbefore)) -v n="${reqs:-0}" \
                    'BEGIN {printf "%.1f", (n > 0) ? d * 100 / n : 0}')
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$c" "$t" "${rps:-0}" \
                    "$(to_ms "${p99:-0}")" "$errs" "$cpu_us" "$r" "$origin_us" "$csw" "$ocsw" >>"$S/raw.tsv"
                printf 'round %d/%d  %-4s c=%-4s %-8s %10s req/s  p99 %s\n' "$r" "$ROUNDS" "$s" "$c" "$t" \
                    "${rps:-?}" "${p99:-?}" >&2
            done
        done
    done
done

# ---- table ---------------------------------------------------------------------------
echo
echo "# $(nginx -v 2>&1 | sed 's/.*: //'), $(haproxy -v | awk 'NR == 1 {print "haproxy " $3}'), Monkey $MONKEY_BIN + proxy_reverse (release)"
echo "# wrk -t$WRK_THREADS -d$DURATION --latency on CPU $WRK_CPU; servers on CPU $SERVER_CPU; rounds $ROUNDS; $(nproc) CPUs"
[ "$UPSTREAM_TLS" = 1 ] && echo "# UPSTREAM_TLS=1: every proxy speaks verified TLS to the origin (see the header of bench.sh)"
echo "# req/s and p99: medians over the rounds; errors: summed; cpu: target's utime+stime per request; orig: the origin's"
echo "# csw/100, orig csw: context switches of the target's (the origin's) threads per 100 requests, mean over the rounds"
echo "# x_nginx, x_hapr (req/s) and p99/ngx, p99/hap: medians of per-round ratios to that peer"
[ "$L4" = 1 ] && echo "# x_l4: the median of per-round req/s ratios to l4, the byte relay"
awk -F'\t' -v targets="${TARGETS[*]}" -v l4="$L4" '
    function median(list,    a, n, i, j, t) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        key = $1 SUBSEP $2 SUBSEP $3
        if (!(($1 SUBSEP $2) in seen)) { seen[$1 SUBSEP $2] = 1; order[++cells] = $1 SUBSEP $2 }
        rps[key] = rps[key] " " $4; p99[key] = p99[key] " " $5
        err[key] += $6; cpu[key] += $7; ocpu[key] += $9; csw[key] += $10; ocsw[key] += $11; cnt[key]++
        round_rps[key SUBSEP $8] = $4; round_p99[key SUBSEP $8] = $5
        if (!(key in lo) || $4 + 0 < lo[key] + 0) lo[key] = $4
        if ($4 + 0 > hi[key] + 0) hi[key] = $4
        if ($8 + 0 > rounds) rounds = $8 + 0
    }
    # Median over the rounds of this target'"'"'s figure divided by the peer'"'"'s figure of the same
    # round: runs next to each other see the same machine, so the ratio is steadier than a
    # ratio of medians when the machine'"'"'s speed drifts.
    function paired(cell, t, peer, arr,    r, l, a, b) {
        l = ""
        for (r = 1; r <= rounds; r++) {
            a = arr[cell SUBSEP t SUBSEP r]; b = arr[cell SUBSEP peer SUBSEP r]
            if (a + 0 > 0 && b + 0 > 0) l = l " " (a / b)
        }
        return (l == "") ? "-" : sprintf("%.2f", median(l))
    }
    END {
        nt = split(targets, T, " ")
        printf "%-5s %5s  %-8s %10s %15s %9s %7s %8s %9s %7s %8s %8s %8s %8s %8s", "size", "conns", "target", "req/s", "(min-max)", "p99 ms", "errors", "cpu us/r", "orig us/r", "csw/100", "orig csw", "x_nginx", "x_hapr", "p99/ngx", "p99/hap"
        if (l4 == 1) printf " %8s", "x_l4"
        printf "\n"
        for (o = 1; o <= cells; o++) {
            split(order[o], sc, SUBSEP)
            for (i = 1; i <= nt; i++) {
                k = order[o] SUBSEP T[i]
                med[T[i]] = median(rps[k])
            }
            for (i = 1; i <= nt; i++) {
                k = order[o] SUBSEP T[i]
                xn = paired(order[o], T[i], "nginx", round_rps)
                xh = paired(order[o], T[i], "haproxy", round_rps)
                pn = paired(order[o], T[i], "nginx", round_p99)
                ph = paired(order[o], T[i], "haproxy", round_p99)
                printf "%-5s %5s  %-8s %10.0f %15s %9.2f %7d %8.1f %9.1f %7.1f %8.1f %8s %8s %8s %8s", sc[1], sc[2], T[i], med[T[i]], sprintf("(%.0f-%.0f)", lo[k], hi[k]), median(p99[k]), err[k], cpu[k] / cnt[k], ocpu[k] / cnt[k], csw[k] / cnt[k], ocsw[k] / cnt[k], xn, xh, pn, ph
                if (l4 == 1) printf " %8s", paired(order[o], T[i], "l4", round_rps)
                printf "\n"
            }
        }
    }' "$S/raw.tsv"
echo
echo "RSS after the run (KiB, the target's processes summed):"
for t in "${TARGETS[@]}"; do printf '  %-8s %8s\n' "$t" "$(rss_kib "$t")"; done

# ---- the access log's cost (ACCESS_LOG=1) ----------------------------------------------
if [ "$ACCESS_LOG" = 1 ]; then
    echo
    echo "# access log on / off: per round, monkey_log's figure over monkey's; median (min-max) over the rounds"
    awk -F'\t' '
        function median(list,    a, k, i, j, t) {
            k = split(list, a, " ")
            for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
            lo = a[1]; hi = a[k]
            return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        $3 == "monkey" || $3 == "monkey_log" {
            key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $8; rps[key] = $4; cpu[key] = $7
            if (!(($1 SUBSEP $2) in seen)) { seen[$1 SUBSEP $2] = 1; order[++n] = $1 SUBSEP $2 }
            if ($8 + 0 > rounds) rounds = $8 + 0
        }
        END {
            for (o = 1; o <= n; o++) {
                split(order[o], sc, SUBSEP); l = ""; lc = ""
                for (q = 1; q <= rounds; q++) {
                    a = rps[order[o] SUBSEP "monkey_log" SUBSEP q]; b = rps[order[o] SUBSEP "monkey" SUBSEP q]
                    if (a + 0 > 0 && b + 0 > 0) l = l " " (a / b)
                    a = cpu[order[o] SUBSEP "monkey_log" SUBSEP q]; b = cpu[order[o] SUBSEP "monkey" SUBSEP q]
                    if (a + 0 > 0 && b + 0 > 0) lc = lc " " (a / b)
                }
                m = median(l); mlo = lo; mhi = hi; mc = median(lc); clo = lo; chi = hi
                printf "%-5s c=%-5s req/s %.3f (%.3f-%.3f)   cpu per request %.3f (%.3f-%.3f)\n", sc[1], sc[2], m, mlo, mhi, mc, clo, chi
            }
        }' "$S/raw.tsv"
    sleep 1   # a worker's last batch reaches the file within 0.1 s
    lines=$(wc -l <"$ACCESS_FILE")
    totals=$(curl -sS --max-time 10 "http://127.0.0.1:${PORT[monkey_log]}/proxy-bench-stats?format=json" |
        tr -d ' \n' | sed -n 's/.*"totals":{\([^}]*\)}.*/\1/p')
    proxied=$(curl -sS --max-time 10 "http://127.0.0.1:${PORT[monkey_log]}/proxy-bench-stats?format=json" |
        tr -d ' \n' | sed -n 's/.*"entries":\[{[^{]*"counters":{"requests":\([0-9]*\).*/\1/p')
    echo "access log: $lines lines for ${proxied:-?} proxied requests; totals: $totals"
fi
