#!/bin/sh
# Record a release and, with --guard, wait for its verdict; for CI runners
# without the edgevitals binary (curl and a POSIX shell are enough).
#
#   EDGEVITALS_ADMIN=https://edge-test.example.com:9145 EDGEVITALS_ADMIN_TOKEN=... \
#     deploy/ci/release.sh blog "$CI_COMMIT_SHORT_SHA" "deploy to test" [--guard 45]
set -eu
site=$1 id=$2 note=${3:-} guard=${4:-} minutes=${5:-45}
admin=${EDGEVITALS_ADMIN:-http://127.0.0.1:9145}
auth="Authorization: Bearer ${EDGEVITALS_ADMIN_TOKEN:?set EDGEVITALS_ADMIN_TOKEN}"

body=$(printf '{"site":"%s","id":"%s","note":"%s"}' "$site" "$id" "$note")
code=$(curl -sS -o /dev/stderr -w '%{http_code}' -H "$auth" -H 'Content-Type: application/json' \
	-d "$body" "$admin/api/releases?source=cli")
case $code in
201) echo "release $id of $site recorded" ;;
409) echo "release $id of $site was already recorded" ;;
*) echo "recording the release failed: HTTP $code" >&2; exit 1 ;;
esac

[ "$guard" = "--guard" ] || exit 0
deadline=$(( $(date +%s) + minutes * 60 ))
while :; do
	report=$(curl -sS -w '\n%{http_code}' -H "$auth" "$admin/api/report?site=$site&release=$id")
	status=${report##*
}
	case $status in
	409)
		# The site's first release: nothing it could have regressed against.
		echo "release $id of $site: the site's first, nothing to compare it with"
		exit 0 ;;
	422)
		# The release before it is gone (retention): a guardrail that
		# cannot compare must not pass.
		echo "release $id of $site: cannot compare: $(printf '%s' "$report" | sed -n 's/.*"error":"\([^"]*\)".*/\1/p' | head -n 1)" >&2
		exit 1 ;;
	200) ;;
	*)
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "release $id of $site: no report (HTTP $status)" >&2
			exit 1
		fi
		sleep 60
		continue ;;
	esac
	verdict=$(printf '%s' "$report" | sed -n 's/.*"verdict":"\([a-z ]*\)".*/\1/p' | tail -n 1)
	complete=$(printf '%s' "$report" | grep -c '"complete":true' || true)
	if printf '%s' "$report" | grep -q '"verdict":"regressed"'; then
		echo "release $id of $site regressed:" >&2
		printf '%s\n' "$report" | grep -o '"why":"[^"]*"' | sed 's/"why":/  /' >&2
		exit 1
	fi
	if [ "$complete" -gt 0 ] || [ "$(date +%s)" -ge "$deadline" ]; then
		case $verdict in
		"" | "not enough data")
			echo "release $id of $site: cannot compare: ${verdict:-no verdict} (wait longer)" >&2
			exit 1 ;;
		esac
		echo "release $id of $site: $verdict"
		exit 0
	fi
	sleep 60
done
