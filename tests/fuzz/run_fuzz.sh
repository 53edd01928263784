#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD for SECONDS each, starting from the seeds in tests/fuzz/corpus/<target>,
# after replaying the inputs that once failed (tests/fuzz/regressions/<target>: each must now pass).
# A crash, a leak, an out-of-memory or a timeout fails the run; the input that caused it is kept in
# BUILD/fuzz-out/<target>/ (once fixed, add it to tests/fuzz/regressions/<target>).
set -euo pipefail
build=${1:?usage: run_fuzz.sh BUILD SECONDS}
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
status=0
for t in fuzz_recipe fuzz_snapshot fuzz_idx fuzz_cifar fuzz_checkpoint fuzz_torchfile; do
  out="$build/fuzz-out/$t"
  mkdir -p "$out/corpus"
  exe=$(find "$(cd "$build" && pwd)" -name "$t" -type f -perm -u+x | head -1)
  [ -n "$exe" ] || { echo "$t: not built"; exit 1; }
  opts=(-timeout=10 -rss_limit_mb=2048)
  # LibTorch keeps process-wide caches (operator registry, thread pools) that LeakSanitizer reports as leaks
  leaks=1
  if [ "$t" = fuzz_checkpoint ]; then opts+=(-detect_leaks=0); leaks=0; fi
  export ASAN_OPTIONS="detect_leaks=$leaks"
  if [ -d "$here/regressions/$t" ]; then
    echo "== $t: replaying $(ls "$here/regressions/$t" | wc -l) regression input(s)"
    if ! (cd "$out" && "$exe" "${opts[@]}" "$here/regressions/$t"/* > regressions.log 2>&1); then
      echo "$t REGRESSED:"; tail -30 "$out/regressions.log"; status=1; continue
    fi
  fi
  echo "== $t for ${seconds}s"
  if (cd "$out" && "$exe" "${opts[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        corpus "$here/corpus/$t" > fuzz.log 2>&1); then
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$out/fuzz.log" | tr '\n' ' '
    echo
  else
    echo "$t FOUND A FAILURE:"
    tail -30 "$out/fuzz.log"
    ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* 2> /dev/null || true
    status=1
  fi
done
exit $status
