#!/usr/bin/env bash
# Copies the deployments.csv, summary.json, params.json and progress.csv of every finished recursive run under
# LOG_ROOT (default log/recursive) into the same relative path under RESULTS_ROOT (default
# bench/results/recursive_cpu; the layout bench/recursive_summary.py reads), so the results outlive the machine.
#   usage: bash bench/save_recursive_results.sh [LOG_ROOT [RESULTS_ROOT]]
#   e.g.   bash bench/save_recursive_results.sh log/study bench/results/deployment_study
cd "$(dirname "$0")/.." || exit 1
src=${1:-log/recursive} dst=${2:-bench/results/recursive_cpu}
find "$src" -name summary.json | sort | while read -r s; do
  d=$(dirname "$s"); rel=${d#"$src"/}
  mkdir -p "$dst/$rel"
  cp "$d/deployments.csv" "$d/summary.json" "$d/params.json" "$d/progress.csv" "$dst/$rel/"
  echo "saved $rel"
done
