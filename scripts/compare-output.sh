#!/usr/bin/env bash
# Proves a change kept deguchi's output: replays the bundled sample, the
# generated scenarios and every shared real capture with two builds and
# compares alerts and flow records byte for byte, for 1, 2 and 4 analysis
# partitions on 1 and 2 analysis threads (the new build only; the old one
# with its defaults).
#
#   scripts/compare-output.sh OLD_BINARY [NEW_BINARY]
#   scripts/compare-output.sh --rev COMMIT      # builds COMMIT in a temporary worktree
#   scripts/compare-output.sh --self [NEW_BINARY]  # layouts against 1 partition on 1 thread
#
# Exit 0 when every output is identical; lists the differences otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--rev" ]; then
  rev=$2
  wt=$(mktemp -d)
  git worktree add -q --detach "$wt" "$rev"
  trap 'git worktree remove --force "$wt"' EXIT
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/compare-base" cargo build --release -q --manifest-path "$wt/Cargo.toml"
  old="${CARGO_TARGET_DIR:-target}/compare-base/release/deguchi"
  shift # the new binary, if given, follows the commit
elif [ "${1:-}" = "--self" ]; then
  old=--self
else
  old=${1:?usage: $0 OLD_BINARY [NEW_BINARY] | --rev COMMIT | --self}
fi
new=${2:-target/release/deguchi}
[ -x "$new" ] || cargo build --release -q
tmp=$(mktemp -d)
inputs=(pcaps/sample.pcap)
for s in office exfil; do
  "$new" gen "$s" -o "$tmp/$s.pcap" >/dev/null 2>&1 && inputs+=("$tmp/$s.pcap")
done
if [ -d ../shared/pcaps/real ]; then
  while IFS= read -r f; do inputs+=("$f"); done < <(ls ../shared/pcaps/real/*.pcap ../shared/pcaps/real/*.pcapng 2>/dev/null)
fi
bad=0
n=0
for f in "${inputs[@]}"; do
  if [ "$old" = --self ]; then
    printf '[general]\npartitions = 1\nanalysis_threads = 1\n' > "$tmp/one.toml"
    "$new" replay "$f" --config "$tmp/one.toml" -o "$tmp/old.a" --flows "$tmp/old.f" 2>/dev/null || true
  else
    "$old" replay "$f" -o "$tmp/old.a" --flows "$tmp/old.f" 2>/dev/null || true
  fi
  for layout in "1 1" "2 1" "4 2" "16 2" "16 1"; do
    set -- $layout
    printf '[general]\npartitions = %s\nanalysis_threads = %s\n' "$1" "$2" > "$tmp/c.toml"
    "$new" replay "$f" --config "$tmp/c.toml" -o "$tmp/new.a" --flows "$tmp/new.f" 2>/dev/null || true
    if ! cmp -s "$tmp/old.a" "$tmp/new.a" || ! cmp -s "$tmp/old.f" "$tmp/new.f"; then
      echo "DIFFERS: $f (partitions=$1 threads=$2): alerts $(wc -l < "$tmp/old.a") -> $(wc -l < "$tmp/new.a")"
      bad=$((bad + 1))
    fi
  done
  n=$((n + 1))
done
rm -rf "$tmp"
echo "$n inputs, $bad differing runs"
[ "$bad" = 0 ]
