package specdiff

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// baseSpec is a small spec in the style of LINE's upstream file; test cases
// derive ours and upstream from it by exact text edits.
const baseSpec = `openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /v2/oauth/accessToken:
    post:
      operationId: issueChannelToken
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              properties:
                grant_type: {type: string}
                client_id: {type: string}
              required: [grant_type, client_id]
      responses:
        "200":
          description: OK
          content:
            application/json:
              schema: {$ref: "#/components/schemas/TokenResponse"}
  /v2/oauth/verify:
    get:
      operationId: verifyChannelToken
      parameters:
        - {name: access_token, in: query, required: true, schema: {type: string}}
      responses:
        "200": {description: OK}
components:
  schemas:
    TokenResponse:
      type: object
      required: [access_token, expires_in]
      properties:
        access_token: {type: string}
        expires_in: {type: integer, format: int32}
    ErrorResponse:
      type: object
      properties:
        error: {type: string}
`

// edit returns s with old replaced by new; old must occur exactly once.
func edit(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("edit: %q occurs %d times, want 1", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// writeSpec writes a spec into dir and returns its path.
func writeSpec(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// compareTexts compares two inline specs through files and returns the keys.
func compareTexts(t *testing.T, upstream, ours string) (*Result, []string) {
	t.Helper()
	dir := t.TempDir()
	result, err := CompareFiles(writeSpec(t, dir, "ours.yml", ours), writeSpec(t, dir, "upstream.yml", upstream))
	if err != nil {
		t.Fatalf("CompareFiles: %v", err)
	}
	keys := make([]string, len(result.Differences))
	for i, d := range result.Differences {
		keys[i] = d.Key
	}
	return result, keys
}

func assertKeys(t *testing.T, got, want []string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("differences:\n  got  %q\n  want %q", got, want)
	}
}

const revokeOperation = `  /v2/oauth/revoke:
    post:
      operationId: revokeChannelToken
      responses:
        "200": {description: OK}
`

func TestCompareDetectsEachKindOfDifference(t *testing.T) {
	type edits func(t *testing.T, s string) string
	same := func(_ *testing.T, s string) string { return s }
	replace := func(old, new string) edits {
		return func(t *testing.T, s string) string { return edit(t, s, old, new) }
	}
	tests := []struct {
		name           string
		upstream, ours edits
		want           []string
	}{
		{"identical specs", same, same, nil},
		{
			"new upstream operation",
			replace("  /v2/oauth/verify:\n", revokeOperation+"  /v2/oauth/verify:\n"), same,
			[]string{"operation revokeChannelToken: only in upstream"},
		},
		{
			"operation removed upstream",
			same, replace("  /v2/oauth/verify:\n", revokeOperation+"  /v2/oauth/verify:\n"),
			[]string{"operation revokeChannelToken: only in ours"},
		},
		{
			"method change",
			same, replace("    get:\n      operationId: verifyChannelToken", "    post:\n      operationId: verifyChannelToken"),
			[]string{"operation verifyChannelToken: method GET -> POST"},
		},
		{
			"path change",
			same, replace("/v2/oauth/verify:", "/v3/oauth/verify:"),
			[]string{"operation verifyChannelToken: path /v2/oauth/verify -> /v3/oauth/verify"},
		},
		{
			"renamed parameter",
			same, replace("{name: access_token, in: query", "{name: token, in: query"),
			[]string{
				"operation verifyChannelToken: parameter query access_token: only in upstream",
				"operation verifyChannelToken: parameter query token: only in ours",
			},
		},
		{
			"parameter location change",
			same, replace("{name: access_token, in: query", "{name: access_token, in: header"),
			[]string{"operation verifyChannelToken: parameter access_token: location query -> header"},
		},
		{
			"parameter required-ness change",
			same, replace("in: query, required: true", "in: query, required: false"),
			[]string{"operation verifyChannelToken: parameter query access_token: required -> optional"},
		},
		{
			"parameter type and format change",
			same, replace("required: true, schema: {type: string}}", "required: true, schema: {type: integer, format: int64}}"),
			[]string{
				"operation verifyChannelToken: parameter query access_token: format (none) -> int64",
				"operation verifyChannelToken: parameter query access_token: type string -> integer",
			},
		},
		{
			"path-level parameter is the operation's",
			same, func(t *testing.T, s string) string {
				const param = "{name: access_token, in: query, required: true, schema: {type: string}}\n"
				s = edit(t, s, "      parameters:\n        - "+param, "")
				return edit(t, s, "  /v2/oauth/verify:\n", "  /v2/oauth/verify:\n    parameters:\n      - "+param)
			},
			nil,
		},
		{
			"request field added upstream",
			replace("                client_id: {type: string}\n", "                client_id: {type: string}\n                client_secret: {type: string}\n"), same,
			[]string{"operation issueChannelToken: request body field client_secret: only in upstream"},
		},
		{
			"request field removed upstream",
			replace("                client_id: {type: string}\n", ""), same,
			// client_id stays in upstream's required list, without a property.
			[]string{"operation issueChannelToken: request body field client_id: type (none) -> string"},
		},
		{
			"request field only in ours",
			same, replace("                client_id: {type: string}\n", "                client_id: {type: string}\n                scope: {type: string}\n"),
			[]string{"operation issueChannelToken: request body field scope: only in ours"},
		},
		{
			"request field required-ness change",
			same, replace("required: [grant_type, client_id]", "required: [grant_type]"),
			[]string{"operation issueChannelToken: request body field client_id: required -> optional"},
		},
		{
			"request body required-ness change",
			same, replace("      requestBody:\n        required: true", "      requestBody:\n        required: false"),
			[]string{"operation issueChannelToken: request body: required -> optional"},
		},
		{
			"request content type change",
			same, replace("application/x-www-form-urlencoded:", "application/json:"),
			[]string{
				"operation issueChannelToken: request body content type application/json: only in ours",
				"operation issueChannelToken: request body content type application/x-www-form-urlencoded: only in upstream",
			},
		},
		{
			"response field format change",
			same, replace("format: int32", "format: int64"),
			[]string{"operation issueChannelToken: response 200 field expires_in: format int32 -> int64"},
		},
		{
			"response field type and required-ness change",
			same, func(t *testing.T, s string) string {
				s = edit(t, s, "access_token: {type: string}\n        expires_in", "access_token: {type: integer}\n        expires_in")
				return edit(t, s, "required: [access_token, expires_in]", "required: [access_token]")
			},
			[]string{
				"operation issueChannelToken: response 200 field access_token: type string -> integer",
				"operation issueChannelToken: response 200 field expires_in: required -> optional",
			},
		},
		{
			"nested array field",
			replace("        expires_in: {type: integer, format: int32}\n", "        expires_in: {type: integer, format: int32}\n        kids: {type: array, items: {type: object, properties: {id: {type: string}}}}\n"),
			replace("        expires_in: {type: integer, format: int32}\n", "        expires_in: {type: integer, format: int32}\n        kids: {type: array, items: {type: object, properties: {id: {type: integer}}}}\n"),
			[]string{"operation issueChannelToken: response 200 field kids[].id: type string -> integer"},
		},
		{
			"error response only in ours",
			same, replace("        \"200\": {description: OK}\n", "        \"200\": {description: OK}\n        \"429\":\n          description: Too many\n          content:\n            application/json:\n              schema: {$ref: \"#/components/schemas/ErrorResponse\"}\n"),
			[]string{"operation verifyChannelToken: response 429: only in ours"},
		},
		{
			"error response body field",
			replace("        \"200\": {description: OK}\n", "        \"200\": {description: OK}\n        \"400\":\n          description: Bad\n          content:\n            application/json:\n              schema: {$ref: \"#/components/schemas/ErrorResponse\"}\n"),
			func(t *testing.T, s string) string {
				s = edit(t, s, "        \"200\": {description: OK}\n", "        \"200\": {description: OK}\n        \"400\":\n          description: Bad\n          content:\n            application/json:\n              schema: {$ref: \"#/components/schemas/ErrorResponse\"}\n")
				return edit(t, s, "        error: {type: string}\n", "        error: {type: string}\n        message: {type: string}\n")
			},
			[]string{
				"operation verifyChannelToken: response 400 field message: only in ours",
				"schema ErrorResponse field message: only in ours",
			},
		},
		{
			"ErrorResponse schema field removed upstream",
			replace("        error: {type: string}\n", "        error_description: {type: string}\n"), same,
			[]string{
				"schema ErrorResponse field error: only in ours",
				"schema ErrorResponse field error_description: only in upstream",
			},
		},
		{
			"ErrorResponse schema missing upstream",
			replace("    ErrorResponse:\n      type: object\n      properties:\n        error: {type: string}\n", ""), same,
			[]string{"schema ErrorResponse: only in ours"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result, got := compareTexts(t, tt.upstream(t, baseSpec), tt.ours(t, baseSpec))
			assertKeys(t, got, tt.want)
			if result.Operations < 1 {
				t.Errorf("Operations = %d, want at least 1 compared", result.Operations)
			}
		})
	}
}

func TestCompareCountsOperationsInBoth(t *testing.T) {
	result, _ := compareTexts(t, edit(t, baseSpec, "  /v2/oauth/verify:\n", revokeOperation+"  /v2/oauth/verify:\n"), baseSpec)
	const wantCompared = 2 // issueChannelToken and verifyChannelToken; revokeChannelToken is upstream's only
	if result.Operations != wantCompared {
		t.Errorf("Operations = %d, want %d", result.Operations, wantCompared)
	}
}

// statelessSpec has one operation whose form body is the schema given.
func statelessSpec(body string) string {
	return `openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /oauth2/v3/token:
    post:
      operationId: issueStatelessChannelToken
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
` + body + `
      responses:
        "200": {description: OK}
components:
  schemas:
    ByJWT:
      type: object
      required: [grant_type, client_assertion]
      properties:
        grant_type: {type: string}
        client_assertion: {type: string}
    BySecret:
      type: object
      required: [grant_type, client_id, client_secret]
      properties:
        grant_type: {type: string}
        client_id: {type: string}
        client_secret: {type: string}
`
}

const (
	upstreamOneOf = `              oneOf:
                - $ref: "#/components/schemas/ByJWT"
                - $ref: "#/components/schemas/BySecret"`
	flatBody = `              type: object
              required: [grant_type]
              properties:
                grant_type: {type: string}
                client_assertion: {type: string}
                client_id: {type: string}
                client_secret: {type: string}`
)

func TestCompareUnionOfOneOfVariants(t *testing.T) {
	const prefix = "operation issueStatelessChannelToken: request body"
	tests := []struct {
		name           string
		upstream, ours string
		want           []string
	}{
		{
			"oneOf against a flat object",
			upstreamOneOf, flatBody,
			[]string{
				prefix + ": shape oneOf(2) -> object",
				prefix + " field client_assertion: required by some variants -> optional",
				prefix + " field client_id: required by some variants -> optional",
				prefix + " field client_secret: required by some variants -> optional",
			},
		},
		{
			"same oneOf written inline",
			upstreamOneOf,
			`              oneOf:
                - {type: object, required: [grant_type, client_assertion], properties: {grant_type: {type: string}, client_assertion: {type: string}}}
                - {type: object, required: [grant_type, client_id, client_secret], properties: {grant_type: {type: string}, client_id: {type: string}, client_secret: {type: string}}}`,
			nil,
		},
		{
			"field only in one variant upstream",
			`              oneOf:
                - $ref: "#/components/schemas/ByJWT"
                - allOf:
                  - $ref: "#/components/schemas/BySecret"
                  - {type: object, properties: {scope: {type: string}}}`,
			`              oneOf:
                - $ref: "#/components/schemas/ByJWT"
                - $ref: "#/components/schemas/BySecret"`,
			[]string{prefix + " field scope: only in upstream"},
		},
		{
			"variant's required-ness change",
			upstreamOneOf,
			`              oneOf:
                - $ref: "#/components/schemas/ByJWT"
                - {type: object, required: [grant_type, client_id], properties: {grant_type: {type: string}, client_id: {type: string}, client_secret: {type: string}}}`,
			[]string{prefix + " field client_secret: required by some variants -> optional"},
		},
		{
			"anyOf is a different shape",
			upstreamOneOf,
			`              anyOf:
                - $ref: "#/components/schemas/ByJWT"
                - $ref: "#/components/schemas/BySecret"`,
			[]string{prefix + ": shape oneOf(2) -> anyOf(2)"},
		},
		{
			"allOf requires what any part requires",
			`              allOf:
                - $ref: "#/components/schemas/ByJWT"
                - {type: object, properties: {client_id: {type: integer}}}`,
			`              allOf:
                - {type: object, required: [grant_type], properties: {grant_type: {type: string}, client_assertion: {type: string}}}
                - {type: object, required: [client_assertion], properties: {client_id: {type: string}}}`,
			[]string{prefix + " field client_id: type integer -> string"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := compareTexts(t, statelessSpec(tt.upstream), statelessSpec(tt.ours))
			assertKeys(t, got, tt.want)
		})
	}
}

func TestFieldsOfOneOfUnion(t *testing.T) {
	doc, err := Load(writeSpec(t, t.TempDir(), "s.yml", statelessSpec(upstreamOneOf)))
	if err != nil {
		t.Fatal(err)
	}
	body := doc.Paths.Value("/oauth2/v3/token").Post.RequestBody.Value.Content["application/x-www-form-urlencoded"].Schema
	got := fieldsOf(body)
	want := map[string]field{
		"grant_type":       {typ: "string", req: required},
		"client_assertion": {typ: "string", req: conditional},
		"client_id":        {typ: "string", req: conditional},
		"client_secret":    {typ: "string", req: conditional},
	}
	if len(got) != len(want) {
		t.Fatalf("fields = %v, want %v", got, want)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("field %s = %+v, want %+v", name, got[name], w)
		}
	}
}

func TestCompareSelfReferencingSchemaTerminates(t *testing.T) {
	spec := edit(t, baseSpec, "        expires_in: {type: integer, format: int32}\n",
		"        expires_in: {type: integer, format: int32}\n        next: {$ref: \"#/components/schemas/TokenResponse\"}\n        chain: {type: array, items: {$ref: \"#/components/schemas/TokenResponse\"}}\n")
	_, got := compareTexts(t, spec, edit(t, spec, "format: int32", "format: int64"))
	// A schema is not expanded again inside itself: its change shows once, at
	// the top, and next and chain are compared as fields of their own.
	assertKeys(t, got, []string{"operation issueChannelToken: response 200 field expires_in: format int32 -> int64"})
}

func TestCompareRejectsDuplicateOperationID(t *testing.T) {
	dup := edit(t, baseSpec, "operationId: verifyChannelToken", "operationId: issueChannelToken")
	dir := t.TempDir()
	_, err := CompareFiles(writeSpec(t, dir, "ours.yml", baseSpec), writeSpec(t, dir, "upstream.yml", dup))
	if err == nil || !strings.HasPrefix(err.Error(), "specdiff: upstream spec: ") || !strings.Contains(err.Error(), `"issueChannelToken"`) {
		t.Fatalf("err = %v, want a duplicate operationId error for upstream", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "absent.yml"))
		if !IsNotExist(err) || !strings.HasPrefix(err.Error(), "specdiff: ") {
			t.Fatalf("err = %v, want a specdiff not-exist error", err)
		}
	})
	t.Run("not an OpenAPI document", func(t *testing.T) {
		_, err := Load(writeSpec(t, dir, "list.yml", "allow: []\n"))
		if err == nil || !strings.HasPrefix(err.Error(), "specdiff: ") || !strings.Contains(err.Error(), "not an OpenAPI 3 document") {
			t.Fatalf("err = %v, want not-an-OpenAPI-document", err)
		}
	})
	t.Run("external ref refused", func(t *testing.T) {
		writeSpec(t, dir, "other.yml", "Thing: {type: string}\n")
		spec := edit(t, baseSpec, `{$ref: "#/components/schemas/TokenResponse"}`, `{$ref: "other.yml#/Thing"}`)
		_, err := Load(writeSpec(t, dir, "ext.yml", spec))
		if err == nil || !strings.HasPrefix(err.Error(), "specdiff: ") {
			t.Fatalf("err = %v, want the external $ref refused", err)
		}
	})
}

func TestOurSpecEqualsItself(t *testing.T) {
	const ours = "../../api/channel-access-token.yml"
	result, err := CompareFiles(ours, ours)
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Differences) != 0 {
		t.Errorf("differences with itself: %v", result.Differences)
	}
	const wantOperations = 8 // the eight operations of the Channel Access Token API
	if result.Operations != wantOperations {
		t.Errorf("Operations = %d, want %d", result.Operations, wantOperations)
	}
}
