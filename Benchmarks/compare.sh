#!/usr/bin/env bash
# Runs the semaphore benchmarks (ours and the baselines, in one binary and one run) and prints the medians
# and the ratios BENCHMARKS.md sets targets for. Usage: Benchmarks/compare.sh [raw-output-file]
set -euo pipefail
cd "$(dirname "$0")"
raw=${1:-$(mktemp)}
swift package --disable-sandbox benchmark --target SemaphoreBenchmarks --format markdown --no-progress >"$raw" 2>&1 || {
    cat "$raw" >&2
    exit 1
}

# p50 of one metric of one benchmark, from the markdown tables ("### name", then "| metric | p0 | p25 | p50 |").
# Large values carry a scale in the label, "metric (K)" or "metric (M)"; the value is scaled back.
p50() {
    awk -v name="### $1" -v metric="$2" '
        $0 == name { inside = 1; next }
        /^### / { inside = 0 }
        inside {
            split($0, cells, "|")
            label = cells[2]; gsub(/^ +| +$/, "", label)
            value = cells[5]; gsub(/ /, "", value)
            if (label == metric) { print value; exit }
            if (label == metric " (K)") { print value * 1000; exit }
            if (label == metric " (M)") { print value * 1000000; exit }
        }
    ' "$raw"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
ns() { awk -v ps="$1" 'BEGIN { printf "%.1f", ps / 1000 }'; }

ours=FIFOSemaphore
actor=ActorFIFOSemaphore
w1_ours=$(p50 "W1 $ours" "ps per op"); w1_actor=$(p50 "W1 $actor" "ps per op"); w1_mutex=$(p50 "W1 Mutex" "ps per op")
w2_ours=$(p50 "W2 $ours" "ns per op"); w2_actor=$(p50 "W2 $actor" "ns per op")
w3_ours=$(p50 "W3 $ours" "ns per op"); w3_actor=$(p50 "W3 $actor" "ns per op")

echo "| workload | metric (median) | $ours | $actor | Mutex | ratio | target |"
echo "|---|---|---|---|---|---|---|"
echo "| W1 uncontended | ns per acquire+release | $(ns "$w1_ours") | $(ns "$w1_actor") | $(ns "$w1_mutex") | $(ratio "$w1_ours" "$w1_mutex")x Mutex | within 3x of Mutex |"
echo "| W2 contended, limit 1 | ns per op | $w2_ours | $w2_actor | – | $(ratio "$w2_ours" "$w2_actor")x actor | at most 1x actor |"
echo "| W2 contended, limit 1 | most holders at once | $(p50 "W2 $ours" "most holders at once") | $(p50 "W2 $actor" "most holders at once") | – | – | 1 |"
echo "| W3 contended, limit 4 | ns per op | $w3_ours | $w3_actor | – | $(ratio "$w3_ours" "$w3_actor")x actor | at most 1x actor |"
echo "| W3 contended, limit 4 | most holders at once | $(p50 "W3 $ours" "most holders at once") | $(p50 "W3 $actor" "most holders at once") | – | – | at most 4 |"
for variant in "W2 yielding" "W3 yielding"; do
    a=$(p50 "$variant $ours" "ns per op"); b=$(p50 "$variant $actor" "ns per op")
    echo "| $variant (every release a hand-off) | ns per op | $a | $b | – | $(ratio "$a" "$b")x actor | at most 1x actor |"
    echo "| $variant | most holders at once | $(p50 "$variant $ours" "most holders at once") | $(p50 "$variant $actor" "most holders at once") | – | – | at most $(case $variant in W2*) echo 1 ;; *) echo 4 ;; esac) |"
done
for metric in "drain ms" "FIFO violations" "bytes per waiter" "own bytes per waiter"; do
    echo "| W4 100,000 waiters | $metric | $(p50 "W4 $ours" "$metric") | $(p50 "W4 $actor" "$metric") | – | – | $(case $metric in
        "drain ms") echo "under 1000 (goal 80)" ;; "FIFO violations") echo 0 ;; "own bytes per waiter") echo "at most 128" ;; *) echo – ;;
    esac) |"
done
echo "| W5 cancel 100,000 | cancel-all ms | $(p50 "W5 $ours" "cancel-all ms") | $(p50 "W5 $actor" "cancel-all ms") | – | $(ratio "$(p50 "W5 $ours" "cancel-all ms")" "$(p50 "W5 $actor" "cancel-all ms")")x actor | linear (goal under 70) |"
a=$(p50 "W5 25k $ours" "cancel-all ms"); b=$(p50 "W5 25k $actor" "cancel-all ms")
echo "| W5 cancel 25,000 | cancel-all ms | $a | $b | – | $(ratio "$(p50 "W5 $ours" "cancel-all ms")" "$a")x from 25k to 100k | 4x (linear) |"
echo "| W5 cancel 100,000 | acquired despite cancel | $(p50 "W5 $ours" "acquired despite cancel") | $(p50 "W5 $actor" "acquired despite cancel") | – | – | 0 |"
