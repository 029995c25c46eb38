#!/usr/bin/env bash
# Replay benchmark (issue 5): deguchi against a raw libpcap read of the same
# file, measured in one run, alternating, so the ratios hold on a noisy box.
#
#   benches/replay.sh                 # 2 M packets, 3 rounds
#   PACKETS=5000000 ROUNDS=5 benches/replay.sh
#
# Needs: tcpdump, GNU time (/usr/bin/time)  (apt-get install tcpdump time)
set -euo pipefail
cd "$(dirname "$0")/.."
PACKETS=${PACKETS:-2000000}
ROUNDS=${ROUNDS:-3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cargo build --release -q
BIN=target/release/deguchi
$BIN gen bench --packets "$PACKETS" -o "$TMP/bench.pcap" 2>/dev/null
$BIN gen bench --packets 1 -o "$TMP/one.pcap" 2>/dev/null
cat "$TMP/bench.pcap" >/dev/null # warm the page cache

# run NAME CMD...: appends "seconds maxrss_kb" to $TMP/NAME
run() {
  local name=$1
  shift
  /usr/bin/time -f '%e %M' -o "$TMP/t" "$@" >/dev/null 2>"$TMP/err" || {
    cat "$TMP/err" >&2
    exit 1
  }
  cat "$TMP/t" >>"$TMP/$name"
  if [ "$name" != raw ]; then
    grep -o 'peak=[0-9]*' "$TMP/err" | head -1 | cut -d= -f2 >>"$TMP/$name.peak"
  fi
}

for _ in $(seq "$ROUNDS"); do
  run raw tcpdump -nr "$TMP/bench.pcap" 'ether proto 0x88b5'
  run one $BIN replay "$TMP/bench.pcap" --workers 1
  run default $BIN replay "$TMP/bench.pcap"
done
run base $BIN replay "$TMP/one.pcap" --workers 1

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { cut -d' ' -f1 <"$TMP/$1" | median; }
rss() { cut -d' ' -f2 <"$TMP/$1" | sort -n | tail -1; }
raw=$(secs raw)
base_rss=$(rss base)
echo "| run | seconds (median of $ROUNDS) | packets/s | vs raw read | peak RSS | bytes per tracked flow |"
echo "|---|---|---|---|---|---|"
for n in raw one default; do
  s=$(secs $n)
  pps=$(awk -v p="$PACKETS" -v s="$s" 'BEGIN {printf "%.0f", p / s}')
  ratio=$(awk -v r="$raw" -v s="$s" 'BEGIN {printf "%.2f", r / s}')
  r=$(rss $n)
  if [ "$n" = raw ]; then
    per="-"
  else
    peak=$(sort -n "$TMP/$n.peak" | tail -1)
    per=$(awk -v r="$r" -v b="$base_rss" -v p="$peak" 'BEGIN {printf "%.0f", (r - b) * 1024 / p}')
  fi
  label=$n
  [ $n = raw ] && label="tcpdump -r (raw libpcap read)"
  [ $n = one ] && label="deguchi replay --workers 1"
  [ $n = default ] && label="deguchi replay (default workers)"
  echo "| $label | $s | $pps | $ratio | ${r} KB | $per |"
done
echo
echo "$PACKETS packets, $(nproc) cores; bytes per tracked flow = (peak RSS - RSS of a 1-packet replay) / peak flows (all detectors on)."
