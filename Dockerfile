# syntax=docker/dockerfile:1
# edgevitals: a static Go binary on Debian slim. Two images from one file:
#
#   docker build --target full  -t edgevitals:full  .   # the default (last stage): with
#                                                        # Chromium for the lab sampler
#   docker build --target proxy -t edgevitals:proxy .   # proxy-only nodes: no Chromium,
#                                                        # about 300 MB smaller; leave
#                                                        # [[vitals.page]] out of their config
#
# Labels: docker build --build-arg VERSION=1.4.0 --build-arg REVISION=$(git rev-parse HEAD) \
#           --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) ...
#
# Run:
#   docker run -p 8080:8080 -p 127.0.0.1:9145:9145 --shm-size=1g \
#     -v $PWD/edgevitals.toml:/etc/edgevitals/edgevitals.toml:ro -v edgevitals:/var/lib/edgevitals \
#     edgevitals:full
#
# Chromium and shared memory: Docker gives a container 64 MB of /dev/shm, and Chromium
# crashes tabs when that fills. edgevitals starts Chromium with --disable-dev-shm-usage
# (chromedp's default), which moves that shared memory to $TMPDIR (/tmp): so /tmp must be
# writable (with --read-only, add --tmpfs /tmp:size=1g), and --shm-size=1g (or a /dev/shm
# mount) is what keeps Chromium working if that flag is ever turned off. The proxy image
# needs neither.
#
# The admin listener (server.admin_listen, default 127.0.0.1:9145) is what HEALTHCHECK asks,
# from inside the container. To publish it, bind it to 0.0.0.0:9145 in the config, which
# needs server.admin_token (or EDGEVITALS_ADMIN_TOKEN); on another port, set
# EDGEVITALS_ADMIN=http://127.0.0.1:PORT for the health check.

FROM golang:1.26-trixie AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/edgevitals ./cmd/edgevitals

# runtime: what both images share. No ARG here, so a new VERSION does not rebuild the
# Chromium layer of the full image.
FROM debian:trixie-slim AS runtime
# ca-certificates for https origins; a system user without a login shell, UID 10001.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/edgevitals --create-home \
      --shell /usr/sbin/nologin edgevitals \
 && mkdir -p /etc/edgevitals
LABEL org.opencontainers.image.title="edgevitals" \
      org.opencontainers.image.description="HTTP edge cache for WordPress and Drupal that counts hit ratio per site, measures Core Web Vitals and reports what each release changed" \
      org.opencontainers.image.source="https://github.com/edgevitals/edgevitals" \
      org.opencontainers.image.url="https://github.com/edgevitals/edgevitals" \
      org.opencontainers.image.documentation="https://github.com/edgevitals/edgevitals#operations" \
      org.opencontainers.image.base.name="docker.io/library/debian:trixie-slim"
USER 10001:10001
WORKDIR /var/lib/edgevitals
VOLUME ["/var/lib/edgevitals"]
# 8080: site traffic; 9145: admin (metrics, health, API).
EXPOSE 8080 9145
# Ready = /readyz answers 200 (edgevitals health exits 0). The start period covers the
# store opening and the first origin health check; -timeout keeps one check under
# HEALTHCHECK's own --timeout.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/edgevitals", "health", "-timeout", "3s"]
# SIGTERM: /readyz turns 503, the proxy drains (server.shutdown_timeout), then exit 0.
# SIGHUP reloads the config: docker kill -s HUP CONTAINER.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/edgevitals"]
CMD ["serve", "-config", "/etc/edgevitals/edgevitals.toml"]

# proxy: the cache, metrics, purge and release APIs, field data; no lab sampler.
FROM runtime AS proxy
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.ref.name="proxy"
COPY --from=build /out/edgevitals /usr/local/bin/edgevitals

# full (default): the same plus Debian's Chromium, driven headless by the lab sampler, and
# fonts so pages lay out as they do for visitors.
FROM runtime AS full
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-liberation fonts-noto-core \
 && rm -rf /var/lib/apt/lists/*
USER 10001:10001
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.ref.name="full"
COPY --from=build /out/edgevitals /usr/local/bin/edgevitals
