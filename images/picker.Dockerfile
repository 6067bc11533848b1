# headroom-picker for Docker and Buildah, with the same files as make images
# (docs/images.md). From the repository root:
#
#   docker buildx build -f images/picker.Dockerfile --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     --build-arg CREATED=$(date -u -d @$(git log -1 --format=%ct) +%Y-%m-%dT%H:%M:%SZ) \
#     -t ghcr.io/headroom-dev/headroom-picker:0.1.0 .
#
# The build stage runs hack/imagebuild rootfs: the same code as make
# images compiles the command and assembles the base from the Debian
# packages pinned in images/debian.lock (downloaded and checked by SHA-256).
# The image starts from scratch and copies in its two layers. The only
# base image is the Go toolchain, pinned by digest (the CI checks that
# every FROM is).

FROM golang:1.26-bookworm@sha256:b305420a68d0f229d91eb3b3ed9e519fcf2cf5461da4bef997bf927e8c0bfd2b AS build
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE_DATE_EPOCH=0
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go run ./hack/imagebuild rootfs --images=headroom-picker --platforms=linux/${TARGETARCH} \
      --version=${VERSION} --revision=${REVISION} --source-date-epoch=${SOURCE_DATE_EPOCH} \
      --tag=unused --out=/out --cache=/tmp/debs

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
COPY --from=build /out/headroom-picker/base/ /
COPY --from=build /out/headroom-picker/app/ /
USER 65532:65532
WORKDIR /
ENV PATH=/usr/bin
EXPOSE 9002 9003 9004 9090
ENTRYPOINT ["/usr/bin/headroom-picker"]
LABEL org.opencontainers.image.title="headroom-picker" \
      org.opencontainers.image.description="headroom-picker: a Gateway API Inference Extension endpoint picker that routes by GPU headroom" \
      org.opencontainers.image.source="https://github.com/headroom-dev/headroom" \
      org.opencontainers.image.url="https://github.com/headroom-dev/headroom" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
