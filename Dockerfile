# syntax=docker/dockerfile:1
# edgevitals: a static Go binary on Debian slim, with Debian's Chromium for
# the lab Core Web Vitals sampler. Build: docker build -t edgevitals .
# Run:   docker run -p 8080:8080 -v $PWD/edgevitals.toml:/etc/edgevitals/edgevitals.toml:ro edgevitals

FROM golang:1.26-trixie AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/edgevitals ./cmd/edgevitals

FROM debian:trixie-slim
# chromium: the sampler drives it headless; fonts so pages lay out as for visitors;
# ca-certificates for https origins.
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium ca-certificates fonts-liberation fonts-noto-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/edgevitals --create-home edgevitals \
 && mkdir -p /etc/edgevitals
COPY --from=build /out/edgevitals /usr/local/bin/edgevitals
USER 10001:10001
WORKDIR /var/lib/edgevitals
VOLUME ["/var/lib/edgevitals"]
# 8080: site traffic; 9145: admin (metrics, API). Bind admin_listen to 0.0.0.0:9145
# inside the container only together with server.admin_token.
EXPOSE 8080 9145
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/edgevitals"]
CMD ["serve", "-config", "/etc/edgevitals/edgevitals.toml"]
