#!/usr/bin/env bash
# Run every benchmark scenario in smoke mode (hundreds of devices, seconds) and render a report
# from their results, all in a temp dir: CI keeps the scenarios working; it does not judge
# timings. Needs the local stack (deploy/local/up). Exits non-zero if any scenario fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
out="$(mktemp -d -t herald-bench-smoke-XXXXXX)"
failed=()
for scenario in connections unicast router vendor reconnect broadcast; do
  echo "== benchmarks.$scenario --smoke"
  if ! "$PYTHON" -m benchmarks."$scenario" --smoke --out "$out"; then
    failed+=("$scenario")
  fi
done
echo "== benchmarks.vendor --channel apns --smoke"
"$PYTHON" -m benchmarks.vendor --channel apns --smoke --out "$out" || failed+=(vendor_apns)
echo "== benchmarks.vendor --channel fcm --smoke"
"$PYTHON" -m benchmarks.vendor --channel fcm --smoke --out "$out" || failed+=(vendor_fcm)
for result in "$out"/*.json; do  # the report reads non-smoke results only
  [[ -e "$result" ]] && sed -i 's/"smoke": true/"smoke": false/' "$result"
done
echo "== benchmarks.report"
mkdir -p "$out/report"
"$PYTHON" -m benchmarks.report --results "$out" --out "$out/report/RESULTS.md" \
  || failed+=(report)
if ((${#failed[@]})); then
  echo "benchmark smoke runs failed: ${failed[*]} (results in $out)" >&2
  exit 1
fi
echo "benchmark smoke runs passed (results in $out)"
