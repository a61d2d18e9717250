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
	if [ "${report##*
}" = 409 ]; then
		# The site's first release: nothing it could have regressed against.
		echo "release $id of $site: the site's first, nothing to compare it with"
		exit 0
	fi
	verdict=$(printf '%s' "$report" | sed -n 's/.*"verdict":"\([a-z ]*\)".*/\1/p' | tail -n 1)
	complete=$(printf '%s' "$report" | grep -c '"complete":true' || true)
	if printf '%s' "$report" | grep -q '"verdict":"regressed"'; then
		echo "release $id of $site regressed:" >&2
		printf '%s\n' "$report" | grep -o '"why":"[^"]*"' | sed 's/"why":/  /' >&2
		exit 1
	fi
	if [ "$complete" -gt 0 ] || [ "$(date +%s)" -ge "$deadline" ]; then
		echo "release $id of $site: ${verdict:-no verdict}"
		exit 0
	fi
	sleep 60
done
