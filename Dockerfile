# Build and run Rollcall against an external PostgreSQL (see docker-compose.yml).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/rollcall --create-home rollcall
COPY --from=build /src/target/release/rollcall /usr/local/bin/rollcall
COPY --from=build /src/static /usr/share/rollcall/static
WORKDIR /usr/share/rollcall
USER rollcall
ENV ROLLCALL_BIND=0.0.0.0:8080 ROLLCALL_DATA_DIR=/var/lib/rollcall
EXPOSE 8080
CMD ["rollcall", "serve"]
