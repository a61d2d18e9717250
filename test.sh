#!/usr/bin/env bash
# Runs every test of edgevitals, as CI does. Installs what the tests need when
# it is missing and we are root on Debian (Chromium for the lab sampler,
# Prometheus and promtool for the metrics, rules and dashboard tests).
#
#   ./test.sh            vet, gofmt, go test -race ./..., short fuzz runs
#   FUZZTIME=500000x ./test.sh   longer fuzzing (executions per target)
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || need+=(prometheus)
# systemd-analyze verifies deploy/systemd/edgevitals.service (it runs without systemd as PID 1).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
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

# Helm lints and renders deploy/helm/edgevitals (deploy/helm_test.go), built from the Go
# module proxy into GOPATH/bin once (about 5 minutes on 2 cores), then reused. Pinned:
# a new Helm may render differently, which is a change to review.
helm_version=v3.22.1
if [ "$(helm version --template '{{.Version}}' 2>/dev/null)" != "$helm_version" ]; then
	echo "test.sh: installing helm $helm_version into $(go env GOPATH)/bin"
	helm_log=$(mktemp)
	if ! timeout 1200 env GOFLAGS=-mod=mod go install \
		-ldflags "-X helm.sh/helm/v3/internal/version.version=$helm_version" \
		"helm.sh/helm/v3/cmd/helm@$helm_version" >"$helm_log" 2>&1; then
		tail -5 "$helm_log" >&2
		echo "!!! test.sh: helm did not install: the chart tests will SKIP (FAIL under CI=true)" >&2
	fi
	rm -f "$helm_log"
fi

# Let's Encrypt's Pebble, a real ACME CA on loopback, and its DNS server for the TLS-ALPN-01
# and HTTP-01 tests of the edge (cmd/edgevitals/tls_e2e_test.go), built from the Go module
# proxy into GOPATH/bin once (about 2 minutes), then reused. Pinned, as helm is.
pebble_version=v2.10.3
pebble_bin="$(go env GOPATH)/bin"
if ! go version -m "$pebble_bin/pebble" 2>/dev/null | grep -q "github.com/letsencrypt/pebble/v2[[:space:]]*$pebble_version" ||
	[ ! -x "$pebble_bin/pebble-challtestsrv" ]; then
	echo "test.sh: installing pebble $pebble_version into $pebble_bin"
	pebble_log=$(mktemp)
	if ! timeout 900 env GOFLAGS=-mod=mod go install \
		"github.com/letsencrypt/pebble/v2/cmd/pebble@$pebble_version" \
		"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@$pebble_version" >"$pebble_log" 2>&1; then
		tail -5 "$pebble_log" >&2
		echo "!!! test.sh: pebble did not install: the ACME tests will SKIP (FAIL under CI=true)" >&2
	fi
	rm -f "$pebble_log"
fi

# Grafana's dashboard-linter, when it can be had: its go.mod has a replace directive, so
# `go install` refuses it (upstream's README says so), and the module proxy does not
# serve it here. deploy/dashboard_lint_test.go then runs the linter's rules ported to Go,
# with the same .lint exclusions, and the test of the real binary SKIPs, also under CI.
if ! command -v dashboard-linter >/dev/null 2>&1; then
	if ! timeout 120 env GOFLAGS=-mod=mod go install github.com/grafana/dashboard-linter@latest >/dev/null 2>&1; then
		echo "!!! test.sh: dashboard-linter cannot be installed from the Go module proxy: its rules run as a Go port instead" >&2
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

# staticcheck, pinned, built from the Go module proxy into GOPATH/bin once.
staticcheck_version=v0.8.2
if ! go version -m "$(go env GOPATH)/bin/staticcheck" 2>/dev/null | grep -q "honnef.co/go/tools[[:space:]]*$staticcheck_version"; then
	echo "test.sh: installing staticcheck $staticcheck_version into $(go env GOPATH)/bin"
	timeout 600 go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
echo "== staticcheck"
staticcheck ./...

# The proxy's soak test runs this long (loopback only, bounded, stops by itself).
export EDGEVITALS_SOAK="${EDGEVITALS_SOAK:-2m}"

# Screenshots the browser tests take (the admin dashboard) are kept here.
export EDGEVITALS_ARTIFACTS="${EDGEVITALS_ARTIFACTS:-$PWD/.artifacts}"
mkdir -p "$EDGEVITALS_ARTIFACTS"

# A real WordPress for the CMS-safety tests (cmd/edgevitals/wordpress_test.go):
# when the machine has the script that serves one and we are root, start it
# on 127.0.0.1:18090 and hand its URL and admin credentials to the tests. It
# is stopped when test.sh ends, also on failure, unless it was running before.
wp_origin=../shared/wordpress-origin.sh
wp_started=0
stop_wordpress() {
	if [ "$wp_started" = 1 ]; then
		wp_started=0
		bash "$wp_origin" stop >/dev/null 2>&1 || echo "!!! test.sh: '$wp_origin stop' failed" >&2
	fi
}
trap stop_wordpress EXIT
if [ -z "${EDGEVITALS_WORDPRESS:-}" ] && [ -f "$wp_origin" ] && [ "$(id -u)" = 0 ]; then
	echo "== WordPress origin (127.0.0.1:18090)"
	wp_status=$(bash "$wp_origin" status 2>/dev/null || true)
	grep -q '^nginx *running' <<<"$wp_status" || wp_started=1
	wp_log=$(mktemp)
	if timeout 600 bash "$wp_origin" start 18090 >"$wp_log" 2>&1 && wp_info=$(bash "$wp_origin" info 2>/dev/null); then
		# "URL:  http://127.0.0.1:18090/  (...)", "Admin:  admin / PASSWORD  (...)",
		# "... password post /edge-protected-01/ (password PASSWORD)"
		EDGEVITALS_WORDPRESS=$(awk '$1 == "URL:" { sub(/\/$/, "", $2); print $2; exit }' <<<"$wp_info")
		EDGEVITALS_WORDPRESS_USER=$(awk '$1 == "Admin:" { print $2; exit }' <<<"$wp_info")
		EDGEVITALS_WORDPRESS_PASSWORD=$(awk '$1 == "Admin:" { print $4; exit }' <<<"$wp_info")
		EDGEVITALS_WORDPRESS_POST_PASSWORD=$(sed -n 's/.*password post [^ ]* (password \([^)]*\)).*/\1/p' <<<"$wp_info" | head -n 1)
		export EDGEVITALS_WORDPRESS EDGEVITALS_WORDPRESS_USER EDGEVITALS_WORDPRESS_PASSWORD EDGEVITALS_WORDPRESS_POST_PASSWORD
		echo "WordPress at $EDGEVITALS_WORDPRESS (user $EDGEVITALS_WORDPRESS_USER)"
	else
		tail -n 20 "$wp_log" >&2
		echo "!!! test.sh: the WordPress origin did not start: TestWordPress will SKIP (under CI=true it FAILS)" >&2
	fi
	rm -f "$wp_log"
fi

# Lighthouse, the second lab tool the sampler's figures are checked against
# (vitals/lighthouse_test.go), from npm into a cache outside the repository.
# Pinned: Lighthouse 13 needs Node 22, and a new Lighthouse may read a trace
# differently, which is a change to review, not to pick up unseen.
lighthouse_version=12.8.2
lighthouse_dir="${XDG_CACHE_HOME:-$HOME/.cache}/edgevitals-lighthouse"
lighthouse_cli="$lighthouse_dir/node_modules/lighthouse/cli/index.js"
if [ -z "${EDGEVITALS_LIGHTHOUSE:-}" ]; then
	if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
		if [ "$(node -p "require('$lighthouse_dir/node_modules/lighthouse/package.json').version" 2>/dev/null)" != "$lighthouse_version" ]; then
			echo "test.sh: installing lighthouse@$lighthouse_version into $lighthouse_dir"
			mkdir -p "$lighthouse_dir"
			timeout 300 npm install --prefix "$lighthouse_dir" --save-exact --no-audit --no-fund --loglevel=error \
				"lighthouse@$lighthouse_version" >"$lighthouse_dir/install.log" 2>&1 ||
				{ tail -5 "$lighthouse_dir/install.log" >&2; echo "!!! test.sh: lighthouse did not install: the cross-check of the sampler will SKIP (FAIL under CI=true)" >&2; }
		fi
		if [ -f "$lighthouse_cli" ]; then export EDGEVITALS_LIGHTHOUSE="$lighthouse_cli"; fi
	else
		echo "!!! test.sh: node/npm missing: the Lighthouse cross-check of the sampler will SKIP (FAIL under CI=true)" >&2
	fi
fi

echo "== go test -race"
# -p 1: one package at a time. The lab sampler's ground-truth tests time a
# real Chromium to tens of milliseconds; another package's Chromium or
# Prometheus on the other core would blur them.
log=$(mktemp)
trap 'rm -f "$log"; stop_wordpress' EXIT
go test -race -count=1 -p 1 -timeout 45m -v ./... >"$log" 2>&1 || {
	grep -E '^(--- FAIL|FAIL|panic:|ok )|_test.go:[0-9]+:' "$log" | tail -200
	echo "tests: $(grep -c -- '^--- PASS' "$log") passed, $(grep -c -- '^--- FAIL' "$log") failed"
	exit 1
}
grep -E '^(ok|---.*SKIP|    .*SKIPPED)' "$log" || true
passed=$(grep -c -- '^--- PASS' "$log")

echo "== allocation tests (without -race, which makes sync.Pool drop items)"
go test -count=1 -run 'Allocs' ./...

# The fuzz budget is a count of executions, not a duration: Go 1.26's fuzz
# coordinator can report "context deadline exceeded" as a failure when a
# -fuzztime duration runs out while a worker is busy (golang/go#75804, fixed in
# Go 1.27), which failed CI once with no crasher written. 30000 executions take
# 1 to 10 s per target here. A real finding always writes a failing input.
fuzztime=${FUZZTIME:-30000x}
echo "== fuzz (${fuzztime} per target)"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "-- $pkg $target"
		if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" >/tmp/edgevitals-fuzz.log 2>&1; then
			if ! grep -q 'Failing input written' /tmp/edgevitals-fuzz.log &&
				grep -q '^    context deadline exceeded$' /tmp/edgevitals-fuzz.log &&
				[ "$(grep -c '^    ' /tmp/edgevitals-fuzz.log)" = 1 ]; then
				echo "   WARNING: the Go fuzz coordinator stopped with its own deadline error (golang/go#75804), no failing input; not a finding"
				continue
			fi
			cat /tmp/edgevitals-fuzz.log >&2
			echo "fuzz target $target of $pkg failed; the crasher is in $dir/testdata/fuzz/$target" >&2
			exit 1
		fi
	done
done
echo "test.sh: all tests passed"
echo "tests: ${passed} passed, 0 failed"
