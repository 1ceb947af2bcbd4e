#!/usr/bin/env bash
# Runs the recursive cpu grid one run at a time (each resumable); usage: bash bench/recursive_queue.sh [SEEDS...]
# Logs: log/recursive/<task>/<algorithm>/seed<S>/ and log/recursive/<task>_<algorithm>_seed<S>.log
# Environment: TASKS / ALGORITHMS (space-separated, default the #11 grid), SKIP (cells "task/algorithm/seedS"
# whose results are already recorded elsewhere). Each cell is bench/deployment_study.sh's plan cpu500.
cd "$(dirname "$0")/.." || exit 1
seeds=("${@:-0 1 2}")
tasks=${TASKS:-half_cheetah hopper}
algorithms=${ALGORITHMS:-bremen me_trpo}
for seed in ${seeds[@]}; do
  for task in $tasks; do
    for algorithm in $algorithms; do
      case " ${SKIP:-} " in *" $task/$algorithm/seed$seed "*) continue ;; esac
      LOG_ROOT=log/recursive bash bench/deployment_study.sh cpu500 "$task" "$algorithm" "$seed"
    done
  done
done
