# The cifaas `serve` binary in a small image, for OpenFaaS (the default
# command) or for server mode (pass other arguments). Build it from the
# repository root:
#
#   docker build -t cifaas-serve:0.1.0 .
#   docker build --build-arg CHECKPOINT=cifar10.ckpt -t cifaas-serve:0.1.0 .
#
# CHECKPOINT names a checkpoint inside the build context, which is copied
# to /opt/cifaas/model.ckpt. Without it the repository's model,
# models/cifar10.ckpt, is copied there, the same model that `serve` has
# built in. The bind mount that copies it needs BuildKit, the default
# builder since Docker 23.

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:12-slim

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# .cargo/config.toml sets the CPU baseline (x86-64-v3), so the binary in
# the image matches a local release build and needs a CPU with AVX2 and FMA.
COPY Cargo.toml Cargo.lock ./
COPY .cargo/config.toml .cargo/config.toml
COPY kernels kernels
COPY data data
COPY model model
COPY serve serve
COPY benches benches
COPY models models
RUN cargo build --release --locked -p cifaas-serve --bin serve \
    && install -D -m 0755 target/release/serve /out/serve

ARG CHECKPOINT=""
RUN --mount=type=bind,target=/context \
    mkdir -p /out/cifaas \
    && if [ -n "$CHECKPOINT" ]; then \
        install -m 0644 "/context/$CHECKPOINT" /out/cifaas/model.ckpt; \
    else \
        install -m 0644 models/cifar10.ckpt /out/cifaas/model.ckpt; \
    fi

FROM ${RUNTIME_IMAGE}
# A numeric user, so that Kubernetes' runAsNonRoot can check it. The image
# keeps Debian's coreutils because OpenFaaS probes a function with
# `cat /tmp/.lock` when its HTTP probes are turned off.
RUN groupadd --system --gid 10001 cifaas \
    && useradd --system --uid 10001 --gid cifaas --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin cifaas
COPY --from=builder /out/serve /usr/local/bin/serve
COPY --from=builder /out/cifaas/ /opt/cifaas/
USER 10001:10001
WORKDIR /tmp

# serve reads `port` in function mode and `write_timeout` (the drain time
# at shutdown) in both modes.
ENV port=8080 \
    write_timeout=10s
EXPOSE 8080

# Exits 0 while the function-mode lock file exists. Server mode writes no
# lock file, so run a server-mode container with --no-healthcheck.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/serve", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/serve"]
CMD ["--mode", "function", "--threads", "2", "--model", "/opt/cifaas/model.ckpt"]
