# syntax=docker/dockerfile:1
#
# The `convo` binary in a slim runtime image. cargo-chef splits the build so the dependency
# layer (the slow part: the Temporal SDK, tonic, prost) is cached until Cargo.toml/Cargo.lock
# change. No protoc is needed: protobuf code is generated with vendored protox.
#
#   docker build -t convo .
#   docker run --rm -p 7233:7233 convo            # = convo devserver --ip 0.0.0.0

# Keep in step with rust-toolchain.toml. Builder and runtime share a Debian release so the
# binary's glibc requirement is met.
ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
RUN cargo install cargo-chef --locked
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin convo

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin convo
COPY --from=builder /app/target/release/convo /usr/local/bin/convo
USER convo
# The devserver's gRPC port (WorkflowService + TestService), the HTTP and gRPC APIs.
EXPOSE 7233 8080 50051
ENTRYPOINT ["convo"]
CMD ["devserver", "--ip", "0.0.0.0"]
