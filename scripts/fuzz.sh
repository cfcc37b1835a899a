#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module for a bounded time, on top of
# its committed seed corpus (testdata/fuzz/<FuzzName>/).
#
# It finds each `func FuzzXxx(f *testing.F)` in a *_test.go file, and runs
#
#   go test -run '^$' -fuzz '^FuzzXxx$' -fuzztime "$FUZZTIME" ./<package>
#
# one target at a time (Go fuzzes one target per invocation). A failing input
# is written by Go to the package's testdata/fuzz/FuzzXxx/ directory: commit
# it with the fix, so that it stays in the corpus as a regression test.
#
# Environment:
#   FUZZTIME   how long each target runs (go test -fuzztime); default 20s.
#   FUZZ_ONLY  an extended regular expression: run only targets whose name or
#              package directory matches it (e.g. FUZZ_ONLY=pgwire).
#   GO         the go command; default go.
#
# Exit status: 0 when every target passed, 1 when any failed (all targets
# still run), 2 when no target was found.
set -euo pipefail

FUZZTIME="${FUZZTIME:-20s}"
FUZZ_ONLY="${FUZZ_ONLY:-}"
GO="${GO:-go}"

cd "$(dirname "$0")/.."

# targets prints "<package dir> <FuzzName>" for every fuzz target, sorted.
targets() {
	grep -rEo --include='*_test.go' --exclude-dir=.git --exclude-dir=vendor \
		'^func Fuzz[A-Za-z0-9_]*\(' . |
		sed -E 's|^\./(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\($|\1 \2|' |
		sort -u
}

# fuzz_one runs one target. Go's fuzzing coordinator sometimes ends a run
# with "context deadline exceeded" when a worker is slow to answer as the
# time runs out on a loaded machine; that is not a finding (no failing input
# is written). Such a run is retried (up to three runs); a run that wrote a failing input
# to the corpus fails at once.
fuzz_one() {
	local dir=$1 name=$2 seeds=$3 out attempt
	out=$(mktemp)
	for attempt in 1 2 3; do
		if "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir" 2>&1 | tee "$out"; [[ ${PIPESTATUS[0]} -eq 0 ]]; then
			rm -f "$out"
			return 0
		fi
		local now=0
		[[ -d "$dir/testdata/fuzz/$name" ]] && now=$(find "$dir/testdata/fuzz/$name" -type f | wc -l)
		if [[ $now -ne $seeds ]] || ! grep -q 'context deadline exceeded' "$out"; then
			break
		fi
		echo "fuzz.sh: $name: the fuzzing coordinator timed out without a finding; retrying" >&2
	done
	rm -f "$out"
	return 1
}

found=0
failed=()
while read -r dir name; do
	[[ -z "$dir" ]] && continue
	if [[ -n "$FUZZ_ONLY" ]] && ! [[ "$dir/$name" =~ $FUZZ_ONLY ]]; then
		continue
	fi
	found=$((found + 1))
	corpus="$dir/testdata/fuzz/$name"
	seeds=0
	[[ -d "$corpus" ]] && seeds=$(find "$corpus" -type f | wc -l)
	echo "=== fuzz ./$dir $name for $FUZZTIME ($seeds committed seeds)"
	if ! fuzz_one "$dir" "$name" "$seeds"; then
		failed+=("./$dir $name")
	fi
done < <(targets)

if [[ $found -eq 0 ]]; then
	echo "fuzz.sh: no fuzz targets found${FUZZ_ONLY:+ matching $FUZZ_ONLY}" >&2
	exit 2
fi
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "fuzz.sh: ${#failed[@]} of $found targets failed:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz.sh: all $found targets passed ($FUZZTIME each)"
