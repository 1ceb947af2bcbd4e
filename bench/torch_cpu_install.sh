# Sourced by bench/d3rlpy_setup.sh and bench/offlinerlkit_setup.sh: install torch 2.13.0's CPU wheel with the
# given pinned packages into a venv, through the pip command in the array PIP.
#   install_torch_cpu PIN...
# The CPU-only wheel torch==2.13.0+cpu lies in pip's local find-links on this project's machines; elsewhere
# TORCH_INDEX_URL may name a reachable CPU index, else PyPI's default torch==2.13.0 wheel is used (it pulls in
# the CUDA libraries on Linux x86_64 and still runs on the CPU).
install_torch_cpu() {
    if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
        "${PIP[@]}" --extra-index-url "$TORCH_INDEX_URL" "torch==2.13.0+cpu" "$@"
    elif "${PIP[@]}" "torch==2.13.0+cpu" "$@"; then
        :
    else
        echo "torch==2.13.0+cpu is not available here: installing PyPI's default torch==2.13.0 wheel" >&2
        "${PIP[@]}" "torch==2.13.0" "$@"
    fi
}
