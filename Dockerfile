# failover-bot container: a static binary on distroless, running as a non-root user.
#   docker build --build-arg VERSION=$(git describe --tags --always) -t failover-bot .
#   docker run -v failover-data:/data --env-file failover-bot.env -p 8080:8080 --stop-timeout 40 failover-bot
# podman and buildah build OCI images by default, and an OCI image has no HEALTHCHECK: build
# with --format docker. --stop-timeout exceeds SHUTDOWN_TIMEOUT (30s by default; docker stop
# waits only 10s before SIGKILL). CI builds this file and runs the image: .ci/image.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so editing the sources does not invalidate the module download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: a static binary that needs no libc in the runtime image.
# -trimpath: no build-machine paths in the binary; -s -w: no symbol or debug tables.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/failover-bot ./cmd/bot \
    && mkdir -p /out/data

# distroless/static: CA certificates, tzdata and /etc/passwd with the nonroot user
# (65532), and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/failover-bot /failover-bot
# The volume's mount point must belong to the runtime user, or the store cannot be created.
COPY --from=build --chown=65532:65532 /out/data /data
ENV DB_PATH=/data/failover-bot.db
VOLUME ["/data"]
USER 65532:65532
EXPOSE 8080
# The image has no curl: the binary itself asks its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/failover-bot", "healthcheck"]
ENTRYPOINT ["/failover-bot"]
