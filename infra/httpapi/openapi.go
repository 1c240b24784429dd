package httpapi

import _ "embed"

// OpenAPIDocument is the OpenAPI 3 description of every endpoint, served at
// /openapi.yaml. A test checks that it names every route the server has.
//
//go:embed openapi.yaml
var OpenAPIDocument []byte
