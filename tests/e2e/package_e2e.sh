#!/usr/bin/env bash
# Builds the .deb, installs it (root only: CI runs as root), runs the installed programs, removes it again.
# Exit 77 = skipped (not root, no dpkg, or the package is already installed from elsewhere).
set -euo pipefail
build=$1
fail() { echo "FAIL: $*"; exit 1; }
if [ "$(id -u)" -ne 0 ] || ! command -v dpkg > /dev/null; then echo "skipped: needs root and dpkg"; exit 77; fi
if dpkg-query -W -f='${Status}' graftlab 2>/dev/null | grep -q "install ok installed"; then
  echo "skipped: a graftlab package is already installed on this machine"; exit 77
fi
work=$(mktemp -d)
cleanup() { dpkg -r graftlab > /dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
(cd "$build" && cpack -G DEB -B "$work/pkg" > "$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/pkg/graftlab_*.deb | head -1)
[ -f "$deb" ] || fail "no .deb produced"
# listings go to files first: `dpkg-deb ... | grep -q` would kill dpkg-deb with SIGPIPE under pipefail
dpkg-deb -I "$deb" > "$work/info.txt"
dpkg-deb -c "$deb" > "$work/contents.txt"
grep -q "Depends:.*libopenblas0-pthread" "$work/info.txt" || fail "Depends lacks libopenblas0-pthread"
grep -q "usr/share/applications/graftlab.desktop" "$work/contents.txt" || fail "no desktop entry"
grep -q "usr/share/graftlab/recipes/layer_grafted.json" "$work/contents.txt" || fail "recipes not packaged"
dpkg -i "$deb" > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i (missing dependencies?)"; }
grep -q graftlab-cli <<< "$(/usr/bin/graftlab-cli --version)" || fail "installed graftlab-cli --version"
[ -x /usr/bin/graftlab ] || fail "GUI not installed"
cd "$work"
/usr/bin/graftlab-cli train --recipe mae --out "$work/run" --steps 10 --set data.dataset=synthetic \
  --set data.synthetic_size=256 --set optim.batch_size=16 --set model.depth=2 --set train.log_every=5 \
  2> "$work/train.log" || { cat "$work/train.log"; fail "installed train"; }
[ "$(wc -l < "$work/run/metrics.jsonl")" -eq 2 ] || fail "installed train wrote no metrics"
echo "e2e.package: all checks passed"
