#!/usr/bin/env bash
# The containers' pre-release check: builds the CPU image from a clean clone of this repository's HEAD and
# runs the README's commands in containers, one line per step with its time and what it showed:
#   build (cold or from cache), rebuild after a one-line code change, image size; in the CPU container the
#   demo (the image's CMD) with data/ and log/ mounted and the files it wrote owned by the mounts' owner,
#   bremen collect, offline and recursive smoke runs, a video, a sweep with --jobs 2, its plot and table,
#   the non-slow tests; a video on an image without the OpenGL libraries (one line, exit 2) while collect
#   still runs; a sweep on a Ray cluster of a head and a worker container; the README's two first commands
#   in the bare base image python:3.11-slim-bookworm; with --gpu the GPU image and jax.devices() in it.
# Usage: docker/check.sh [--only STEP,STEP] [--skip STEP,STEP] [--gpu] [--cold] [--keep]
#   steps: build rebuild size demo collect offline recursive video sweep plot tests nogl ray bare gpu
#   --cold builds without Docker's layer cache; --keep leaves the work folder (printed) in place.
# Every step needs a Docker daemon that can reach the Python and Debian package registries. Exit status:
# the number of failed steps. Takes about an hour with the bare-image step, ~20 min without it and tests.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
only="" skip="" gpu=0 cold=0 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only=",$2,"; shift ;;
    --skip) skip=",$2,"; shift ;;
    --gpu) gpu=1 ;;
    --cold) cold=1 ;;
    --keep) keep=1 ;;
    *) echo "docker/check.sh: unknown argument $1 (see the header for usage)" >&2; exit 2 ;;
  esac
  shift
done
docker info >/dev/null 2>&1 || { echo "docker/check.sh: no Docker daemon answers (docker info failed)" >&2; exit 2; }

net=(--network host)           # needed where dockerd runs without bridge networking, harmless elsewhere
img=bremen:check
base=$(sed -n 's/^FROM //p' "$repo/Dockerfile" | head -1)
work=$(mktemp -d "${TMPDIR:-/tmp}/bremen-docker-check.XXXXXX")
uid=${SUDO_UID:-$(id -u)} gid=${SUDO_GID:-$(id -g)}
[ "$uid" = 0 ] && uid=1000 gid=1000   # run as root: stand in for a normal user's folders
cleanup() {
  docker rm -f bremen-check-head bremen-check-worker >/dev/null 2>&1
  # files a container wrote as root (the bare-image step) are removed from a container too
  docker run --rm "${net[@]}" -v "$work:/w" --entrypoint sh "$base" -c 'rm -rf /w/bare' >/dev/null 2>&1
  if [ "$keep" = 1 ]; then echo "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
failed=0

want() { { [ -z "$only" ] || [[ $only == *",$1,"* ]]; } && [[ $skip != *",$1,"* ]]; }
# step NAME CHECK_COMMAND: runs the check (a shell function), prints "NAME ok|FAILED (seconds) detail"
step() {
  local name=$1; shift
  want "$name" || return 0
  local t0=$SECONDS detail rc
  detail=$("$@" 2>"$work/$name.err"); rc=$?
  local took=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then
    printf '%-10s ok      %5ds  %s\n' "$name" "$took" "$detail"
  else
    failed=$((failed + 1))
    printf '%-10s FAILED  %5ds  %s | %s\n' "$name" "$took" "$detail" "$(tail -3 "$work/$name.err" | tr '\n' ' ')"
  fi
}
# run in the CPU image with the host folders mounted, as Docker's default user (root)
in_image() { docker run --rm "${net[@]}" -v "$work/host/data:/bremen/data" -v "$work/host/log:/bremen/log" "$img" "$@"; }
owned_by_caller() {  # every file under the host folders belongs to the folders' owner
  local wrong
  wrong=$(find "$work/host" ! -uid "$uid" | head -3)
  [ -z "$wrong" ] || { echo "owned by another user: $wrong" >&2; return 1; }
}

git clone -q "$repo" "$work/src" || exit 2
mkdir -p "$work/host/data" "$work/host/log" && chown -R "$uid:$gid" "$work/host"
echo "checking $(git -C "$work/src" log -1 --format='%h %s' | cut -c1-80) in $work"

do_build() {
  local flags=()
  [ "$cold" = 1 ] && flags+=(--no-cache)
  local out context
  out=$(docker build "${net[@]}" "${flags[@]}" -t "$img" "$work/src" 2>&1) || { tail -20 <<<"$out" >&2; return 1; }
  context=$(grep -o 'build context to Docker daemon *[0-9.]* *[kMG]B' <<<"$out" | grep -o '[0-9.]* *[kMG]B$')
  echo "$img built $([ "$cold" = 1 ] && echo cold || echo 'with the layer cache'), context ${context:-?}," \
       "$(grep -c 'Using cache' <<<"$out") steps from the cache"
}
do_rebuild() {
  echo "# a one-line change" >>"$work/src/bremen/__init__.py"
  local out
  out=$(docker build "${net[@]}" -t "$img-edit" "$work/src") || return 1
  git -C "$work/src" checkout -q bremen/__init__.py
  local cached
  cached=$(grep -c "Using cache" <<<"$out")
  echo "after a one-line change in bremen/__init__.py ($cached steps from the cache)"
  docker rmi -f "$img-edit" >/dev/null
}
do_size() {
  local cpu
  cpu=$(docker image inspect -f '{{.Size}}' "$img") || return 1
  echo "CPU image $((cpu / 1000000)) MB (base $base: $(($(docker image inspect -f '{{.Size}}' "$base") / 1000000)) MB)"
}
do_demo() {
  in_image >"$work/demo.log" 2>&1 || return 1
  owned_by_caller || return 1
  grep -A1 "^task " "$work/demo.log" | tr -s ' ' | paste -sd'|' - | cut -c1-150  # the demo's table
}
do_collect() {
  in_image bremen collect --task hopper --noise random --n 5000 --out data/hopper/random.h5 2>/dev/null | tail -1 || return 1
  owned_by_caller
}
do_offline() {
  in_image python offline.py --env hopper --noise random --preset smoke --seed 0 >"$work/offline.log" 2>&1 || return 1
  owned_by_caller && tail -1 "$work/offline.log" | cut -c1-120
}
do_recursive() {
  in_image python recursive.py --env hopper --preset smoke --seed 0 >"$work/recursive.log" 2>&1 || return 1
  owned_by_caller && tail -1 "$work/recursive.log" | cut -c1-120
}
do_video() {
  in_image python save_video.py --env hopper --episodes 1 --max_steps 100 --video_dir log/videos --no_progress \
    2>/dev/null | tail -1 || return 1
  [ -s "$work/host/log/videos/hopper_episode0.mp4" ] && owned_by_caller
}
do_sweep() {
  in_image bremen sweep --tasks hopper --noises random --algorithms bc bremen --seeds 0 1 --preset smoke --jobs 2 \
    --out log/sweep >"$work/sweep.log" 2>&1 || return 1
  owned_by_caller && tail -1 "$work/sweep.log" | cut -c1-120
}
do_plot() {
  in_image bremen plot log/sweep --out log/sweep/curves.png >/dev/null || return 1
  [ -s "$work/host/log/sweep/curves.png" ] && owned_by_caller || return 1
  in_image bremen table log/sweep >"$work/table.md" || return 1
  echo "log/sweep/curves.png; table: $(grep -c '^|' "$work/table.md") rows"
}
do_tests() {
  docker run --rm "${net[@]}" "$img" python -m pytest -m "not slow" -q -p no:cacheprovider >"$work/tests.log" 2>&1
  local rc=$?
  tail -1 "$work/tests.log"
  return $rc
}
do_nogl() {  # the image with the OpenGL libraries taken out: collect runs, a video is one line
  docker run --rm "${net[@]}" --entrypoint bash "$img" -c '
    dpkg --purge --force-depends libegl1 libopengl0 libegl-mesa0 libgl1-mesa-dri libosmesa6 >/dev/null 2>&1
    bremen collect --task hopper --noise random --n 500 --out /tmp/d.h5 >/dev/null 2>&1 || { echo "collect failed"; exit 1; }
    python save_video.py --env hopper --episodes 1 --max_steps 5 --video_dir /tmp/v 2>/tmp/err; rc=$?
    [ $rc = 2 ] && [ "$(wc -l </tmp/err)" = 1 ] || { echo "video: exit $rc"; cat /tmp/err; exit 1; }
    echo "collect ok; video: exit 2, $(cat /tmp/err)"'
}
do_ray() {  # a Ray head (no CPUs for tasks: every cell runs on the worker) and a worker container
  local mounts=(-v "$work/host/data:/bremen/data" -v "$work/host/log:/bremen/log")
  docker run -d --name bremen-check-head "${net[@]}" "${mounts[@]}" "$img" \
    ray start --head --port=6389 --num-cpus=0 --include-dashboard=false --block >/dev/null || return 1
  sleep 8
  docker run -d --name bremen-check-worker "${net[@]}" "${mounts[@]}" "$img" \
    ray start --address=127.0.0.1:6389 --num-cpus=2 --block >/dev/null || return 1
  sleep 8
  docker exec bremen-check-head ray status --address=127.0.0.1:6389 >"$work/ray_status.txt" 2>&1
  # the sweep's driver runs in the head container (a Ray driver needs a node of its own machine), as the
  # owner of the mounted folders
  docker exec -u "$uid:$gid" -e HOME=/tmp bremen-check-head bremen sweep --tasks hopper --noises random \
    --algorithms bc bremen --seeds 0 1 --preset smoke --ray 127.0.0.1:6389 --out log/raysweep \
    >"$work/raysweep.log" 2>&1 || return 1
  in_image bremen table log/raysweep >"$work/raytable.md" || return 1
  owned_by_caller || return 1
  echo "$(grep -c 'node_' "$work/ray_status.txt") nodes; $(tail -1 "$work/raysweep.log" | cut -c1-100)"
}
do_bare() {  # the README's two first commands, unchanged, in the bare base image
  git clone -q "$repo" "$work/bare/src" || return 1
  docker run --rm "${net[@]}" -v "$work/bare/src:/src" -w /src "$base" bash -c '
    t0=$SECONDS; bash .ci/setup >/tmp/setup.log 2>&1 && .venv/bin/python offline.py >/src/demo.log 2>&1 || exit 1
    demo=$((SECONDS - t0)); t0=$SECONDS
    bash .ci/run >/src/tests.log 2>&1 || { tail -5 /src/tests.log; exit 1; }
    echo "setup + demo ${demo}s ($(grep -A1 "^task " /src/demo.log | tail -1 | tr -s " "));" \
         "bash .ci/run $((SECONDS - t0))s: $(grep -E "[0-9]+ (passed|failed)" /src/tests.log | tail -1)"'
}
do_gpu() {
  docker build "${net[@]}" -q --build-arg BREMEN_GPU=1 -t "$img-gpu" "$work/src" >/dev/null || return 1
  local devices gpu_flag=()
  docker info 2>/dev/null | grep -qi nvidia && gpu_flag=(--gpus all)
  devices=$(docker run --rm "${net[@]}" "${gpu_flag[@]}" "$img-gpu" python -c "import jax; print(jax.devices())" \
    2>/dev/null | tail -1) || return 1
  echo "GPU image $(($(docker image inspect -f '{{.Size}}' "$img-gpu") / 1000000)) MB; jax.devices(): $devices"
}

step build do_build
step rebuild do_rebuild
step size do_size
step demo do_demo
step collect do_collect
step offline do_offline
step recursive do_recursive
step video do_video
step sweep do_sweep
step plot do_plot
step tests do_tests
step nogl do_nogl
step ray do_ray
step bare do_bare
[ "$gpu" = 1 ] && step gpu do_gpu
echo "docker/check.sh: $failed step(s) failed"
exit "$failed"
