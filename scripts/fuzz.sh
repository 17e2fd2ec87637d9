#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx in any package) for FUZZTIME each,
# one after another: go test runs one -fuzz target per invocation. Seeds and
# crashers live in PKG/testdata/fuzz/FuzzXxx/. A crasher fails the run and
# is written there; commit it as a regression case once fixed.
#
#   FUZZTIME=10s scripts/fuzz.sh            # every target
#   FUZZTIME=60s scripts/fuzz.sh ./archive  # the targets of some packages
#   FUZZPARALLEL=1 limits the fuzzing workers (default: GOMAXPROCS).
#   FUZZMINIMIZE bounds the minimizing of each new input (default 5s; go's
#   own default, 60s, can eat a short run whole).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
FUZZMINIMIZE=${FUZZMINIMIZE:-5s}
pkgs=("$@")
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)
par=()
[[ -n ${FUZZPARALLEL:-} ]] && par=(-parallel "$FUZZPARALLEL")

failed=0
count=0
while read -r pkg; do
	dir=$($GO list -f '{{.Dir}}' "$pkg")
	# Only packages with a fuzz target; go test -list prints its names.
	grep -lq '^func Fuzz' "$dir"/*_test.go 2>/dev/null || continue
	for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		count=$((count + 1))
		echo "== $pkg $target ($FUZZTIME)"
		if ! $GO test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZE" "${par[@]}"; then
			echo "FAIL: $pkg $target (crasher under $dir/testdata/fuzz/$target/)"
			failed=$((failed + 1))
		fi
	done
done < <($GO list "${pkgs[@]}")

echo "fuzz: $count targets, $failed failed"
[[ $failed -eq 0 ]]
