# bremen in a container: exactly what .ci/setup installs (Debian's EGL/OSMesa for headless MuJoCo videos, the
# pinned requirements in /bremen/.venv, the package), on Debian 12 with CPython 3.11. Where dockerd runs
# without bridge networking, add --network host to every build and run.
#   docker build -t bremen .                                  # CPU image
#   docker build --build-arg BREMEN_GPU=1 -t bremen:gpu .     # GPU image: adds the CUDA 12 build of jax
#   mkdir -p data log                                         # host folders for datasets and runs
#   docker run --rm -v "$PWD/data:/bremen/data" -v "$PWD/log:/bremen/log" bremen          # the CPU demo
#   docker run --rm bremen python -m pytest -m "not slow" -q                             # the tests
#   docker run --rm --gpus all -v "$PWD/data:/bremen/data" -v "$PWD/log:/bremen/log" bremen:gpu \
#       python offline.py --env hopper --preset paper
# Files written to the mounts belong to the owner of the mounted log/ (docker/entrypoint.sh), not to root.
# docker/check.sh builds the image from a clean clone and runs every command of the README in containers.
FROM python:3.11-slim-bookworm

ARG BREMEN_GPU=0
ENV PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false BREMEN_GPU=${BREMEN_GPU} PIP_NO_CACHE_DIR=1 \
    PATH=/bremen/.venv/bin:$PATH
WORKDIR /bremen
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# dependencies first: this layer is rebuilt only when .ci/setup or a requirements file changes
COPY .ci/setup .ci/setup
COPY requirements.txt requirements-gpu.txt ./
RUN BREMEN_SETUP_DEPS_ONLY=1 bash .ci/setup && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /root/.cache

# the package (editable, as .ci/setup installs it); folders a run writes by default, writable by any user
COPY . .
RUN bash .ci/setup && rm -rf /root/.cache && mkdir -p data log videos && chmod 1777 data log videos

ENTRYPOINT ["/bremen/docker/entrypoint.sh"]
CMD ["python", "offline.py"]
