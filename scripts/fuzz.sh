#!/bin/sh
# Runs every fuzz target in the module for a while and writes a summary.
#
#   scripts/fuzz.sh [fuzztime] [lanes] [report]
#
# fuzztime is per target (default 10m), lanes how many targets run at once
# (default 2, each with one worker), report where the summary goes
# (default docs/FUZZ.md). Findings stay in each package's testdata/fuzz, where
# `go test` replays them from then on.
set -eu
cd "$(dirname "$0")/.."
fuzztime=${1:-10m}
lanes=${2:-2}
report=${3:-docs/FUZZ.md}
logs=$(mktemp -d)
commit=$(git rev-parse --short HEAD)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
trap 'rm -rf "$logs"' EXIT

# One line per target: "package target".
for pkg in $(go list ./...); do
	go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' | sed "s|^|$pkg |"
done >"$logs/targets"

run() {
	pkg=$1 target=$2
	log="$logs/$(echo "$pkg.$target" | tr '/' '_').log"
	if go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" -parallel 1 "$pkg" >"$log" 2>&1; then
		result=ok
	elif ! grep -q 'Failing input written' "$log" && grep -q '^    context deadline exceeded$' "$log"; then
		# Go 1.26's fuzz coordinator can report its own -fuzztime deadline
		# as a failure (golang/go#75804, fixed in Go 1.27): no input failed.
		result='ok (deadline race)'
	else
		result=FAILED
	fi
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	corpus=$(grep -o 'total: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	printf '| %s | %s | %s | %s | %s |\n' "${pkg#github.com/muxpg/mux/}" "$target" "${execs:-0}" "${corpus:-0}" "$result" >>"$logs/results"
	if [ "$result" = FAILED ]; then
		sed 's/^/    /' "$log" >>"$logs/failures"
	fi
}

# Lanes: target i runs in lane i mod lanes; the lanes run side by side.
i=0
while [ "$i" -lt "$lanes" ]; do
	awk -v n="$lanes" -v k="$i" 'NR % n == k' "$logs/targets" | while read -r pkg target; do
		run "$pkg" "$target"
	done &
	i=$((i + 1))
done
wait

{
	echo "# Fuzzing"
	echo
	echo "\`scripts/fuzz.sh $fuzztime $lanes\` at commit $commit, started $started,"
	echo "$(go version | cut -d' ' -f3), $(nproc) cores; each target ran $fuzztime with one worker."
	echo
	echo "| package | target | executions | corpus | result |"
	echo "|---|---|---|---|---|"
	sort "$logs/results"
	echo
	if [ -s "$logs/failures" ]; then
		echo "## Failures"
		echo
		cat "$logs/failures"
	else
		echo "No target found a failing input."
	fi
	if grep -q 'deadline race' "$logs/results"; then
		echo
		echo "\"ok (deadline race)\": go test exited 1 with \"context deadline exceeded\" as"
		echo "-fuzztime ran out and wrote no failing input: Go's fuzz coordinator"
		echo "reporting its own deadline (golang/go#75804, fixed in Go 1.27)."
	fi
} >"$report"
cat "$report"
! grep -q FAILED "$logs/results"
