# syntax=docker/dockerfile:1
# The Sendhooks engine.
#
#   docker build -t sendhooks .
#   docker run -v "$PWD/config.json:/root/config.json:ro" sendhooks
#
# It reads /root/config.json, where the older sendhooks image read it, and
# SENDHOOKS_* environment variables (README, Configuration). Enqueue a job
# from inside the container with: /sendhooks send -url URL -data JSON

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a change in the sources does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/sendhooks/sendhooks.Version=${VERSION}" \
    -o /out/sendhooks ./cmd/sendhooks

# Alpine rather than distroless: the engine runs as a non-root user but must
# still read /root/config.json, and a base image's /root is mode 0700, which
# only root may enter. Here a RUN step opens /root (0755: enter and list, no
# writing) so the old mount point keeps working without running as root; the
# mounted file itself must be readable by uid 10001 (mode 0644 is).
# ca-certificates: for https receivers and Redis over TLS. Busybox's wget
# serves the compose health check against /readyz.
FROM alpine:3.22
RUN apk add --no-cache ca-certificates \
    && adduser -D -H -u 10001 -s /sbin/nologin sendhooks \
    && chmod 0755 /root
COPY --from=build /out/sendhooks /sendhooks
USER 10001:10001
# Only when metricsAddress (SENDHOOKS_METRICS_ADDRESS) is set to :9090.
EXPOSE 9090
CMD ["/sendhooks"]
