// Package readmecheck makes README.md's Go code checked code: its tests
// (run by `make test`) compile, vet and gofmt-check every ```go block in a
// scratch module that uses the working tree through a replace directive,
// run the test blocks (func TestXxx), and check with `go doc` that the
// backticked Go identifiers of the prose name this module's real API.
//
// # Blocks
//
// A block that starts with a package clause is a complete file. Any other
// block must be marked as a fragment by an HTML comment on the line before
// its fence, which GitHub does not render:
//
//	<!-- fragment -->
//	<!-- fragment: privateJWKOrPEM []byte, req *http.Request -->
//
// The minimal wrapper of a fragment adds only what it cannot show:
//   - imports, for the package names the block uses (the standard library's
//     unambiguous names, this module's packages, redis for go-redis and
//     messaging_api for line-bot-sdk-go);
//   - for statements, a function around them, func(ctx context.Context,
//     <the marker's parameters>) error, ending in `_ = v` for each variable
//     the block declares (a README shows results it does not use) and
//     `return nil`.
//
// Declarations (such as a func TestBot) are wrapped in nothing but the
// package clause and imports. Nothing the wrapper adds changes a call the
// block makes. Compiler and vet messages name README.md lines (//line
// directives).
//
// # Identifiers
//
// A backticked span of prose that looks like Go (a dotted name, optionally
// called, or `Key: value`) is checked where it names this module's API:
// pkg.Name for this module's packages (oauth, oauthtest, redisstore, gen);
// v.Member for the variables the README's prose uses (srv, ts, tok, client,
// cfg); a bare exported Name (not ALL_CAPS) in oauth, oauthtest or
// redisstore, as a type, function, method, constant, variable or field.
// Foreign names are written qualified (oauth2.ReuseTokenSource) and are
// not checked.
package readmecheck

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"strings"
)

const (
	// fenceGo opens a Go block; fence closes any block.
	fenceGo = "```go"
	fence   = "```"
	// Marker is the fragment marker's start; what follows ": " is the
	// wrapper function's extra parameters.
	markerPrefix = "<!-- fragment"
	markerSuffix = "-->"
	// ScratchPackage is the scratch module's package name.
	ScratchPackage = "readme"
)

// Block is one ```go block of a Markdown file.
type Block struct {
	// Line is the 1-based line of the block's first code line.
	Line int
	// Text is the block's code, ending in a newline.
	Text string
	// Fragment is true when the block is marked as a fragment.
	Fragment bool
	// Params are the fragment marker's extra parameters ("a []byte"), or "".
	Params string
}

// Blocks returns the ```go blocks of a Markdown file, in order.
func Blocks(md []byte) ([]Block, error) {
	lines := strings.Split(string(md), "\n")
	var blocks []Block
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != fenceGo {
			continue
		}
		b := Block{Line: i + 2}
		if i > 0 {
			prev := strings.TrimSpace(lines[i-1])
			if strings.HasPrefix(prev, markerPrefix) && strings.HasSuffix(prev, markerSuffix) {
				b.Fragment = true
				rest := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(prev, markerPrefix), markerSuffix))
				if rest != "" {
					params, ok := strings.CutPrefix(rest, ":")
					if !ok {
						return nil, fmt.Errorf("line %d: fragment marker %q: want <!-- fragment --> or <!-- fragment: name type, ... -->", i, prev)
					}
					b.Params = strings.TrimSpace(params)
				}
			}
		}
		var code strings.Builder
		j := i + 1
		for ; j < len(lines) && strings.TrimSpace(lines[j]) != fence; j++ {
			code.WriteString(lines[j] + "\n")
		}
		if j == len(lines) {
			return nil, fmt.Errorf("line %d: ```go block is never closed", i+1)
		}
		b.Text = code.String()
		blocks = append(blocks, b)
		i = j
	}
	return blocks, nil
}

// Kind is what a block holds.
type Kind int

const (
	// KindFile is a complete Go file (it has a package clause).
	KindFile Kind = iota
	// KindDecls is top-level declarations without a package clause.
	KindDecls
	// KindStmts is statements.
	KindStmts
)

// KindOf tells what b holds.
func KindOf(b Block) Kind {
	fset := token.NewFileSet()
	if _, err := parser.ParseFile(fset, "", b.Text, parser.PackageClauseOnly); err == nil {
		return KindFile
	}
	if _, err := parser.ParseFile(fset, "", "package p\n"+b.Text, parser.SkipObjectResolution); err == nil {
		return KindDecls
	}
	return KindStmts
}

// Source returns the Go file that checks block n of the Markdown file
// named readme, with imports resolved by importPaths (package name ->
// import path), and whether it is a test file.
func Source(readme string, n int, b Block, importPaths map[string]string) (src string, isTest bool, err error) {
	line := fmt.Sprintf("//line %s:%d\n", readme, b.Line)
	kind := KindOf(b)
	switch {
	case kind == KindFile:
		return line + b.Text, strings.Contains(b.Text, "func Test"), nil
	case !b.Fragment:
		return "", false, fmt.Errorf("%s:%d: a ```go block without a package clause must be marked <!-- fragment --> on the line before its fence", readme, b.Line-1)
	}
	var body string
	if kind == KindDecls {
		body = line + b.Text
		isTest = strings.Contains(b.Text, "func Test")
	} else {
		params := "ctx context.Context"
		if b.Params != "" {
			params += ", " + b.Params
		}
		uses, err := declaredNames(b.Text)
		if err != nil {
			return "", false, fmt.Errorf("%s:%d: %w", readme, b.Line, err)
		}
		var tail strings.Builder
		for _, name := range uses {
			fmt.Fprintf(&tail, "\t_ = %s\n", name)
		}
		body = fmt.Sprintf("func readmeBlock%d(%s) error {\n%s%s%s\treturn nil\n}\n", n, params, line, b.Text, tail.String())
	}
	imports := importsFor(body, importPaths)
	var file strings.Builder
	fmt.Fprintf(&file, "package %s\n\n", ScratchPackage)
	if len(imports) > 0 {
		file.WriteString("import (\n")
		for _, p := range imports {
			fmt.Fprintf(&file, "\t%q\n", p)
		}
		file.WriteString(")\n\n")
	}
	file.WriteString(body)
	return file.String(), isTest, nil
}

// declaredNames returns the variables that statements declare at their top
// level (with := or var), in order, without "_".
func declaredNames(stmts string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p\nfunc _() {\n"+stmts+"\n}\n", parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var names []string
	add := func(id *ast.Ident) {
		if id.Name != "_" && !slices.Contains(names, id.Name) {
			names = append(names, id.Name)
		}
	}
	for _, s := range f.Decls[0].(*ast.FuncDecl).Body.List {
		switch s := s.(type) {
		case *ast.AssignStmt:
			if s.Tok == token.DEFINE {
				for _, e := range s.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						add(id)
					}
				}
			}
		case *ast.DeclStmt:
			if g, ok := s.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, spec := range g.Specs {
					for _, id := range spec.(*ast.ValueSpec).Names {
						add(id)
					}
				}
			}
		}
	}
	return names, nil
}

// importsFor returns the import paths of the package names src uses as
// selector roots (name.X), sorted.
func importsFor(src string, importPaths map[string]string) []string {
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p\n"+src, parser.SkipObjectResolution)
	if err != nil {
		return nil // the compiler reports it, with README lines
	}
	var paths []string
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				if p, ok := importPaths[id.Name]; ok && !slices.Contains(paths, p) {
					paths = append(paths, p)
				}
			}
		}
		return true
	})
	slices.Sort(paths)
	return paths
}

// Unformatted returns the gofmt form of a block's code when it differs
// from the block, or "" when the block is gofmt-formatted. Statements are
// formatted as a function body, one tab deeper, and compared unindented.
func Unformatted(b Block) (string, error) {
	var prefix, suffix, indent string
	switch KindOf(b) {
	case KindDecls:
		prefix = "package p\n\n"
	case KindStmts:
		prefix, suffix, indent = "package p\n\nfunc _() {\n", "}\n", "\t"
	}
	var in strings.Builder
	in.WriteString(prefix)
	for _, l := range strings.SplitAfter(b.Text, "\n") {
		if strings.TrimSpace(l) != "" {
			in.WriteString(indent)
		}
		in.WriteString(l)
	}
	in.WriteString(suffix)
	out, err := format.Source([]byte(in.String()))
	if err != nil {
		return "", err
	}
	got := strings.TrimSuffix(strings.TrimPrefix(string(out), prefix), suffix)
	var want strings.Builder
	for _, l := range strings.SplitAfter(got, "\n") {
		want.WriteString(strings.TrimPrefix(l, indent))
	}
	if want.String() == b.Text {
		return "", nil
	}
	return want.String(), nil
}

// Span is a backticked span of prose.
type Span struct {
	Line int
	Text string
}

// Spans returns the backticked spans of a Markdown file outside code blocks.
func Spans(md []byte) []Span {
	var spans []Span
	inBlock := false
	for i, line := range strings.Split(string(md), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), fence) {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			continue
		}
		parts := strings.Split(line, "`")
		for j := 1; j < len(parts)-1; j += 2 {
			spans = append(spans, Span{Line: i + 1, Text: parts[j]})
		}
	}
	return spans
}

// goLike matches spans that read as Go API: an optional *, a dotted name
// and optional call arguments; or `Name: value`.
var goLike = regexp.MustCompile(`^\*?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?:\([^()]*\))?(?:: \S+)?$`)

// allCaps matches names that are not Go API style: TOKEN, LINE_KEY_ID.
var allCaps = regexp.MustCompile(`^[A-Z0-9_]+$`)

// Identifier is a Go name a span refers to: its dotted parts.
type Identifier struct {
	Span
	Parts []string
}

// Identifiers returns the spans that name Go identifiers, with their
// dotted parts; a `Key: value` span names Key (a field).
func Identifiers(spans []Span) []Identifier {
	var ids []Identifier
	for _, s := range spans {
		m := goLike.FindStringSubmatch(s.Text)
		if m == nil {
			continue
		}
		parts := strings.Split(m[1], ".")
		if allCaps.MatchString(parts[0]) {
			continue
		}
		ids = append(ids, Identifier{Span: s, Parts: parts})
	}
	return ids
}

// IsExported reports whether name starts with an upper-case letter.
func IsExported(name string) bool { return name != "" && token.IsExported(name) }

// Fields returns the exported struct field names that `go doc -all`
// output lists, for the check of bare field names.
func Fields(docAll []byte) map[string]bool {
	fields := map[string]bool{}
	inStruct := false
	for _, line := range bytes.Split(docAll, []byte("\n")) {
		s := string(line)
		switch {
		case strings.HasPrefix(s, "type ") && strings.HasSuffix(s, "struct {"):
			inStruct = true
		case inStruct && s == "}":
			inStruct = false
		case inStruct && strings.HasPrefix(s, "\t") && !strings.HasPrefix(s, "\t//") && !strings.HasPrefix(s, "\t\t"):
			if f := strings.Fields(s); len(f) > 0 && IsExported(f[0]) {
				fields[f[0]] = true
			}
		}
	}
	return fields
}
