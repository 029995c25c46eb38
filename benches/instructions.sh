#!/usr/bin/env bash
# Instruction counts (valgrind callgrind) of deguchi against a raw libpcap
# read of the same capture: the one figure this shared, noisy machine
# reproduces to a fraction of a percent, for judging a change too small for
# the wall-clock benchmark (benches/replay.sh) to see. Instructions are not
# time: the flow table and the detectors are bound by cache misses, which
# callgrind does not count, so use both.
#
#   benches/instructions.sh                  # mix, 300 k packets
#   PACKETS=100000 MODEL=bench benches/instructions.sh
#
# Needs: valgrind, tcpdump (apt-get install valgrind tcpdump)
set -euo pipefail
cd "$(dirname "$0")/.."
PACKETS=${PACKETS:-300000}
MODEL=${MODEL:-mix}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cargo build --release -q
BIN=target/release/deguchi
# header-only records (bulk cut at 128 bytes): with whole frames the raw
# read's copies are user-space instructions and deguchi's read(2) copy is
# the kernel's, which callgrind does not count, flattering deguchi
$BIN gen "$MODEL" --packets "$PACKETS" --snaplen 128 -o "$TMP/cap.pcap" 2>/dev/null

# count NAME CMD...: total instructions of CMD (all threads)
count() {
  local name=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file="$TMP/$name.out" "$@" >/dev/null 2>"$TMP/$name.err" || {
    cat "$TMP/$name.err" >&2
    exit 1
  }
  grep -o 'Collected : [0-9]*' "$TMP/$name.err" | awk '{print $3}'
}
# -Z: as root, tcpdump would drop to its own user, and callgrind (inside the
# same process) could then not write its output file
raw=$(count raw tcpdump -Z "$(id -un)" -nr "$TMP/cap.pcap" 'ether proto 0x88b5')
deg=$(count deguchi $BIN replay "$TMP/cap.pcap" --workers 1 -o /dev/null)
awk -v r="$raw" -v d="$deg" -v p="$PACKETS" -v m="$MODEL" 'BEGIN {
  printf "%s, %d packets: raw libpcap read %d instructions (%.0f a packet); deguchi replay %d (%.0f a packet); ratio %.2f\n",
    m, p, r, r / p, d, d / p, d / r
}'
echo "deguchi's heaviest functions (self instructions):"
callgrind_annotate "$TMP/deguchi.out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | sed -n '2,13p'
