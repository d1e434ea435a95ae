# The questline image: one static binary, every role a subcommand.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/questline ./cmd/questline

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/questline /usr/local/bin/questline
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/questline"]
CMD ["run"]
