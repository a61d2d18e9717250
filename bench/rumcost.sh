#!/usr/bin/env bash
# What field data costs a cache hit, in process: BenchmarkHit (the handler)
# and BenchmarkHitServed (request bytes in, response bytes out) with field
# data off and on. Runs alternate off/on and on/off, one benchmark per
# process, so a drift of the machine hits both sides alike; benchstat
# compares them.
#
#   bench/rumcost.sh            12 runs of each
#   COUNT=20 bench/rumcost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-12}
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
