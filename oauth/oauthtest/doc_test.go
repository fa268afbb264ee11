package oauthtest

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// docSections returns the package documentation (doc.go) with its
// whitespace collapsed, cut into its "Documented errors" and "Choices
// where LINE documents nothing" sections, each a list of paragraphs or
// bullets.
func docSections(t *testing.T) (all string, documented, choices []string) {
	t.Helper()
	f, err := parser.ParseFile(gotoken.NewFileSet(), "doc.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	text := f.Doc.Text()
	section := func(from, to string) string {
		i, j := strings.Index(text, from), strings.Index(text, to)
		if i < 0 || j < i {
			t.Fatalf("doc.go has no section %q before %q", from, to)
		}
		return text[i+len(from) : j]
	}
	// Documented errors: one entry a line, continuation lines indented.
	for _, line := range strings.Split(section("# Documented errors", "# Choices where LINE documents nothing"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
		case strings.HasPrefix(line, "\t  ") && len(documented) > 0:
			documented[len(documented)-1] += " " + strings.TrimSpace(line)
		default:
			documented = append(documented, strings.TrimSpace(line))
		}
	}
	// Choices: one bullet each.
	for _, b := range strings.Split(section("# Choices where LINE documents nothing", "# Tests"), "\n  - ")[1:] {
		choices = append(choices, strings.Join(strings.Fields(b), " "))
	}
	return strings.Join(strings.Fields(text), " "), documented, choices
}

// entryWith returns the entries holding every one of words.
func entryWith(entries []string, words ...string) []string {
	var out []string
	for _, e := range entries {
		all := true
		for _, w := range words {
			all = all && strings.Contains(e, w)
		}
		if all {
			out = append(out, e)
		}
	}
	return out
}

// TestDocRecordsEveryAnswer checks that doc.go writes down every answer
// the fake gives: those LINE documents under "Documented errors", each
// with the endpoint LINE documents it for, and every other one under
// "Choices where LINE documents nothing" with its reason.
func TestDocRecordsEveryAnswer(t *testing.T) {
	all, documented, choices := docSections(t)
	documentedText := strings.Join(documented, "\n")

	// LINE-TOKEN-API.md, "Errors": the endpoint and text of each entry.
	for _, e := range []struct{ endpoint, text string }{
		{"kid not registered", msgKeyNotFound},
		{"v2.1 issue, a bad or expired assertion", descIssMismatch},
		{"v2.1 issue at 30 active tokens", msgTokenLimit},
		{"key-ID list, exp", descInvalidExp},
		{"v2.1 verify", descExpired},
		{"v2.1 verify", descNotJWS},
		{"v2.1 revoke", descNotJWS},
		{"v2.1 revoke", descMalformed},
		{"short-lived issue", descBadClientID},
		{"short-lived issue", descBadClientSecret},
		{"v2 verify", descV2Invalid},
		{"v2 verify", descV2Format},
		{"v2 revoke", `{"error":"invalid_request"}`},
		{"stateless, either form", descBadCredentials},
	} {
		if len(entryWith(documented, e.endpoint, e.text)) == 0 {
			t.Errorf("Documented errors: no entry for %q with %q", e.endpoint, e.text)
		}
	}
	// LINE documents "iss and clientId of key do not match" for v2.1 issue
	// only, and "malformed" for v2.1 revoke only.
	for _, e := range entryWith(documented, descIssMismatch) {
		if strings.Contains(e, "stateless") || strings.Contains(e, "key-ID") {
			t.Errorf("Documented errors gives %q beyond v2.1 issue: %s", descIssMismatch, e)
		}
	}
	for _, e := range entryWith(documented, descMalformed) {
		if strings.Contains(e, "verify") {
			t.Errorf("Documented errors gives %q for verify: %s", descMalformed, e)
		}
	}

	// The fake's own choices, each with the case it answers and a reason.
	for _, c := range []struct{ words []string }{
		{[]string{"Key-ID list, iss or sub", descIssMismatch}},
		{[]string{"v2.1 verify", descMalformed}},
		{[]string{"Verify of a revoked or unknown v2.1 token", descV2Invalid}},
		{[]string{"v2.1 revoke", descBadClientID, descBadClientSecret}},
		{[]string{"v2.1 issue, other assertion failures", "Invalid alg", "Invalid typ", "Invalid signature",
			"Invalid aud", "Invalid token_exp", descBadAssertion}},
		{[]string{"Missing, extra, repeated or empty fields", descBadParams,
			headerRetryKey + " is not supported by this endpoint"}},
		{[]string{"path", `{"message":"Not Found"}`, `{"message":"Method Not Allowed"}`, `{"message":"Request Entity Too Large"}`}},
		{[]string{"429", `{"message":"` + msgTooManyRequests + `"}`, "Retry-After"}},
		{[]string{"rate limit counts", "refused"}},
		{[]string{headerRequestID}},
		{[]string{"Cache-Control: no-store"}},
		{[]string{"Revoking a stateless token"}},
		{[]string{"v2.1 verify always sends scope"}},
	} {
		found := entryWith(choices, c.words...)
		if len(found) == 0 {
			t.Errorf("Choices: no bullet with all of %q", c.words)
			continue
		}
		if !strings.Contains(found[0], "Why:") {
			t.Errorf("Choices: the bullet with %q gives no reason (Why:)", c.words)
		}
	}
	if strings.Contains(documentedText, "Too many requests") {
		t.Error("Documented errors gives a 429 body; LINE documents none")
	}

	// Every text constant and literal answer in the code is in doc.go.
	for _, text := range answerTexts(t) {
		if !strings.Contains(all, text) {
			t.Errorf("doc.go does not mention %q, which the fake answers", text)
		}
	}
}

// answerTexts collects from the fake's source the string constants named
// desc* or msg* and the string literals passed to invalid, badRequest,
// oauthError and messageError.
func answerTexts(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	fset := gotoken.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		literal := func(e ast.Expr) {
			if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == gotoken.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					texts = append(texts, s)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if (strings.HasPrefix(id.Name, "desc") || strings.HasPrefix(id.Name, "msg")) && i < len(n.Values) {
						literal(n.Values[i])
					}
				}
			case *ast.CallExpr:
				if fn, ok := n.Fun.(*ast.Ident); ok {
					switch fn.Name {
					case "invalid", "badRequest", "oauthError", "messageError":
						for _, a := range n.Args {
							literal(a)
						}
					}
				}
			}
			return true
		})
	}
	if len(texts) < 20 {
		t.Fatalf("found only %d answer texts in the source: %q", len(texts), texts)
	}
	return texts
}
