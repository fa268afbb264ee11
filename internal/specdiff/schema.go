package specdiff

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

const (
	// conditionalWord describes a field that some variants of a oneOf/anyOf
	// require and others do not.
	conditionalWord = "required by some variants"

	anyType         = "any"
	arrayType       = "array"
	arrayTypeFormat = "array<%s>"
	oneOfWord       = "oneOf"
	anyOfWord       = "anyOf"
	allOfWord       = "allOf"
	// compositionFormat describes a composition by keyword and variant count.
	compositionFormat = "%s(%d)"

	// fieldSeparator joins a nested field's name to its parent's, and
	// itemsMarker marks the step through an array's items: "a[].b".
	fieldSeparator = "."
	itemsMarker    = "[]"

	// alternativesSeparator joins the differing types (or formats) the
	// variants of a oneOf/anyOf give one field; conjunctionSeparator those the
	// parts of an allOf give it; shapeSeparator the parts of a shape
	// ("object+oneOf(2)").
	alternativesSeparator = "|"
	conjunctionSeparator  = "&"
	shapeSeparator        = "+"

	// maxTypeDepth bounds how deep typeOf follows array items, for
	// self-referencing schemas.
	maxTypeDepth = 8
)

// requiredness says whether a field must be present.
type requiredness int

const (
	optional requiredness = iota
	// conditional: required by some variants of a oneOf/anyOf, not all.
	conditional
	required
)

func (r requiredness) String() string {
	switch r {
	case required:
		return requiredWord
	case conditional:
		return conditionalWord
	default:
		return optionalWord
	}
}

// field is what is compared of one field.
type field struct {
	typ, format string
	req         requiredness
}

// fieldsOf returns a schema's fields by (dotted) name.
func fieldsOf(ref *openapi3.SchemaRef) map[string]field {
	return collectFields(ref, "", map[*openapi3.Schema]bool{})
}

// collectFields returns the fields of ref, their names prefixed by prefix.
// visiting holds the schemas being expanded, so that a self-referencing schema
// is expanded once.
func collectFields(ref *openapi3.SchemaRef, prefix string, visiting map[*openapi3.Schema]bool) map[string]field {
	fields := map[string]field{}
	if ref == nil || ref.Value == nil || visiting[ref.Value] {
		return fields
	}
	s := ref.Value
	visiting[s] = true
	defer delete(visiting, s)

	for _, name := range slices.Sorted(maps.Keys(s.Properties)) {
		prop := s.Properties[name]
		full := prefix + name
		conjoin(fields, map[string]field{full: {typ: typeOf(prop, 0), format: formatOf(prop)}})
		conjoin(fields, collectFields(prop, full+fieldSeparator, visiting))
	}
	if s.Items != nil {
		itemsPrefix := strings.TrimSuffix(prefix, fieldSeparator) + itemsMarker + fieldSeparator
		conjoin(fields, collectFields(s.Items, itemsPrefix, visiting))
	}
	for _, part := range s.AllOf {
		conjoin(fields, collectFields(part, prefix, visiting))
	}
	for _, variants := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf} {
		if len(variants) > 0 {
			conjoin(fields, unionOf(variants, prefix, visiting))
		}
	}
	for _, name := range s.Required {
		f := fields[prefix+name] // a required field without a property has no type
		f.req = required
		fields[prefix+name] = f
	}
	return fields
}

// conjoin adds src's fields to dst, as allOf does: a field both have keeps
// the stronger requiredness, and the types and formats both give (one that
// gives none, such as a bare required name, adds nothing).
func conjoin(dst, src map[string]field) {
	for name, f := range src {
		prev, ok := dst[name]
		if !ok {
			dst[name] = f
			continue
		}
		dst[name] = field{
			typ:    joinDistinct(nonEmpty(prev.typ, f.typ), conjunctionSeparator),
			format: joinDistinct(nonEmpty(prev.format, f.format), conjunctionSeparator),
			req:    max(prev.req, f.req),
		}
	}
}

func nonEmpty(values ...string) []string {
	return slices.DeleteFunc(values, func(v string) bool { return v == "" })
}

// unionOf returns the union of the variants' fields: a field is required when
// every variant requires it, conditional when only some do.
func unionOf(variants openapi3.SchemaRefs, prefix string, visiting map[*openapi3.Schema]bool) map[string]field {
	perVariant := make([]map[string]field, len(variants))
	names := map[string]struct{}{}
	for i, v := range variants {
		perVariant[i] = collectFields(v, prefix, visiting)
		for name := range perVariant[i] {
			names[name] = struct{}{}
		}
	}
	union := make(map[string]field, len(names))
	for name := range names {
		var types, formats []string
		requiredBy, anyRequires := 0, false
		for _, fields := range perVariant {
			f, ok := fields[name]
			if !ok {
				continue
			}
			types = append(types, f.typ)
			formats = append(formats, f.format)
			if f.req == required {
				requiredBy++
			}
			if f.req != optional {
				anyRequires = true
			}
		}
		req := optional
		switch {
		case requiredBy == len(variants):
			req = required
		case anyRequires:
			req = conditional
		}
		union[name] = field{
			typ:    joinDistinct(types, alternativesSeparator),
			format: joinDistinct(formats, alternativesSeparator),
			req:    req,
		}
	}
	return union
}

// joinDistinct joins the distinct values, sorted; an empty value among other
// values is written as noneValue.
func joinDistinct(values []string, sep string) string {
	distinct := slices.Compact(slices.Sorted(slices.Values(values)))
	switch len(distinct) {
	case 0:
		return ""
	case 1:
		return distinct[0]
	}
	for i, v := range distinct {
		if v == "" {
			distinct[i] = noneValue
		}
	}
	slices.Sort(distinct)
	return strings.Join(distinct, sep)
}

// typeOf describes a schema's type: "string", "array<string>", "oneOf(2)",
// "object+allOf(2)"; "any" when it says nothing, "" for no schema.
func typeOf(ref *openapi3.SchemaRef, depth int) string {
	if ref == nil || ref.Value == nil {
		return ""
	}
	s := ref.Value
	var parts []string
	if types := s.Type.Slice(); len(types) > 0 {
		t := strings.Join(types, alternativesSeparator)
		if s.Type.Is(arrayType) {
			items := anyType
			if depth < maxTypeDepth && s.Items != nil {
				items = typeOf(s.Items, depth+1)
			}
			t = fmt.Sprintf(arrayTypeFormat, items)
		}
		parts = append(parts, t)
	}
	for _, c := range []struct {
		word     string
		variants openapi3.SchemaRefs
	}{{oneOfWord, s.OneOf}, {anyOfWord, s.AnyOf}, {allOfWord, s.AllOf}} {
		if len(c.variants) > 0 {
			parts = append(parts, fmt.Sprintf(compositionFormat, c.word, len(c.variants)))
		}
	}
	if len(parts) == 0 {
		return anyType
	}
	return strings.Join(parts, shapeSeparator)
}

func formatOf(ref *openapi3.SchemaRef) string {
	if ref == nil || ref.Value == nil {
		return ""
	}
	return ref.Value.Format
}
