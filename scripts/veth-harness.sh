#!/usr/bin/env bash
# veth harness: replays a capture with tcpreplay into one end of a veth pair
# inside a fresh network namespace and captures it on the other end, with
# `deguchi live` (or, -T tcpdump, `tcpdump -B 65536`, the baseline); then
# compares deguchi's flow tuples with `deguchi replay` of the same file.
# Needs root (namespaces), iproute2, tcpreplay (and tcpdump for -T tcpdump).
#
#   scripts/veth-harness.sh [-t THREADS] [-r RATE] [-l LOOPS] [-m MTU]
#                           [-T deguchi|tcpdump] [-o DIR] [-b DEGUCHI]
#                           [-x "EXTRA LIVE ARGS"] [-C] PCAP
#
#   -t  deguchi --capture-threads (default 1)
#   -r  tcpreplay rate: topspeed (default), pps=N, mbps=N or multiplier=N
#   -l  tcpreplay loops (default 1)
#   -m  veth MTU (default 1500; 9000 for 5.5 KB frames)
#   -T  the capturing tool (default deguchi)
#   -C  skip the comparison with `deguchi replay` (loss curves)
#   -o  where logs and flow files go (default: a temporary directory, removed)
#
# Prints one line of key=value pairs:
#   tool= threads= rate= loops= sent= pps= received= dropped_by_kernel=
#   shed= processed= capture_cpu_s= per_thread= tuples_live= tuples_replay= tuples_equal=yes|no|skipped
#   bytes_equal=yes|no|skipped
# Tuples: per unordered 5-tuple, the packets summed over its flow records (a
# flow that timed out in replay and not live still compares); bytes_equal:
# their bytes too, which holds only for a file of whole frames (tcpreplay
# sends the captured bytes of a record cut by a snaplen, replay counts its
# wire length).
# With loops > 1 every tuple carries LOOPS times the packets of the file,
# and the replay side is read LOOPS times to match.
set -euo pipefail

threads=1 rate=topspeed loops=1 mtu=1500 tool=deguchi out="" compare=1 extra=""
bin="$(dirname "$0")/../target/release/deguchi"
[ -n "${CARGO_TARGET_DIR:-}" ] && bin="$CARGO_TARGET_DIR/release/deguchi"
while getopts "t:r:l:m:T:o:b:x:C" o; do
  case "$o" in
    t) threads=$OPTARG ;;
    r) rate=$OPTARG ;;
    l) loops=$OPTARG ;;
    m) mtu=$OPTARG ;;
    T) tool=$OPTARG ;;
    o) out=$OPTARG ;;
    b) bin=$OPTARG ;;
    x) extra=$OPTARG ;;
    C) compare=0 ;;
    *) sed -n '2,30p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { sed -n '2,30p' "$0" >&2; exit 2; }
pcap=$(realpath "$1")
bin=$(realpath "$bin")
keep=1
if [ -z "$out" ]; then
  out=$(mktemp -d /tmp/veth-harness.XXXXXX)
  keep=0
fi
mkdir -p "$out"
ns="dgh-$$"
cap_pid=""
cleanup() {
  [ -n "$cap_pid" ] && kill "$cap_pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  [ "$keep" = 1 ] || rm -rf "$out"
}
trap cleanup EXIT

ip netns add "$ns"
nsx() { ip netns exec "$ns" "$@"; }
# no IPv6 on the pair: its own neighbour discovery would add packets
nsx sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$ns" link add va type veth peer name vb
ip -n "$ns" link set va mtu "$mtu"
ip -n "$ns" link set vb mtu "$mtu"
ip -n "$ns" link set va up
ip -n "$ns" link set vb up

case "$rate" in
  # the file preloaded into memory: tcpreplay's top speed is not its disk's
  topspeed) rate_arg=(--topspeed --preload-pcap) ;;
  pps=*) rate_arg=(--pps="${rate#pps=}") ;;
  mbps=*) rate_arg=(--mbps="${rate#mbps=}") ;;
  multiplier=*) rate_arg=(--multiplier="${rate#multiplier=}") ;;
  *) echo "bad rate $rate" >&2; exit 2 ;;
esac

log="$out/capture.log"
if [ "$tool" = deguchi ]; then
  # shellcheck disable=SC2086
  ip netns exec "$ns" "$bin" live -i vb --capture-threads "$threads" --flows "$out/live.flows.json" \
    -o "$out/live.alerts.json" $extra 2>"$log" &
  cap_pid=$!
  ready="capturing on vb"
else
  ip netns exec "$ns" tcpdump -i vb -B 65536 -n -w /dev/null 2>"$log" &
  cap_pid=$!
  ready="listening on vb"
fi
for _ in $(seq 1 100); do
  grep -q "$ready" "$log" 2>/dev/null && break
  sleep 0.1
done
grep -q "$ready" "$log" || { cat "$log" >&2; echo "capture did not start" >&2; exit 1; }
sleep 0.3

nsx tcpreplay -i va "${rate_arg[@]}" --loop="$loops" "$pcap" >"$out/tcpreplay.log" 2>&1 || {
  cat "$out/tcpreplay.log" >&2; exit 1; }
sent=$(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' "$out/tcpreplay.log" | head -1)
failed=$(sed -n 's/.*Failed packets: *\([0-9]*\).*/\1/p' "$out/tcpreplay.log" | head -1)
pps=$(sed -n 's/.*Rated: [0-9.]* Bps, [0-9.]* Mbps, \([0-9.]*\) pps.*/\1/p' "$out/tcpreplay.log" | head -1)
sent=$((sent - ${failed:-0}))
sleep 1
kill -TERM "$cap_pid"
wait "$cap_pid" || true
cap_pid=""

kv() { sed -n "s/.*[ (]$1=\([-0-9]*\).*/\1/p" "$log" | tail -1; }
if [ "$tool" = deguchi ]; then
  received=$(kv received) dropped=$(kv dropped_by_kernel) shed=$(kv shed)
  processed=$(kv processed)
  # with fanout: what each capture thread read ("a+b")
  per_thread=$(sed -n 's/.*packets read by the [0-9]* capture threads: \(.*\)/\1/p' "$log" |
    tail -1 | tr -d ' ')
  # CPU seconds of the capture threads (capture, and capture-N with fanout)
  cpu=$(sed -n 's/.*cpu seconds by stage: \(.*\)/\1/p' "$log" | tail -1 |
    tr ' ' '\n' | awk -F= '/^capture/ {s += $2} END {printf "%.2f", s}')
else
  received=$(sed -n 's/^\([0-9]*\) packets received by filter.*/\1/p' "$log")
  dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$log")
  per_thread="" shed=0 processed=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$log") cpu=""
fi

tuples() {
  # unordered 5-tuple -> packets and bytes, summed over its records
  jq -c 'select(.event_type=="flow")
    | [[.src_ip, (.src_port // 0)], [.dest_ip, (.dest_port // 0)]] as $e
    | {k: ([.proto] + ($e | sort) | tostring),
       p: (.flow.pkts_toserver + .flow.pkts_toclient),
       b: (.flow.bytes_toserver + .flow.bytes_toclient)}' "$1" |
    jq -s -c 'group_by(.k) | map({k: .[0].k, p: (map(.p) | add), b: (map(.b) | add)}) | .[]' |
    sort
}
equal=skipped bequal=skipped nl=0 nr=0
if [ "$tool" = deguchi ] && [ "$compare" = 1 ]; then
  files=()
  for _ in $(seq 1 "$loops"); do files+=("$pcap"); done
  "$bin" replay "${files[@]}" --flows "$out/replay.flows.json" -o /dev/null 2>"$out/replay.log"
  tuples "$out/live.flows.json" >"$out/live.tuples"
  tuples "$out/replay.flows.json" >"$out/replay.tuples"
  nl=$(wc -l <"$out/live.tuples") nr=$(wc -l <"$out/replay.tuples")
  if cmp -s <(jq -c 'del(.b)' "$out/live.tuples") <(jq -c 'del(.b)' "$out/replay.tuples"); then
    equal=yes
  else
    equal=no
    diff <(jq -c 'del(.b)' "$out/live.tuples") <(jq -c 'del(.b)' "$out/replay.tuples") |
      head -20 >&2 || true
  fi
  if cmp -s "$out/live.tuples" "$out/replay.tuples"; then bequal=yes; else bequal=no; fi
fi
echo "tool=$tool threads=$threads rate=$rate loops=$loops mtu=$mtu sent=$sent pps=${pps:-?}" \
  "received=$received dropped_by_kernel=$dropped shed=$shed processed=$processed" \
  "capture_cpu_s=${cpu:-?} per_thread=${per_thread:--} tuples_live=$nl tuples_replay=$nr tuples_equal=$equal bytes_equal=$bequal"
