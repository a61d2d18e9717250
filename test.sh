#!/usr/bin/env bash
# Runs every test of edgevitals, as CI does. Installs what the tests need when
# it is missing and we are root on Debian (Chromium for the lab sampler,
# Prometheus and promtool for the metrics, rules and dashboard tests).
#
#   ./test.sh            vet, gofmt, go test -race ./..., short fuzz runs
#   FUZZTIME=1m ./test.sh   longer fuzzing
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || need+=(prometheus)
if ((${#need[@]})); then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "test.sh: installing ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "!!! test.sh: ${need[*]} missing and not root: the tests that need them will SKIP" >&2
		echo "!!! (under CI=true they FAIL instead). Install with: sudo apt-get install -y ${need[*]}" >&2
	fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" $unformatted >&2
	exit 1
fi

echo "== go vet"
go vet ./...

# Screenshots the browser tests take (the admin dashboard) are kept here.
export EDGEVITALS_ARTIFACTS="${EDGEVITALS_ARTIFACTS:-$PWD/.artifacts}"
mkdir -p "$EDGEVITALS_ARTIFACTS"

echo "== go test -race"
# -p 1: one package at a time. The lab sampler's ground-truth tests time a
# real Chromium to tens of milliseconds; another package's Chromium or
# Prometheus on the other core would blur them.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go test -race -count=1 -p 1 -timeout 45m -v ./... >"$log" 2>&1 || {
	grep -E '^(--- FAIL|FAIL|panic:|ok )|_test.go:[0-9]+:' "$log" | tail -200
	echo "tests: $(grep -c -- '^--- PASS' "$log") passed, $(grep -c -- '^--- FAIL' "$log") failed"
	exit 1
}
grep -E '^(ok|---.*SKIP|    .*SKIPPED)' "$log" || true
passed=$(grep -c -- '^--- PASS' "$log")

echo "== allocation tests (without -race, which makes sync.Pool drop items)"
go test -count=1 -run 'Allocs' ./...

echo "== fuzz (${FUZZTIME:-10s} per target)"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "-- $pkg $target"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-10s}" "$pkg" >/tmp/edgevitals-fuzz.log 2>&1 || {
			cat /tmp/edgevitals-fuzz.log >&2
			echo "fuzz target $target of $pkg failed; the crasher is in $dir/testdata/fuzz/$target" >&2
			exit 1
		}
	done
done
echo "test.sh: all tests passed"
echo "tests: ${passed} passed, 0 failed"
