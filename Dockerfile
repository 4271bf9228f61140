# Build a static mux binary, then ship it alone on a distroless base as a
# non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mux ./cmd/mux

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mux /usr/local/bin/mux
USER nonroot:nonroot
EXPOSE 6432 9127
# The image has no shell or curl: mux probes its own HTTP endpoint.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/mux", "-probe", "http://127.0.0.1:9127/healthz"]
ENTRYPOINT ["/usr/local/bin/mux"]
CMD ["-config", "/etc/mux/mux.toml"]
