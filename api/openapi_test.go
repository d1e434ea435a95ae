package api

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

type openAPIDoc struct {
	OpenAPI    string                                 `json:"openapi"`
	Paths      map[string]map[string]openAPIOp        `json:"paths"`
	Components struct{ Schemas map[string]schemaDoc } `json:"components"`
}

type openAPIOp struct {
	RequestBody *struct {
		Content map[string]struct {
			Schema struct {
				Ref string `json:"$ref"`
			} `json:"schema"`
			Example map[string]any `json:"example"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]any `json:"responses"`
}

type schemaDoc struct {
	Required []string `json:"required"`
}

// TestOpenAPIMatchesRouter: every documented path and method is routed to
// the pattern it documents, every route is documented, and each required
// request field, when missing from the documented example, gets a 400
// naming it.
func TestOpenAPIMatchesRouter(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Fatalf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	brokers := newBroker(t)
	in := startInstance(t, brokers)

	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			pattern := strings.ToUpper(method) + " " + path
			documented[pattern] = true
			if len(op.Responses) == 0 {
				t.Errorf("%s: no responses documented", pattern)
			}
			mux := http.NewServeMux()
			in.h.Register(mux)
			req, _ := http.NewRequest(strings.ToUpper(method), strings.NewReplacer("{drop_id}", "d-x", "{quest_id}", "q-x").Replace(path), nil)
			if _, got := mux.Handler(req); got != pattern {
				t.Errorf("documented %s is routed to %q", pattern, got)
			}
		}
	}
	routes := map[string]bool{}
	for _, r := range in.h.Routes() {
		routes[r] = true
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for p := range documented {
		if !routes[p] {
			t.Errorf("openapi.json documents %s, which is not routed", p)
		}
	}

	checked := 0
	for _, path := range slices.Sorted(maps.Keys(doc.Paths)) {
		op, ok := doc.Paths[path]["post"]
		if !ok || op.RequestBody == nil {
			continue
		}
		c := op.RequestBody.Content["application/json"]
		schema := doc.Components.Schemas[strings.TrimPrefix(c.Schema.Ref, "#/components/schemas/")]
		url := strings.NewReplacer("{drop_id}", "d-x", "{quest_id}", "q-x").Replace(path)
		for _, field := range schema.Required {
			if _, ok := c.Example[field]; !ok {
				t.Errorf("POST %s: the example lacks required field %s", path, field)
				continue
			}
			body := maps.Clone(c.Example)
			delete(body, field)
			a := call(t, in.srv.URL, "POST", url, serverKey, body)
			if a.code != 400 || !strings.Contains(a.str("error"), field) {
				t.Errorf("POST %s without %s: %d %v", path, field, a.code, a.body)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("only %d required fields checked", checked)
	}
}
