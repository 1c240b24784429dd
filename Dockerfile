# ticketd and ticketctl. confluent-kafka-go links librdkafka with cgo, so
# the build stage needs a C toolchain; the runtime image only glibc.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/ticketd ./cmd/ticketd \
 && CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/ticketctl ./cmd/ticketctl

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates wget \
 && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/ticketd ticketd \
 && mkdir -p /var/lib/ticketd && chown ticketd /var/lib/ticketd
COPY --from=build /out/ticketd /out/ticketctl /usr/local/bin/
USER ticketd
WORKDIR /var/lib/ticketd
ENV TICKETD_DATA_DIR=/var/lib/ticketd TICKETD_HTTP_ADDR=:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD wget -qO- http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/ticketd"]
