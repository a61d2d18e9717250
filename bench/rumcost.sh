#!/usr/bin/env bash
# What field data costs a cache hit, in process: BenchmarkHit (the handler)
# and BenchmarkHitServed (request bytes in, response bytes out) with field
# data off and on. Runs alternate off/on and on/off, one benchmark per
# process, so a drift of the machine hits both sides alike; benchstat
# compares them. Each run of "on" is also divided by the "off" run next to it:
# the median of those paired ratios, with a distribution-free 95% interval
# (order statistics), holds up better when the machine's speed wanders.
#
#   bench/rumcost.sh            30 runs of each
#   COUNT=50 bench/rumcost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/proxy.test" ./proxy/
run() { (cd proxy && "$work/proxy.test" -test.run '^$' -test.bench "^$1\$" -test.benchtime 200000x) | grep '^Benchmark'; }
for i in $(seq 1 "$count"); do
	for b in BenchmarkHit BenchmarkHitServed; do
		if [ $((i % 2)) = 1 ]; then
			run "$b" >>"$work/off.txt"
			run "${b}RUM" | sed 's/RUM-/-/' >>"$work/on.txt"
		else
			run "${b}RUM" | sed 's/RUM-/-/' >>"$work/on.txt"
			run "$b" >>"$work/off.txt"
		fi
	done
done
benchstat=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
if [ ! -x "$benchstat" ]; then
	GOBIN="$work" go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
	benchstat=$work/benchstat
fi
"$benchstat" off="$work/off.txt" on="$work/on.txt"
echo
echo "paired: on / off time per hit, run by run"
for b in BenchmarkHit BenchmarkHitServed; do
	paste <(grep "^$b-" "$work/off.txt" | awk '{print $3}') <(grep "^$b-" "$work/on.txt" | awk '{print $3}') |
		awk '{print $2 / $1}' | sort -g |
		awk -v name="$b" '{r[NR] = $1}
		END {
			n = NR
			med = (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
			# ranks k and n-k+1 bound the median with about 95% confidence
			k = int(n / 2 - 0.98 * sqrt(n)); if (k < 1) k = 1
			printf "%-20s %+.2f%% (95%% interval %+.2f%% to %+.2f%%, %d pairs)\n", name, (med - 1) * 100, (r[k] - 1) * 100, (r[n - k + 1] - 1) * 100, n
		}'
done
