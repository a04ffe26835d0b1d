# Build the release binary, then ship it on a slim base.
FROM rust:1.92-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pgcqrs

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 pgcqrs
COPY --from=build /src/target/release/pgcqrs /usr/local/bin/pgcqrs
USER pgcqrs
EXPOSE 8080
ENTRYPOINT ["pgcqrs"]
CMD ["serve"]
