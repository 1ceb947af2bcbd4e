#!/usr/bin/env bash
# The deployment-efficiency study (docs/recursive.md): recursive runs on named plans, one at a time, each
# resumable (run the same command again after an interruption; finished runs are skipped).
#   usage: bash bench/deployment_study.sh PLAN TASK ALGORITHM SEED [SEED ...]
# Every plan starts from --preset cpu (5 deployments of 20k real steps, the same random first batch per seed as
# bench/results/recursive_cpu) and changes only what its name says:
#   cpu500      the cpu plan itself: 20 outer iterations (500 TRPO iterations) per deployment
#   it2000      the paper's 2000 TRPO iterations per deployment (--interval 80 --onpol_iters 400)
#   it2000x10   it2000 continued to 10 deployments of the same 20k real steps
#   cl500       --consistent_likelihood (ratios and KL under the sampling distribution N(mu, 0.1), the paper's
#               pi_theta0 = N(pi_beta, sigma); a departure from the original code), 500 iterations
#   cl2000      --consistent_likelihood, 2000 iterations
#   reset1000   it2000 with the paper's H = 1000 from reset start states (hopper: --no_use_s_t)
#   clreset1000 reset1000 with --consistent_likelihood (hopper reset1000 seed 0: TRPO lowered the imagined return
#               within a deployment, 646 -> 415; tests whether steps taken under sigma's floor are the cause)
#   batch100k   it2000 with 100k real steps per deployment (the paper's batch-size regime)
#   b100k       the cpu plan (500 TRPO iterations) with 100k real steps per deployment
#               (batch100k, b100k, val100k: a model-free agent makes one update per real step, 100k per deployment)
#   val2000     it2000 with ME-TRPO's policy validation: TRPO stops when fewer than 70 % of the members see the
#               policy improve, 3 outer iterations in a row, and goes back to the last policy that passed
#   val100k     batch100k with val2000's policy validation (the guard against the model exploitation batch100k
#               showed from its fourth deployment)
#   pen500      --disagreement_penalty 1: imaginary rewards lose the members' largest disagreement (MOPO's
#               penalty on BREMEN's ensemble; not in the original BREMEN), 500 iterations
#   pen2000     the same at 2000 iterations
# Logs: ROOT/TASK/ALGORITHM/seedS/ and its console output in ROOT/TASK_ALGORITHM_seedS.log, ROOT being
# LOG_ROOT (default log/study/PLAN); bash bench/save_recursive_results.sh log/study bench/results/deployment_study
# keeps the finished ones. PYTHON (default .venv/bin/python) and CPUS (a taskset list, e.g. 0) choose the
# interpreter and the cores. Stop a run with SIGTERM (a background job ignores Ctrl-C); checkpoints are atomic.
set -u
cd "$(dirname "$0")/.." || exit 1
[ $# -ge 4 ] || { echo "usage: bash bench/deployment_study.sh PLAN TASK ALGORITHM SEED [SEED ...]" >&2; exit 2; }
plan=$1 task=$2 algorithm=$3; shift 3
it2000=(--interval 80 --onpol_iters 400)  # the paper's 2000 TRPO iterations a deployment; the plans build on it
reset1000=("${it2000[@]}" --max_path_length 1000 --no_use_s_t)
validation=(--policy_validation 0.7 --validation_patience 3)
case $plan in
  cpu500) flags=() ;;
  it2000) flags=("${it2000[@]}") ;;
  it2000x10) flags=(--interval 80 --deployments 10 --batch_size 20000) ;;  # --onpol_iters follows from these
  cl500) flags=(--consistent_likelihood) ;;
  cl2000) flags=(--consistent_likelihood "${it2000[@]}") ;;
  reset1000) flags=("${reset1000[@]}") ;;
  clreset1000) flags=(--consistent_likelihood "${reset1000[@]}") ;;
  batch100k) flags=("${it2000[@]}" --batch_size 100000) ;;
  b100k) flags=(--batch_size 100000) ;;
  val2000) flags=("${it2000[@]}" "${validation[@]}") ;;
  val100k) flags=("${it2000[@]}" --batch_size 100000 "${validation[@]}") ;;
  pen500) flags=(--disagreement_penalty 1) ;;
  pen2000) flags=("${it2000[@]}" --disagreement_penalty 1) ;;
  *) echo "bench/deployment_study.sh: unknown plan '$plan' (cpu500, it2000, it2000x10, cl500, cl2000, reset1000, clreset1000, batch100k, b100k, val2000, val100k, pen500, pen2000)" >&2
     exit 2 ;;
esac
case $plan in  # 100k-step batches: a model-free agent makes one update per real step
  batch100k|b100k|val100k) case $algorithm in bremen|me_trpo|mopo|morel) ;; *) flags+=(--set algo.steps=100000) ;; esac ;;
esac
python=${PYTHON:-.venv/bin/python}
pin=(); [ -n "${CPUS:-}" ] && pin=(taskset -c "$CPUS")
root=${LOG_ROOT:-log/study/$plan}
mkdir -p "$root"
for seed in "$@"; do
  dir=$root/$task/$algorithm/seed$seed
  [ -f "$dir/summary.json" ] && continue
  resume=()
  if [ -f "$dir/checkpoint.npz" ]; then resume=(--resume)
  elif [ -d "$dir" ]; then resume=(--force)  # stopped before its first checkpoint: nothing there to keep
  fi
  log=$root/${task}_${algorithm}_seed$seed.log
  echo "$(date -u +%FT%TZ) $plan $task $algorithm seed $seed ${resume[*]}" >> "$log"
  "${pin[@]}" "$python" recursive.py --env "$task" --preset cpu --seed "$seed" --algorithm "$algorithm" "${flags[@]}" \
    --log_dir "$dir" "${resume[@]}" >> "$log" 2>&1 || exit $?
done
