#!/usr/bin/env bash
# Loss curve of live capture: for each capture file and each tcpreplay rate,
# replays it into a veth pair (scripts/veth-harness.sh, fresh namespace per
# run) and captures with `deguchi live --capture-threads N` for each N, and
# with `tcpdump -B 65536` as the baseline, in the same run. Prints a table:
# packets sent, rate reached, received, dropped by the kernel, shed by
# deguchi, processed, capture CPU seconds.
# Needs root, iproute2, tcpreplay, tcpdump, jq; a release build.
#
#   benches/loss-curve.sh [-f "office small jumbo"] [-r "pps=50000 ... topspeed"]
#                         [-l LOOPS] [-t "1 2"] [-d DATADIR]
#
# Files (made once in DATADIR, default /tmp/deguchi-loss-curve):
#   office  `deguchi gen office` (2 days, 40 hosts: whole frames, 2.8 M packets)
#   small   64-byte frames, 1 M of them, 10 000 flows (examples/frames.rs)
#   jumbo   5500-byte frames, 100 000 of them, 200 flows (veth MTU 9000)
set -euo pipefail
cd "$(dirname "$0")/.."
files="office small jumbo"
rates="pps=50000 pps=200000 pps=500000 topspeed"
loops=1 threads="1 2" data=/tmp/deguchi-loss-curve
while getopts "f:r:l:t:d:" o; do
  case "$o" in
    f) files=$OPTARG ;;
    r) rates=$OPTARG ;;
    l) loops=$OPTARG ;;
    t) threads=$OPTARG ;;
    d) data=$OPTARG ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
done
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q --bin deguchi --example frames
bin="$target/release/deguchi"
mkdir -p "$data"
[ -s "$data/office.pcap" ] || "$bin" gen office -o "$data/office.pcap" >/dev/null 2>&1
[ -s "$data/small.pcap" ] || "$target/release/examples/frames" 64 1000000 10000 "$data/small.pcap" 2>/dev/null
[ -s "$data/jumbo.pcap" ] || "$target/release/examples/frames" 5500 100000 200 "$data/jumbo.pcap" 2>/dev/null

printf '%-7s %-12s %5s %-10s %12s %10s %12s %10s %10s %12s %7s\n' \
  file rate loops capture sent pps received k_drop shed processed cpu_s
for f in $files; do
  mtu=1500
  [ "$f" = jumbo ] && mtu=9000
  for r in $rates; do
    for tool in $threads tcpdump; do
      if [ "$tool" = tcpdump ]; then
        args=(-T tcpdump) name="tcpdump"
      else
        args=(-t "$tool") name="deguchi-$tool"
      fi
      line=$(scripts/veth-harness.sh -C -b "$bin" -m "$mtu" -r "$r" -l "$loops" "${args[@]}" \
        "$data/$f.pcap" 2>/dev/null | tail -1) || line=""
      get() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$line"; }
      printf '%-7s %-12s %5s %-10s %12s %10s %12s %10s %10s %12s %7s\n' \
        "$f" "$r" "$loops" "$name" "$(get sent)" "$(get pps | cut -d. -f1)" "$(get received)" \
        "$(get dropped_by_kernel)" "$(get shed)" "$(get processed)" "$(get capture_cpu_s)"
    done
  done
done
