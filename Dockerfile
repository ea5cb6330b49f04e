# syntax=docker/dockerfile:1
# The instbench agent and its toolchain, for `instbench run --runtime container --image URI`.
# Multi-arch (linux/amd64, linux/arm64):
#   docker buildx build --platform linux/amd64,linux/arm64 -t URI --push .
# The kernels are still compiled at run time on the instance (-march=native / -mcpu=native):
# the image ships the compiler, not binaries, so results stay comparable with the zipapp
# runtime. The container writes /work/result.json; the user data uploads it as before.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- build the zipapp from the package sources (stdlib only: no dependencies needed)
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
ENV PYTHONPATH=/src/src
RUN python -m instbench.agentpkg /out/agent.pyz

# --- runtime: python3 + gcc + libgomp, non-root
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="instbench-agent" \
      org.opencontainers.image.description="instbench benchmark agent with its compiler toolchain" \
      org.opencontainers.image.licenses="Apache-2.0"
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 instbench \
    && useradd --system --uid 10001 --gid instbench --home-dir /home/instbench \
       --create-home --shell /usr/sbin/nologin instbench \
    && mkdir -p /opt/instbench /work \
    && chown instbench:instbench /work
COPY --from=build /out/agent.pyz /opt/instbench/agent.pyz
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["python3", "-I", "/opt/instbench/agent.pyz"]
CMD ["--help"]
