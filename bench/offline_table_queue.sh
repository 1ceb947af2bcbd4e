#!/usr/bin/env bash
# Runs the offline results grid of the baselines issue one seed at a time, so that each finished seed is a full
# row of the table: hopper pure and eps1, half_cheetah pure × bc bcq bear brac_primal brac_dual me_trpo bremen,
# --preset cpu, one local job at a time (every cell resumable; run the same command again to go on).
# Usage: bash bench/offline_table_queue.sh [SEEDS...]   (default 0 1 2)
# Needs data/hopper/pure.h5, data/hopper/eps1.h5 and data/half_cheetah/pure.h5
# (bremen collect --task T --noise N --n 100000 --seed 0 --out data/T/N.h5).
# Then: bremen table --episodes 50 log/table --out docs/offline_table.md --json bench/results/offline_table.json
cd "$(dirname "$0")/.." || exit 1
algorithms=${ALGORITHMS:-bc bcq bear brac_primal brac_dual me_trpo bremen}
for seed in ${@:-0 1 2}; do
  .venv/bin/bremen sweep --tasks hopper --noises pure eps1 --algorithms $algorithms --seeds "$seed" \
    --preset cpu --jobs 1 --out "log/table/hopper/seed$seed"
  .venv/bin/bremen sweep --tasks half_cheetah --noises pure --algorithms $algorithms --seeds "$seed" \
    --preset cpu --jobs 1 --out "log/table/half_cheetah/seed$seed"
done
