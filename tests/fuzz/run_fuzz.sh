#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD for SECONDS each, starting from the seeds in tests/fuzz/corpus/<target>.
# A crash or a leak fails the run; the input that caused it is kept in BUILD/fuzz-out/<target>/ (add it to the
# corpus as a regression once fixed).
set -euo pipefail
build=${1:?usage: run_fuzz.sh BUILD SECONDS}
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
status=0
for t in fuzz_recipe fuzz_snapshot; do
  out="$build/fuzz-out/$t"
  mkdir -p "$out/corpus"
  exe=$(find "$(cd "$build" && pwd)" -name "$t" -type f -perm -u+x | head -1)
  [ -n "$exe" ] || { echo "$t: not built"; exit 1; }
  echo "== $t for ${seconds}s"
  if (cd "$out" && "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        corpus "$here/corpus/$t" > fuzz.log 2>&1); then
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$out/fuzz.log" | tr '\n' ' '
    echo
  else
    echo "$t FOUND A FAILURE:"
    tail -30 "$out/fuzz.log"
    ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* 2> /dev/null || true
    status=1
  fi
done
exit $status
