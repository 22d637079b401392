#!/usr/bin/env bash
# instructions-gate.sh -- fails when the plugin's user-space instructions per proxied request
# grow more than 3 % over the figures recorded in BENCHMARKS.md (issue #22's regression gate).
#
#   MONKEY_BIN=/path/to/monkey/bin/monkey scripts/instructions-gate.sh
#
# It runs `INSTRUCTIONS=1 CONNS=20 DURATION=8s WARMUP=3s scripts/bench.sh` (Monkey + the
# release plugin under callgrind, 1 KiB and 64 KiB) and compares the plugin's column with the
# line `instructions-gate: 1k=N 64k=M` of BENCHMARKS.md. Only the plugin's own count is gated:
# it repeats to a few instructions between runs of one build, where libc's moves by about ±40
# and timings drift with the machine. After a change that is meant to move the figure, record
# the new one in that line (and say why in BENCHMARKS.md).
#
# Environment: MONKEY_BIN (required), TOLERANCE [3] (percent), and bench.sh's own variables.
# Exit status: 0 within the tolerance, 1 above it, 2 when the measurement itself failed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
: "${MONKEY_BIN:?set MONKEY_BIN to the monkey binary of a Monkey v1.8 build}"
TOLERANCE=${TOLERANCE:-3}

recorded=$(grep -o 'instructions-gate: [^>]*' "$here/BENCHMARKS.md" | head -1 || true)
[ -n "$recorded" ] || { echo "instructions-gate: no 'instructions-gate:' line in BENCHMARKS.md" >&2; exit 2; }

out=$(mktemp /tmp/instructions-gate.XXXXXX)
trap 'rm -f "$out"' EXIT
if ! INSTRUCTIONS=1 CONNS=${CONNS:-20} DURATION=${DURATION:-8s} WARMUP=${WARMUP:-3s} \
    SIZES="1k 64k" "$here/scripts/bench.sh" >"$out"; then
    echo "instructions-gate: bench.sh failed" >&2
    cat "$out" >&2
    exit 2
fi
cat "$out"

# The table: "size requests plugin monkey libc other total", one line per size.
status=0
for size in 1k 64k; do
    want=$(sed -n "s/.*instructions-gate:.* $size=\([0-9]*\).*/\1/p" <<<"$recorded")
    got=$(awk -v s="$size" '$1 == s && $2 ~ /^[0-9]+$/ {print $3}' "$out")
    if [ -z "$want" ] || [ -z "$got" ]; then
        echo "instructions-gate: no figure for $size (recorded '${want}', measured '${got}')" >&2
        exit 2
    fi
    limit=$(awk -v w="$want" -v t="$TOLERANCE" 'BEGIN {printf "%d", w * (100 + t) / 100}')
    verdict=ok
    if [ "$got" -gt "$limit" ]; then verdict="TOO MANY (> $limit)"; status=1; fi
    printf 'instructions-gate: %-4s plugin %6s per request, recorded %6s (+%s%% = %s): %s\n' \
        "$size" "$got" "$want" "$TOLERANCE" "$limit" "$verdict"
done
exit "$status"
