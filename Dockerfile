# The ecomflow image: the `ecomflow` binary, the shipped pipelines and migrations, run as a
# non-root user in /data (a volume: SQLite files, dead letters, checkpoints).
#
#   docker build -t ecomflow .
#   docker run --rm -v ecomflow-data:/data -p 8640:8640 ecomflow run /pipelines/ecommerce.toml
#
# The binary is compiled in the `build` stage and copied into the last stage, the image.
# `--target prebuilt` makes the same image around `target/image/ecomflow` from the build
# context instead (a Linux x86-64 binary built against Debian bookworm's glibc): the test
# suite builds this very file that way, with the binary it has already compiled, since it
# cannot pull the Rust image. Both differ only in where that one file comes from.

ARG DEBIAN_RELEASE=bookworm
ARG RUST_VERSION=1.95

# ---- build: compile ecomflow with the Rust toolchain --------------------------------------
FROM docker.io/library/rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
# librdkafka is compiled from source by rdkafka-sys (make, a C/C++ compiler, perl).
RUN apt-get update \
 && apt-get install -y --no-install-recommends make g++ perl pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ecomflow \
 && objcopy --strip-debug target/release/ecomflow /ecomflow

# ---- runtime: the image without its binary ------------------------------------------------
FROM docker.io/library/debian:${DEBIAN_RELEASE}-slim AS runtime
# curl answers the healthcheck (GET /ready); zlib is librdkafka's one shared library.
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update \
 && apt-get install -y --no-install-recommends curl zlib1g \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin ecomflow \
 && mkdir -p /data \
 && chown ecomflow:ecomflow /data
# A pipeline's files are found relative to it (`../migrations`, the index template in
# `../elasticsearch`); everything it writes (ecomflow.db, dead-letter.jsonl, .ecomflow-state)
# lands in the working directory. Mount your own pipelines over /pipelines.
COPY pipelines/ /pipelines/
COPY migrations/ /migrations/
COPY elasticsearch/ /elasticsearch/
USER ecomflow
WORKDIR /data
VOLUME ["/data"]
# The run's HTTP server: /health, /ready, /metrics, the dashboard and the tap. Bound to every
# interface inside the container (the flagship takes `[http] address` from
# ECOMFLOW_HTTP_ADDRESS; write the same in yours): publish it, and set ECOMFLOW_HTTP_TOKEN to guard the dashboard's
# data and the tap.
ENV ECOMFLOW_HTTP_ADDRESS=0.0.0.0
EXPOSE 8640
# SIGTERM (docker stop) drains: sources stop, what was read is written, a last checkpoint is
# taken (with a [checkpoint] table), exit 0. Give it time: docker stop --time 30.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD curl -fsS "http://127.0.0.1:8640/ready" >/dev/null || exit 1
ENTRYPOINT ["ecomflow"]
CMD ["run", "/pipelines/ecommerce.toml"]

# ---- prebuilt: the image around a binary handed in through the build context ---------------
FROM runtime AS prebuilt
COPY target/image/ecomflow /usr/local/bin/ecomflow

# ---- the image: around the binary compiled above --------------------------------------------
FROM runtime
COPY --from=build /ecomflow /usr/local/bin/ecomflow
