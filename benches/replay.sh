#!/usr/bin/env bash
# Replay benchmark (issue 5): deguchi against a raw libpcap read of the same
# file, measured in one run, alternating, so the ratios hold on a noisy box.
#
#   benches/replay.sh                        # `gen mix`, 2 M packets, 3 rounds
#   SNAPLEN=128 benches/replay.sh            # mix, bulk records cut at 128 bytes
#   MODEL=bench benches/replay.sh            # the stress pattern (see below)
#   MODEL=stress benches/replay.sh           # random-order Zipf IMIX (see below)
#   PACKETS=5000000 ROUNDS=5 benches/replay.sh
#
# Models (deguchi gen ...):
#   mix    an office uplink: 2,000 hosts, heavy-tailed TCP/QUIC/DNS flows,
#          IPv6 and VLAN, a beacon, an upload and a DNS tunnel (crates/synth/src/mix.rs);
#          whole frames, as a mirror-port capture holds them (1.6 GB for 2 M
#          packets), or with SNAPLEN=N bulk records cut at N bytes, a
#          header-only capture: the raw read then moves a tenth of the
#          bytes, the hardest case for the ratio
#   bench  stress: every packet from a random one of 50,000 flows, each its
#          own host, ~1 packet/s per flow, so a third of all packets end a
#          burst the beacon detector scores; whole frames too (SNAPLEN applies)
#   stress 100,000 5-tuples drawn in random order with Zipf(0.9) popularity
#          (10,000 hosts, ~40,000 destinations, 70 % TCP, IMIX 60/576/1514,
#          ~10 % VLAN, ~10 % IPv6) over 600 s, five 60 s beacons: a busy egress
#          point of long-lived chatty sessions, the analysis stage's worst case
#          (crates/synth/src/stress.rs)
#
# Rows: the raw read; deguchi with each worker (shard) count from 1 to the
# cores; deguchi pinned (taskset) to 1, 2, ... cores with the layout it picks
# itself, which is the scaling with cores.
# Columns: packets/s and the ratio to the raw read (median of ROUNDS);
# CPU seconds per stage from deguchi's exit summary (median); peak RSS;
# bytes per tracked flow = (peak RSS - RSS of a 1-packet replay) / peak flows,
# with all detectors on, and with them off (flow tracking alone; that row's
# ratio is the floor no detector work can go below). That
# all-in figure charges the fixed cost of the pipeline (batches, chunks and
# event vectors in flight, thread stacks) to the flows; for mix the script
# also reports the marginal cost: the same number of packets generated with
# 20 instead of 2,000 hosts (far fewer flows, hosts and destinations), and
# (peak RSS difference) / (peak tracked flows difference).
#
# Needs: tcpdump, GNU time (/usr/bin/time), taskset  (apt-get install tcpdump time util-linux),
# and for mix with whole frames about 3.5 GB free in $TMPDIR (two 1.6 GB captures)
set -euo pipefail
[ -n "${EPOCHREALTIME:-}" ] || {
  echo "replay.sh: needs bash 5 (EPOCHREALTIME)" >&2
  exit 1
}
cd "$(dirname "$0")/.."
PACKETS=${PACKETS:-2000000}
ROUNDS=${ROUNDS:-3}
MODEL=${MODEL:-mix}
SNAPLEN=${SNAPLEN:-0}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cargo build --release -q
BIN=target/release/deguchi
$BIN gen "$MODEL" --packets "$PACKETS" --snaplen "$SNAPLEN" -o "$TMP/bench.pcap" 2>/dev/null
$BIN gen "$MODEL" --packets 1 --snaplen "$SNAPLEN" -o "$TMP/one.pcap" 2>/dev/null
if [ "$MODEL" = mix ]; then
  $BIN gen mix --hosts 20 --packets "$PACKETS" --snaplen "$SNAPLEN" -o "$TMP/small.pcap" 2>/dev/null
fi
printf '[beacon]\nenabled = false\n[exfil]\nenabled = false\n[dns_tunnel]\nenabled = false\n' >"$TMP/off.toml"
cat "$TMP/bench.pcap" >/dev/null # warm the page cache
CORES=$(nproc)

# run NAME CMD...: appends "seconds maxrss_kb" to $TMP/NAME. Wall time from
# bash's microsecond clock: GNU time's %e has 10 ms steps, 9 % of a 0.11 s
# raw read (both sides include GNU time's own start, well under 1 ms)
run() {
  local name=$1 t0 t1
  shift
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%M' -o "$TMP/t" "$@" >"$TMP/out" 2>"$TMP/err" || {
    cat "$TMP/err" >&2
    exit 1
  }
  t1=$EPOCHREALTIME
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}') $(cat "$TMP/t")" >>"$TMP/$name"
  if [ "$name" != raw ]; then
    grep -o 'peak=[0-9]*' "$TMP/err" | head -1 | cut -d= -f2 >>"$TMP/$name.peak"
    grep 'cpu seconds by stage' "$TMP/err" | sed 's/.*stage: //' >>"$TMP/$name.cpu"
    grep -c '"event_type":"alert"' "$TMP/out" >"$TMP/$name.alerts" || true
  fi
}

for _ in $(seq "$ROUNDS"); do
  run raw tcpdump -nr "$TMP/bench.pcap" 'ether proto 0x88b5'
  for w in $(seq "$CORES"); do
    run "w$w" $BIN replay "$TMP/bench.pcap" --workers "$w"
  done
  # scaling with cores: pinned to the first c cores, default layout (deguchi
  # sizes its shards and lanes from the cores it may run on)
  for c in $(seq "$CORES"); do
    run "c$c" taskset -c "0-$((c - 1))" $BIN replay "$TMP/bench.pcap"
  done
  # the floor: capture, decode, flow tracking and the shared baseline with
  # every detector off (what no detector work can go below)
  run off $BIN replay "$TMP/bench.pcap" --config "$TMP/off.toml"
done
run base $BIN replay "$TMP/one.pcap" --workers 1
if [ "$MODEL" = mix ]; then
  run offw1 $BIN replay "$TMP/bench.pcap" --workers 1 --config "$TMP/off.toml"
  run small $BIN replay "$TMP/small.pcap" --workers 1
  run smalloff $BIN replay "$TMP/small.pcap" --workers 1 --config "$TMP/off.toml"
fi

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { cut -d' ' -f1 <"$TMP/$1" | median; }
rss() { cut -d' ' -f2 <"$TMP/$1" | sort -n | tail -1; }
per_flow() {
  local peak
  peak=$(sort -n "$TMP/$1.peak" | tail -1)
  awk -v r="$(rss "$1")" -v b="$(rss base)" -v p="$peak" 'BEGIN {printf "%.0f", (r - b) * 1024 / p}'
}
# median CPU seconds of each stage over the rounds: "capture=0.21 shard-0=0.30 ..."
cpu() {
  local st
  for st in $(head -1 "$TMP/$1.cpu"); do
    st=${st%%=*}
    printf '%s=%s ' "$st" "$(grep -o "$st=[0-9.]*" "$TMP/$1.cpu" | cut -d= -f2 | median)"
  done
}
# bound NAME: what the stages' CPU allows on $CORES cores even with perfect
# overlap: the wall time is at least the total CPU / cores and at least the
# longest stage; "at best" = raw read / that (the raw read is one thread,
# its wall time is its CPU time)
bound() {
  cpu "$1" | tr ' ' '\n' | awk -F= -v r="$raw" -v c="$CORES" '
    NF == 2 { t += $2; if ($2 > m) m = $2 }
    END { w = t / c; if (m > w) w = m
          printf "%.2f CPU-s, %.1fx the raw read; at best %.2f of it on %d cores", t, t / r, r / w, c }'
}
raw=$(secs raw)
echo "| run | seconds (median of $ROUNDS) | packets/s | vs raw read | CPU s by stage | peak RSS | bytes per tracked flow |"
echo "|---|---|---|---|---|---|---|"
echo "| tcpdump -r (raw libpcap read) | $raw | $(awk -v p="$PACKETS" -v s="$raw" 'BEGIN {printf "%.0f", p / s}') | 1.00 | - | $(rss raw) KB | - |"
for w in $(seq "$CORES"); do
  s=$(secs "w$w")
  pps=$(awk -v p="$PACKETS" -v s="$s" 'BEGIN {printf "%.0f", p / s}')
  ratio=$(awk -v r="$raw" -v s="$s" 'BEGIN {printf "%.2f", r / s}')
  echo "| deguchi replay --workers $w | $s | $pps | $ratio | $(cpu "w$w")| $(rss "w$w") KB | $(per_flow "w$w") |"
done
for c in $(seq "$CORES"); do
  s=$(secs "c$c")
  echo "| deguchi replay on $c core(s) (taskset, default layout) | $s | $(awk -v p="$PACKETS" -v s="$s" 'BEGIN {printf "%.0f", p / s}') | $(awk -v r="$raw" -v s="$s" 'BEGIN {printf "%.2f", r / s}') | $(cpu "c$c")| $(rss "c$c") KB | $(per_flow "c$c") |"
done
s=$(secs off)
echo "| deguchi replay, every detector off (the floor) | $s | $(awk -v p="$PACKETS" -v s="$s" 'BEGIN {printf "%.0f", p / s}') | $(awk -v r="$raw" -v s="$s" 'BEGIN {printf "%.2f", r / s}') | $(cpu off)| $(rss off) KB | $(per_flow off) |"
echo
echo "$MODEL: $PACKETS packets ($(stat -c %s "$TMP/bench.pcap" | awk '{printf "%.0f MB", $1 / 1e6}'), snaplen $SNAPLEN), $CORES cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); alerts written per run: $(cat "$TMP/w1.alerts"); peak tracked flows: $(sort -n "$TMP/w1.peak" | tail -1)."
for w in $(seq "$CORES"); do
  echo "CPU bound, --workers $w: $(bound "w$w")."
done
echo "CPU bound, every detector off: $(bound off)."
echo "Flow tracking alone (all detectors off): $(rss off) KB peak RSS, $(per_flow off) bytes per tracked flow."
if [ "$MODEL" = mix ]; then
  # marginal NAME SMALL: (rss NAME - rss SMALL) / (peak flows NAME - peak flows SMALL)
  marginal() {
    awk -v r="$(rss "$1")" -v s="$(rss "$2")" -v p="$(sort -n "$TMP/$1.peak" | tail -1)" \
      -v q="$(sort -n "$TMP/$2.peak" | tail -1)" 'BEGIN {printf "%.0f", (r - s) * 1024 / (p - q)}'
  }
  echo "Marginal cost of a tracked flow (2,000 vs 20 hosts, $PACKETS packets each, --workers 1; $(sort -n "$TMP/w1.peak" | tail -1) vs $(sort -n "$TMP/small.peak" | tail -1) peak flows): $(marginal w1 small) bytes with all detectors on, $(marginal offw1 smalloff) bytes for flow tracking alone."
fi
