#!/usr/bin/env bash
# Runs the public HTTP caching test suite (github.com/http-tests/cache-tests)
# against edgevitals, Varnish and nginx, each as a shared cache in front of the
# suite's own origin server, and prints passed/failed per kind of test.
#
#   SUITE=/path/to/cache-tests bench/cachetests/run.sh [edgevitals] [varnish] [nginx] [edgevitals-nostale] [edgevitals-heuristic] [direct]
#
# SUITE is a git checkout (its commit is recorded in versions.txt) or an
# unpacked npm release. The results in README.md name the commit they used.
#
# "edgevitals" uses the plain configuration: one catch-all site, preset
# none, default_ttl 0, every other key at its default (including the stale
# windows applied when the origin says nothing: stale_while_revalidate 30s,
# stale_if_error 6h). "edgevitals-nostale" is the same with both stale
# windows at 0, to tell what those defaults cost in the suite.
# "edgevitals-heuristic" is "edgevitals" with the opt-in heuristic freshness
# from Last-Modified on (heuristic_max = "24h"). "direct" runs the suite against its origin with no cache in between, as a
# baseline. Everything listens on 127.0.0.1; every process started here is
# stopped by its PID on exit. Results: bench/out/cachetests/<name>.json
# (the suite's CLI output), versions.txt and summary.md beside them.
#
# Environment: SUITE (required), OUT (results folder), PORT_BASE (first port
# tried, 18900), CLI_TIMEOUT (seconds per cache, 600), EDGEVITALS (a built
# binary to use instead of building ./cmd/edgevitals), EDGEVITALS_SITE_EXTRA
# (TOML lines appended to the site, for experiments; the recorded results
# use none), TEST_ID (run only that test, with the suite's request and
# response dump, printed instead of the summary: for debugging one failure).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${SUITE:?set SUITE to a checkout of github.com/http-tests/cache-tests}"
SUITE=$(cd "$SUITE" && pwd)
out=${OUT:-$repo/bench/out/cachetests}
port_base=${PORT_BASE:-18900}
cli_timeout=${CLI_TIMEOUT:-600}
caches=("$@")
[ ${#caches[@]} -gt 0 ] || caches=(edgevitals varnish nginx)

log() { printf '%s cachetests: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

for c in "${caches[@]}"; do
	case $c in edgevitals | edgevitals-nostale | edgevitals-heuristic | varnish | nginx | direct) ;;
	*) die "unknown cache $c (edgevitals, edgevitals-nostale, edgevitals-heuristic, varnish, nginx, direct)" ;;
	esac
done

# The suite moved its engine under test-engine/ after the 0.4.x releases;
# both layouts are run the same way.
if [ -f "$SUITE/test-engine/cli.mjs" ]; then
	cli=test-engine/cli.mjs server=test-engine/server/server.mjs
elif [ -f "$SUITE/cli.mjs" ] && [ -f "$SUITE/server/server.mjs" ]; then
	cli=cli.mjs server=server/server.mjs
else
	die "$SUITE does not look like cache-tests (no test-engine/cli.mjs nor cli.mjs)"
fi
command -v node >/dev/null || die "node is required (Node.js 18 or later)"

tmp=$(mktemp -d /tmp/cachetests.XXXXXX)
chmod 755 "$tmp" # varnishd's compiler and nginx's workers run as other users
pids=()

stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid still running after 10s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop_pid "$pid"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

used_ports=" "
# pick_port sets the variable named $1 to a free loopback TCP port at or
# above port_base, never one it handed out before.
pick_port() {
	local p
	for p in $(seq "$port_base" $((port_base + 500))); do
		case $used_ports in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			used_ports="$used_ports$p "
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	die "no free port in $port_base..$((port_base + 500))"
}

# wait_port waits up to 15s for a listener on 127.0.0.1:$1, while $2 lives.
wait_port() {
	local port=$1 pid=$2 i
	for i in $(seq 1 150); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# ensure_pkg installs a Debian package when its command is missing; apt-get
# update only when the package is unknown; retries while another apt holds
# the lock; keeps the package's service from starting (policy-rc.d).
ensure_pkg() {
	local cmd=$1 pkg=$2 i err policy=/usr/sbin/policy-rc.d made_policy=
	command -v "$cmd" >/dev/null && return 0
	[ "$(id -u)" = 0 ] || die "$cmd missing: apt-get install $pkg (as root)"
	log "installing $pkg"
	if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && made_policy=1; fi
	for i in $(seq 1 30); do
		if err=$(DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" 2>&1); then break; fi
		case $err in
		*"Could not get lock"* | *"Unable to acquire"* | *"is another process using it"*) log "apt is busy; retrying"; sleep 10 ;;
		*"Unable to locate package"* | *"has no installation candidate"*) apt-get update -qq >/dev/null 2>&1 || sleep 10 ;;
		*) [ -n "$made_policy" ] && rm -f $policy; die "apt-get install $pkg: $err" ;;
		esac
	done
	[ -n "$made_policy" ] && rm -f $policy
	command -v "$cmd" >/dev/null || die "$pkg did not install $cmd"
}

if [ ! -d "$SUITE/node_modules" ]; then
	log "installing the suite's npm dependencies"
	(cd "$SUITE" && npm install --omit=dev --no-audit --no-fund >"$tmp/npm.log" 2>&1) || {
		cat "$tmp/npm.log" >&2
		die "npm install in $SUITE failed"
	}
fi

mkdir -p "$out"
versions="$out/versions.txt"
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "machine: $(uname -sm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	echo "node: $(node --version)"
	suite_version=$(node -e 'process.stdout.write(require(process.argv[1]).version || "")' "$SUITE/package.json" 2>/dev/null || true)
	suite_rev=$(git -C "$SUITE" rev-parse HEAD 2>/dev/null || true)
	echo "cache-tests: ${suite_version:-unknown}${suite_rev:+ (git $suite_rev)}"
} >"$versions"

pick_port origin_port
log "starting the suite's origin server on 127.0.0.1:$origin_port"
(cd "$SUITE" && exec env npm_config_protocol=http npm_config_port="$origin_port" \
	npm_config_pidfile="$tmp/origin.pid" \
	node --import "$here/loopback.mjs" "$server") >"$tmp/origin.log" 2>&1 &
origin_pid=$!
pids+=("$origin_pid")
wait_port "$origin_port" "$origin_pid" || { cat "$tmp/origin.log" >&2; die "origin server did not start"; }

# run_suite runs the CLI against base URL $2 and saves its JSON as $1.json.
run_suite() {
	local name=$1 base=$2 rc=0 file=$out/$1.json
	[ -z "${TEST_ID:-}" ] || file=$out/$1.$TEST_ID.txt
	log "$name: running the suite against $base (at most ${cli_timeout}s)"
	(cd "$SUITE" && exec env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY \
		npm_config_base="$base" npm_config_id="${TEST_ID:-}" npm_package_config_id="${TEST_ID:-}" \
		timeout "$cli_timeout" node --no-warnings "$cli") >"$file" 2>"$out/$name.cli.log" || rc=$?
	if [ $rc -ne 0 ]; then log "$name: the CLI exited $rc (see $out/$name.cli.log)"; fi
	if [ -n "${TEST_ID:-}" ]; then
		echo "=== $name: $TEST_ID"
		cat "$file"
		return 0
	fi
	ran+=("$name=$file")
}

# start_cache starts $1 (a command line) in the background, logs to $2, and
# waits for port $3. It sets cache_pid.
start_cache() {
	local logfile=$2 port=$3
	eval "$1" >"$logfile" 2>&1 &
	cache_pid=$!
	pids+=("$cache_pid")
	if ! wait_port "$port" "$cache_pid"; then
		tail -20 "$logfile" >&2
		return 1
	fi
}

ran=()
built=
for c in "${caches[@]}"; do
	pick_port port
	case $c in
	direct)
		run_suite direct "http://127.0.0.1:$origin_port"
		continue
		;;
	edgevitals | edgevitals-nostale | edgevitals-heuristic)
		extra=${EDGEVITALS_SITE_EXTRA:-}
		case $c in
		edgevitals-nostale) extra=$(printf 'stale_while_revalidate = "0s"\nstale_if_error = "0s"\n%s' "$extra") ;;
		edgevitals-heuristic) extra=$(printf 'heuristic_max = "24h"\n%s' "$extra") ;;
		esac
		bin=${EDGEVITALS:-$built}
		if [ -n "${EDGEVITALS:-}" ] && [ -z "$built" ]; then
			built=$EDGEVITALS
			echo "edgevitals: $EDGEVITALS (given)" >>"$versions"
		fi
		if [ -z "$bin" ]; then
			log "edgevitals: building ./cmd/edgevitals"
			(cd "$repo" && go build -o "$tmp/edgevitals" ./cmd/edgevitals) || die "go build ./cmd/edgevitals failed"
			bin=$tmp/edgevitals
			built=$bin
			echo "edgevitals: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown) ($(go version | awk '{print $3}'))" >>"$versions"
		fi
		pick_port admin_port
		mkdir -p "$tmp/$c-data"
		cat >"$tmp/$c.toml" <<-EOF
			# One catch-all site with RFC behaviour (preset none, no guessed freshness).
			data_dir = "$tmp/$c-data"

			[server]
			listen = "127.0.0.1:$port"
			admin_listen = "127.0.0.1:$admin_port"

			[[site]]
			name = "cachetests"
			hosts = ["*"]
			origins = ["http://127.0.0.1:$origin_port"]
			preset = "none"
			default_ttl = "0s"
			$extra
		EOF
		cp "$tmp/$c.toml" "$out/$c.toml"
		start_cache "exec '$bin' serve -config '$tmp/$c.toml'" "$out/$c.log" "$port" ||
			die "$c did not start"
		;;
	varnish)
		ensure_pkg varnishd varnish
		sed "s/@ORIGIN_PORT@/$origin_port/g" "$here/varnish.vcl" >"$tmp/varnish.vcl"
		chmod 644 "$tmp/varnish.vcl"
		echo "varnish: $(varnishd -V 2>&1 | head -1)" >>"$versions"
		start_cache "exec varnishd -F -n '$tmp/varnish-work' -a 127.0.0.1:$port -T none -f '$tmp/varnish.vcl' \
			-p default_ttl=0 -p default_grace=0 -p default_keep=3600 -s malloc,64M" \
			"$out/varnish.log" "$port" || die "varnishd did not start"
		;;
	nginx)
		ensure_pkg nginx nginx
		ndir=$tmp/nginx
		mkdir -p "$ndir"
		chmod 755 "$ndir"
		user_line=
		if [ "$(id -u)" = 0 ]; then user_line="user nobody nogroup;"; fi
		sed -e "s|@DIR@|$ndir|g" -e "s|@PORT@|$port|g" -e "s|@ORIGIN_PORT@|$origin_port|g" \
			-e "s|@USER_LINE@|$user_line|g" "$here/nginx.conf" >"$ndir/nginx.conf"
		echo "nginx: $(nginx -v 2>&1)" >>"$versions"
		start_cache "exec nginx -p '$ndir' -c '$ndir/nginx.conf'" "$out/nginx.log" "$port" ||
			die "nginx did not start"
		;;
	esac
	run_suite "$c" "http://127.0.0.1:$port"
	stop_pid "$cache_pid"
done

stop_pid "$origin_pid"
echo "origin server log: $(grep -c 'SERVER WARNING' "$tmp/origin.log" || true) warnings" >>"$versions"

[ -z "${TEST_ID:-}" ] || exit 0
detail=()
for r in "${ran[@]}"; do
	case $r in edgevitals=* | edgevitals-nostale=* | edgevitals-heuristic=*) detail+=(-detail "${r%%=*}") ;; esac
done
{
	cat "$versions"
	echo
	node "$here/summarize.mjs" "$SUITE" "${detail[@]}" "${ran[@]}"
} | tee "$out/summary.md"
