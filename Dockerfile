# genlab's page and stable-diffusion-webui's HTTP API (/sdapi/v1) on port 7860, the built-in
# model ready offline. Laid out as stable-diffusion-webui-docker: models, LoRAs, runs and
# outputs under /data (see docker-compose.yml and README "Docker").
#
#   docker build -t genlab:cpu .                                  # CPU (default)
#   docker build --build-arg VARIANT=cuda -t genlab:cuda .        # NVIDIA GPUs
#   docker run --rm -p 7860:7860 -v "$PWD/data/models:/data/models" ... genlab:cpu
#
# BASE: any Debian-like image with python3 (>= 3.10) and its venv module. Docker users keep the
# default; machines without a registry build FROM a local base (../shared/tools/podman-here).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# cpu: PyTorch's CPU build (several GB smaller than the CUDA one: no GPU libraries);
# cuda: the CUDA build, as the package index serves it for Linux.
ARG VARIANT=cpu
# Where the CPU wheel comes from, in this order:
# - PIP_FIND_LINKS: a folder or page of local wheels holding torch-2.13.0+cpu (podman-here
#   passes /opt/wheels);
# - TORCH_INDEX_URL: PyTorch's CPU wheel index, the --index-url of the CPU pip command on
#   PyTorch's "Get started" page (also in README "Two commands"). Docker users build with
#   `docker build --build-arg TORCH_INDEX_URL=<that index> .`
#   (or set TORCH_INDEX_URL in the environment for docker compose);
# - neither: the package index's torch, on Linux the CUDA build, which also runs on the CPU
#   (several GB larger); the build says so.
ARG PIP_FIND_LINKS=
ARG TORCH_INDEX_URL=
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/genlab
# torch first, on its own, so the variant decides the build; the pin is constraints.txt's
COPY constraints.txt /src/constraints.txt
RUN set -eu; \
    [ -n "$PIP_FIND_LINKS" ] || unset PIP_FIND_LINKS; \
    v=$(sed -n 's/^torch==//p' /src/constraints.txt); \
    pip=/opt/genlab/bin/pip; \
    case "$VARIANT" in \
      cpu) \
        if [ -n "$PIP_FIND_LINKS" ]; then "$pip" install "torch==$v+cpu"; \
        elif [ -n "$TORCH_INDEX_URL" ]; then \
          "$pip" install --index-url "$TORCH_INDEX_URL" "torch==$v+cpu"; \
        else \
          echo "genlab: no CPU wheel source (PIP_FIND_LINKS, TORCH_INDEX_URL): torch from the package index"; \
          "$pip" install "torch==$v"; \
        fi ;; \
      cuda) env -u PIP_FIND_LINKS "$pip" install "torch==$v" ;; \
      *) echo "VARIANT must be cpu or cuda, not '$VARIANT'" >&2; exit 2 ;; \
    esac
# only what the install needs; the package is installed (not editable), so /src stays here
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN [ -n "$PIP_FIND_LINKS" ] || unset PIP_FIND_LINKS; \
    /opt/genlab/bin/pip install -c /src/constraints.txt "/src[webui,sd]" \
    && /opt/genlab/bin/python -c "import torch; print('genlab: PyTorch', torch.__version__, \
'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU build')"
# lean: the packages' own test suites (about 250 MB, PyTorch's C++ test programs among them)
# are never imported; the .pyc files stay (without them the page starts 20 s later)
RUN find /opt/genlab/lib -type d -name tests -prune -exec rm -rf {} + \
    && rm -rf /opt/genlab/lib/python3*/site-packages/torch/test

FROM ${BASE}
ARG VARIANT=cpu
LABEL org.opencontainers.image.title="genlab" \
      org.opencontainers.image.description="genlab webui --api: the page and /sdapi/v1 on port 7860" \
      org.opencontainers.image.licenses="MIT" \
      genlab.variant="${VARIANT}"
COPY --from=build /opt/genlab /opt/genlab
# a non-root user owning the data folders (uid 1000, the usual first user on a Linux host,
# so bind-mounted ./data folders are writable by both)
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin genlab \
    && mkdir -p /data/models /data/runs/loras /data/outputs \
    && chown -R genlab:genlab /data
ENV PATH=/opt/genlab/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    MPLBACKEND=Agg
USER genlab
WORKDIR /data
# models: latent-diffusion runs, Stable Diffusion folders and .safetensors checkpoints;
# runs: trained runs for the model lab; runs/loras: LoRA runs, where the Train tab writes
# them and where genlab looks for <lora:NAME:W> (compose mounts ./data/loras there);
# outputs: the images drawn, the only folder the page serves
VOLUME ["/data/models", "/data/runs", "/data/runs/loras", "/data/outputs"]
EXPOSE 7860
# Alive when the server answers HTTP at all: 200 from /sdapi/v1/options, 401 behind
# --api-auth, 404 without --api; no curl needed. Another --port: set GENLAB_PORT too.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import os, sys, urllib.request, urllib.error\nurl = 'http://127.0.0.1:%s/sdapi/v1/options' % os.environ.get('GENLAB_PORT', '7860')\ntry:\n    urllib.request.urlopen(url, timeout=8)\nexcept urllib.error.HTTPError as e:\n    sys.exit(e.code >= 500)\nexcept Exception:\n    sys.exit(1)"]
# --listen: 0.0.0.0 inside the container. The page answers only to localhost and IP
# addresses in the Host header; behind a name (box.lan, a reverse proxy) add
# --allowed-hosts box.lan (and --api-auth / --gradio-auth before exposing it).
CMD ["genlab", "webui", "--listen", "--api", "--port", "7860", \
     "--models-dir", "/data/models", "--runs-dir", "/data/runs", "--out", "/data/outputs"]
