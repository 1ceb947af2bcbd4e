# bremen on CPU with headless MuJoCo rendering (EGL/OSMesa through Mesa).
#   docker build -t bremen .
#   docker run --rm -v "$PWD/log:/bremen/log" -v "$PWD/data:/bremen/data" bremen              # the CPU demo
#   docker run --rm bremen python -m pytest -m "not slow" -q                                 # the tests
# For a GPU, install the CUDA build of jax on top: pip install "jax[cuda12]==0.10.2".
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

ENV MUJOCO_GL=egl PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
WORKDIR /bremen

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN pip install --no-cache-dir --no-deps -e .

CMD ["python", "offline.py"]
