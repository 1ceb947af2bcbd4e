#!/usr/bin/env bash
# Copies the deployments.csv, summary.json, params.json and progress.csv of every finished recursive cpu run under
# log/recursive into
# bench/results/recursive_cpu/<task>/<algorithm>/seed<S>/ (the layout bench/recursive_summary.py reads), so the
# grid's results outlive the machine: usage: bash bench/save_recursive_results.sh
cd "$(dirname "$0")/.." || exit 1
for s in log/recursive/*/*/seed*/summary.json; do
  [ -f "$s" ] || continue
  d=$(dirname "$s"); rel=${d#log/recursive/}
  mkdir -p "bench/results/recursive_cpu/$rel"
  cp "$d/deployments.csv" "$d/summary.json" "$d/params.json" "$d/progress.csv" "bench/results/recursive_cpu/$rel/"
  echo "saved $rel"
done
