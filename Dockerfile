# bremen in a container: exactly what .ci/setup installs (Debian's EGL/OSMesa for headless MuJoCo rendering, the
# pinned requirements in /bremen/.venv, the package), on Debian 12 with CPython 3.11.
#   docker build -t bremen .                                  # CPU image
#   docker build --build-arg BREMEN_GPU=1 -t bremen:gpu .     # GPU image: adds the CUDA 12 build of jax
#   docker run --rm -v "$PWD/data:/bremen/data" -v "$PWD/log:/bremen/log" bremen          # the CPU demo
#   docker run --rm bremen python -m pytest -m "not slow" -q                             # the tests
#   docker run --rm --gpus all -v "$PWD/log:/bremen/log" bremen:gpu python offline.py --env hopper --preset paper
FROM python:3.11-slim-bookworm

ARG BREMEN_GPU=0
ENV MUJOCO_GL=egl PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false BREMEN_GPU=${BREMEN_GPU} \
    PATH=/bremen/.venv/bin:$PATH
WORKDIR /bremen
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# dependencies first (a layer that survives code changes), then the package
COPY .ci/setup .ci/setup
COPY requirements.txt requirements-gpu.txt ./
RUN BREMEN_SETUP_DEPS_ONLY=1 bash .ci/setup && rm -rf /var/lib/apt/lists/* /root/.cache/pip

COPY . .
RUN bash .ci/setup && rm -rf /root/.cache/pip

CMD ["python", "offline.py"]
