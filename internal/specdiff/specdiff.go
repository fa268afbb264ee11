// Package specdiff compares two OpenAPI 3 descriptions of the same API
// structurally: linetoken's api/channel-access-token.yml ("ours") against
// LINE's upstream channel-access-token.yml ("upstream").
//
// It compares operations (matched by operationId) with their method and path,
// parameters (name, location, required-ness, type, format), request bodies
// (required-ness, content types, shape and fields), responses (status codes,
// content types, shape and fields) and the ErrorResponse component schema.
// Fields are an object's properties by name, nested ones dotted ("a.b", and
// "a[].b" through an array); the fields of a oneOf/anyOf/allOf schema are the
// union of its variants' fields. Descriptions, examples, tags and enums are not
// compared.
//
// Every difference has a stable key, a single line such as
//
//	operation issueChannelToken: response 200 field expires_in: format int32 -> int64
//
// where "A -> B" always reads upstream's value A, our value B. Intentional
// deviations are accepted by a reviewed allow-list, see [AllowList].
package specdiff

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/linetoken/linetoken/internal/upstream"
)

const (
	// CIEnvVar is the environment variable that marks a CI run.
	CIEnvVar = upstream.CIEnvVar

	// errorSchemaName is the component schema compared on its own, because
	// upstream declares it without referring to it from most operations.
	errorSchemaName = "ErrorResponse"

	// Words of difference keys.
	onlyInOurs     = "only in ours"
	onlyInUpstream = "only in upstream"
	changeFormat   = "%s -> %s"
	noneValue      = "(none)"
	requiredWord   = "required"
	optionalWord   = "optional"
	presentValue   = "present"
	absentValue    = "absent"
)

// Difference is one structural difference between our spec and upstream's.
type Difference struct {
	// Key identifies the difference; it is stable from run to run and is what
	// an allow-list entry matches. "A -> B" in it reads upstream -> ours.
	Key string
	// Upstream and Ours are the two sides' values ("int32" and "int64"), or
	// "present" and "absent" for a thing only one side has.
	Upstream, Ours string
}

// String returns the difference's key.
func (d Difference) String() string { return d.Key }

// Result is the outcome of comparing two specs.
type Result struct {
	// Operations is how many operations both specs have, and so were compared
	// in detail.
	Operations int
	// Differences are all differences found, sorted by key, without
	// duplicates.
	Differences []Difference
}

// RunningInCI reports whether the environment marks a CI run (CI=true), where
// the upstream spec must be present.
func RunningInCI() bool { return upstream.RunningInCI() }

// Load reads an OpenAPI 3 document from a local file, see [LoadData].
func Load(path string) (*openapi3.T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("specdiff: load %s: %w", path, err)
	}
	return LoadData(path, data)
}

// LoadData parses an OpenAPI 3 document (YAML or JSON) named name in errors
// (a file or a URL) and resolves its internal $refs. References to other
// documents are refused, so loading never touches the network.
func LoadData(name string, data []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("specdiff: load %s: %w", name, err)
	}
	if doc.OpenAPI == "" || doc.Paths == nil {
		return nil, fmt.Errorf("specdiff: load %s: not an OpenAPI 3 document (no openapi version or no paths)", name)
	}
	return doc, nil
}

// IsNotExist reports whether err says a spec file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// CompareFiles loads our spec and upstream's from local files and compares
// them, see [Compare].
func CompareFiles(oursPath, upstreamPath string) (*Result, error) {
	ours, err := Load(oursPath)
	if err != nil {
		return nil, err
	}
	upstream, err := Load(upstreamPath)
	if err != nil {
		return nil, err
	}
	return Compare(ours, upstream)
}

// Compare compares our spec with upstream's and returns every structural
// difference. It fails only when a spec is ambiguous (an operationId used
// twice).
func Compare(ours, upstream *openapi3.T) (*Result, error) {
	oursOps, err := operations(ours)
	if err != nil {
		return nil, fmt.Errorf("specdiff: our spec: %w", err)
	}
	upstreamOps, err := operations(upstream)
	if err != nil {
		return nil, fmt.Errorf("specdiff: upstream spec: %w", err)
	}
	d := &differ{keys: map[string]Difference{}}
	compared := 0
	for _, id := range unionKeys(upstreamOps, oursOps) {
		u, inUpstream := upstreamOps[id]
		o, inOurs := oursOps[id]
		prefix := "operation " + id
		switch {
		case !inOurs, !inUpstream:
			d.presence(prefix, inUpstream, inOurs)
		default:
			compared++
			compareOperation(d, prefix, u, o)
		}
	}
	compareComponentSchema(d, errorSchemaName, upstream, ours)
	return &Result{Operations: compared, Differences: d.sorted()}, nil
}

// differ collects differences by key.
type differ struct{ keys map[string]Difference }

func (d *differ) add(key, upstream, ours string) {
	d.keys[key] = Difference{Key: key, Upstream: upstream, Ours: ours}
}

// change records "<where>: <what> <upstream> -> <ours>" when the values differ;
// an empty what leaves the word out ("<where>: required -> optional").
func (d *differ) change(where, what, upstream, ours string) {
	if upstream == ours {
		return
	}
	if what != "" {
		what += " "
	}
	upstream, ours = orNone(upstream), orNone(ours)
	d.add(where+": "+what+fmt.Sprintf(changeFormat, upstream, ours), upstream, ours)
}

// presence records "<where>: only in ..." when exactly one side has a thing and
// reports whether both have it.
func (d *differ) presence(where string, inUpstream, inOurs bool) bool {
	switch {
	case inUpstream && !inOurs:
		d.add(where+": "+onlyInUpstream, presentValue, absentValue)
	case inOurs && !inUpstream:
		d.add(where+": "+onlyInOurs, absentValue, presentValue)
	}
	return inUpstream && inOurs
}

func (d *differ) sorted() []Difference {
	keys := slices.Sorted(maps.Keys(d.keys))
	diffs := make([]Difference, len(keys))
	for i, k := range keys {
		diffs[i] = d.keys[k]
	}
	return diffs
}

func orNone(s string) string {
	if s == "" {
		return noneValue
	}
	return s
}

func requiredString(required bool) string {
	if required {
		return requiredWord
	}
	return optionalWord
}

// unionKeys returns the keys of both maps, sorted.
func unionKeys[V any](a, b map[string]V) []string {
	set := make(map[string]struct{}, len(a)+len(b))
	for k := range a {
		set[k] = struct{}{}
	}
	for k := range b {
		set[k] = struct{}{}
	}
	return slices.Sorted(maps.Keys(set))
}

// operation is one operation of a spec, with the path-level parameters merged
// into its own.
type operation struct {
	method, path string
	op           *openapi3.Operation
	params       []*openapi3.Parameter
}

// operations indexes a spec's operations by operationId; one without an
// operationId is indexed by "METHOD path".
func operations(doc *openapi3.T) (map[string]operation, error) {
	ops := map[string]operation{}
	if doc.Paths == nil {
		return ops, nil
	}
	for _, path := range doc.Paths.Keys() {
		item := doc.Paths.Value(path)
		if item == nil {
			continue
		}
		itemOps := item.Operations()
		for _, method := range slices.Sorted(maps.Keys(itemOps)) {
			op := itemOps[method]
			id := op.OperationID
			if id == "" {
				id = method + " " + path
			}
			if prev, dup := ops[id]; dup {
				return nil, fmt.Errorf("operationId %q is used by both %s %s and %s %s", id, prev.method, prev.path, method, path)
			}
			ops[id] = operation{method: method, path: path, op: op, params: mergeParameters(item.Parameters, op.Parameters)}
		}
	}
	return ops, nil
}

// mergeParameters returns the path-level parameters overridden (by name and
// location) by the operation's own.
func mergeParameters(pathLevel, opLevel openapi3.Parameters) []*openapi3.Parameter {
	type id struct{ in, name string }
	var merged []*openapi3.Parameter
	index := map[id]int{}
	for _, refs := range []openapi3.Parameters{pathLevel, opLevel} {
		for _, ref := range refs {
			if ref == nil || ref.Value == nil {
				continue
			}
			p := ref.Value
			k := id{p.In, p.Name}
			if i, ok := index[k]; ok {
				merged[i] = p
				continue
			}
			index[k] = len(merged)
			merged = append(merged, p)
		}
	}
	return merged
}

func compareOperation(d *differ, prefix string, u, o operation) {
	d.change(prefix, "method", u.method, o.method)
	d.change(prefix, "path", u.path, o.path)
	compareParameters(d, prefix, u.params, o.params)
	compareRequestBody(d, prefix+": request body", u.op.RequestBody, o.op.RequestBody)
	compareResponses(d, prefix, u.op.Responses, o.op.Responses)
}

// compareParameters matches parameters by name. A name found once on each side
// in different locations is a location change; otherwise parameters are
// matched by location and name, so a renamed parameter is one only in
// upstream plus one only in ours.
func compareParameters(d *differ, prefix string, upstream, ours []*openapi3.Parameter) {
	byName := func(params []*openapi3.Parameter) map[string][]*openapi3.Parameter {
		m := map[string][]*openapi3.Parameter{}
		for _, p := range params {
			m[p.Name] = append(m[p.Name], p)
		}
		return m
	}
	uByName, oByName := byName(upstream), byName(ours)
	for _, name := range unionKeys(uByName, oByName) {
		us, ourList := uByName[name], oByName[name]
		if len(us) == 1 && len(ourList) == 1 && us[0].In != ourList[0].In {
			where := prefix + ": parameter " + name
			d.change(where, "location", us[0].In, ourList[0].In)
			compareParameter(d, where, us[0], ourList[0])
			continue
		}
		byIn := func(params []*openapi3.Parameter) map[string]*openapi3.Parameter {
			m := map[string]*openapi3.Parameter{}
			for _, p := range params {
				m[p.In] = p
			}
			return m
		}
		uByIn, oByIn := byIn(us), byIn(ourList)
		for _, in := range unionKeys(uByIn, oByIn) {
			where := prefix + ": parameter " + in + " " + name
			u, inUpstream := uByIn[in]
			o, inOurs := oByIn[in]
			if d.presence(where, inUpstream, inOurs) {
				compareParameter(d, where, u, o)
			}
		}
	}
}

func compareParameter(d *differ, where string, u, o *openapi3.Parameter) {
	d.change(where, "", requiredString(u.Required), requiredString(o.Required))
	d.change(where, "type", typeOf(u.Schema, 0), typeOf(o.Schema, 0))
	d.change(where, "format", formatOf(u.Schema), formatOf(o.Schema))
}

func compareRequestBody(d *differ, where string, u, o *openapi3.RequestBodyRef) {
	uBody, oBody := requestBody(u), requestBody(o)
	if !d.presence(where, uBody != nil, oBody != nil) {
		return
	}
	d.change(where, "", requiredString(uBody.Required), requiredString(oBody.Required))
	compareContent(d, where, uBody.Content, oBody.Content)
}

func requestBody(ref *openapi3.RequestBodyRef) *openapi3.RequestBody {
	if ref == nil {
		return nil
	}
	return ref.Value
}

func compareResponses(d *differ, prefix string, u, o *openapi3.Responses) {
	uMap, oMap := responses(u), responses(o)
	for _, status := range unionKeys(uMap, oMap) {
		where := prefix + ": response " + status
		ur, inUpstream := uMap[status]
		or, inOurs := oMap[status]
		if d.presence(where, inUpstream, inOurs) {
			compareContent(d, where, ur.Content, or.Content)
		}
	}
}

func responses(r *openapi3.Responses) map[string]*openapi3.Response {
	m := map[string]*openapi3.Response{}
	if r == nil {
		return m
	}
	for status, ref := range r.Map() {
		if ref != nil && ref.Value != nil {
			m[status] = ref.Value
		}
	}
	return m
}

// compareContent compares a body's media types and, for each media type both
// declare, its schema. When each side declares exactly one media type and it
// is the same, keys leave the media type out ("response 200 field x");
// otherwise they name it ("response 200 application/xml field x").
func compareContent(d *differ, where string, u, o openapi3.Content) {
	shared := 0
	for _, mt := range unionKeys(u, o) {
		_, inUpstream := u[mt]
		_, inOurs := o[mt]
		if d.presence(where+" content type "+mt, inUpstream, inOurs) {
			shared++
		}
	}
	single := shared == 1 && len(u) == 1 && len(o) == 1
	for _, mt := range unionKeys(u, o) {
		um, om := u[mt], o[mt]
		if um == nil || om == nil {
			continue
		}
		label := where
		if !single {
			label = where + " " + mt
		}
		compareSchemas(d, label, um.Schema, om.Schema)
	}
}

func compareComponentSchema(d *differ, name string, upstream, ours *openapi3.T) {
	u, o := componentSchema(upstream, name), componentSchema(ours, name)
	where := "schema " + name
	if u == nil && o == nil {
		return
	}
	if d.presence(where, u != nil, o != nil) {
		compareSchemas(d, where, u, o)
	}
}

func componentSchema(doc *openapi3.T, name string) *openapi3.SchemaRef {
	if doc.Components == nil {
		return nil
	}
	return doc.Components.Schemas[name]
}

// compareSchemas compares two schemas' shapes and fields.
func compareSchemas(d *differ, where string, u, o *openapi3.SchemaRef) {
	uHas, oHas := u != nil && u.Value != nil, o != nil && o.Value != nil
	if !d.presence(where+" schema", uHas, oHas) {
		return
	}
	d.change(where, "shape", typeOf(u, 0), typeOf(o, 0))
	uFields, oFields := fieldsOf(u), fieldsOf(o)
	for _, name := range unionKeys(uFields, oFields) {
		fw := where + " field " + name
		uf, inUpstream := uFields[name]
		of, inOurs := oFields[name]
		if !d.presence(fw, inUpstream, inOurs) {
			continue
		}
		d.change(fw, "type", uf.typ, of.typ)
		d.change(fw, "format", uf.format, of.format)
		d.change(fw, "", uf.req.String(), of.req.String())
	}
}
