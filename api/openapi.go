package api

import (
	_ "embed"
	"net/http"
)

// OpenAPIPattern is where the OpenAPI document is served (no key needed).
const OpenAPIPattern = "GET /v1/openapi.json"

// OpenAPI is the API's OpenAPI 3.0 document (openapi.json).
//
//go:embed openapi.json
var OpenAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(OpenAPI)
}
