#!/usr/bin/env bash
# Runs the recursive cpu grid one run at a time (each resumable); usage: bash bench/recursive_queue.sh [SEEDS...]
# Logs: log/recursive/<task>/<algorithm>/seed<S>/ and log/recursive/<task>_<algorithm>_seed<S>.log
# Environment: TASKS / ALGORITHMS (space-separated, default the #11 grid), SKIP (cells "task/algorithm/seedS"
# whose results are already recorded elsewhere).
cd "$(dirname "$0")/.." || exit 1
seeds=("${@:-0 1 2}")
tasks=${TASKS:-half_cheetah hopper}
algorithms=${ALGORITHMS:-bremen me_trpo}
mkdir -p log/recursive
for seed in ${seeds[@]}; do
  for task in $tasks; do
    for algorithm in $algorithms; do
      case " ${SKIP:-} " in *" $task/$algorithm/seed$seed "*) continue ;; esac
      dir=log/recursive/$task/$algorithm/seed$seed
      [ -f "$dir/summary.json" ] && continue
      flag=""; [ -f "$dir/checkpoint.npz" ] && flag="--resume"
      .venv/bin/python recursive.py --env $task --preset cpu --seed $seed --algorithm $algorithm \
        --log_dir "$dir" $flag >> "log/recursive/${task}_${algorithm}_seed$seed.log" 2>&1
    done
  done
done
