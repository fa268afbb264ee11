package readmecheck

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	repoRoot = "../.."
	// modulePath is this module's path.
	modulePath = "github.com/linetoken/linetoken"
	// goTimeout bounds one go command (a cold build of the scratch module
	// compiles go-redis and line-bot-sdk-go).
	goTimeout = 5 * time.Minute
)

// thirdParty are the packages README blocks use outside this module and the
// standard library, by the name they are used with.
var thirdParty = map[string]string{
	"redis":         "github.com/redis/go-redis/v9",
	"messaging_api": "github.com/line/line-bot-sdk-go/v8/linebot/messaging_api",
}

// proseVariables are the variables README's prose calls methods on, and
// their types' package and name.
var proseVariables = map[string][2]string{
	"srv":    {"oauth/oauthtest", "Server"},
	"ts":     {"oauth", "TokenSource"},
	"tok":    {"oauth", "Token"},
	"client": {"oauth", "Client"},
	"cfg":    {"oauth", "Config"},
}

// apiPackages are the packages a bare exported name may belong to.
var apiPackages = []string{"oauth", "oauth/oauthtest", "oauth/redisstore"}

// goCmd runs the go command in dir, offline: everything the scratch module
// needs is in the module cache (.ci/run downloads it), and a test never
// reaches the network.
func goCmd(t *testing.T, dir string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), goTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	return cmd.CombinedOutput()
}

// importPaths maps package names to import paths: the standard library's
// unambiguous names, this module's packages and thirdParty.
func importPaths(t *testing.T, root string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	out, err := goCmd(t, root, "list", "std")
	if err != nil {
		t.Fatalf("go list std: %v\n%s", err, out)
	}
	seen := map[string]int{}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "internal") || strings.HasPrefix(p, "vendor/") {
			continue
		}
		name := p[strings.LastIndex(p, "/")+1:]
		seen[name]++
		paths[name] = p
	}
	for name, n := range seen {
		if n > 1 {
			delete(paths, name) // rand, template, ...: ambiguous
		}
	}
	for _, p := range []string{"oauth", "oauth/oauthtest", "oauth/redisstore", "gen"} {
		paths[filepath.Base(p)] = modulePath + "/" + p
	}
	for name, p := range thirdParty {
		paths[name] = p
	}
	return paths
}

// goDirective finds a go.mod's go directive: "go 1.26.0" is "1.26.0".
var goDirective = regexp.MustCompile(`(?m)^go[ \t]+([0-9][^\s/]*)[ \t]*(?://.*)?$`)

// scratchModule writes a module in a temporary folder that requires this
// module through a replace directive to root, plus line-bot-sdk-go at the
// examples module's version, and returns the folder. Its go directive is
// root's go.mod's.
func scratchModule(t *testing.T, root string) string {
	t.Helper()
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	rootMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := goDirective.FindSubmatch(rootMod)
	if goVersion == nil {
		t.Fatalf("%s has no go directive", filepath.Join(root, "go.mod"))
	}
	examples, err := os.ReadFile(filepath.Join(root, "examples", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	sdk := regexp.MustCompile(`(?m)^\s*(github\.com/line/line-bot-sdk-go/v8) (\S+)`).FindSubmatch(examples)
	if sdk == nil {
		t.Fatal("examples/go.mod does not require line-bot-sdk-go/v8")
	}
	dir := t.TempDir()
	mod := fmt.Sprintf("module readmecheck.example\n\ngo %s\n\nrequire (\n\t%s v0.0.0-00010101000000-000000000000\n\t%s %s\n)\n\nreplace %s => %s\n",
		goVersion[1], modulePath, sdk[1], sdk[2], modulePath, absRoot)
	var sum bytes.Buffer
	for _, f := range []string{"go.sum", "examples/go.sum"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		sum.Write(data)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(mod), "go.sum": sum.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// check checks the Markdown file at path, named name in messages, against
// the module at root, and returns the problems found.
func check(t *testing.T, root, path, name string) []string {
	t.Helper()
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := Blocks(md)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	var problems []string
	dir := scratchModule(t, root)
	imports := importPaths(t, root)
	hasTests := false
	for i, b := range blocks {
		if want, err := Unformatted(b); err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: gofmt: %v", name, b.Line-1, err))
		} else if want != "" {
			problems = append(problems, fmt.Sprintf("%s:%d: block is not gofmt-formatted; gofmt makes it:\n%s", name, b.Line-1, want))
		}
		src, isTest, err := Source(name, i, b, imports)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		file := fmt.Sprintf("block%02d.go", i)
		if isTest {
			file = fmt.Sprintf("block%02d_test.go", i)
			hasTests = true
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := goCmd(t, dir, "vet", "./..."); err != nil {
		hint := ""
		if bytes.Contains(out, []byte("GOPROXY=off")) {
			hint = " (the module cache lacks a dependency: run `go mod download` here and in examples/, as .ci/run does)"
		}
		problems = append(problems, fmt.Sprintf("go vet (compile and vet) of %s's Go blocks: %v%s\n%s", name, err, hint, out))
	} else if hasTests {
		if out, err := goCmd(t, dir, "test", "-count=1", "./..."); err != nil {
			problems = append(problems, fmt.Sprintf("go test of %s's test blocks: %v\n%s", name, err, out))
		}
	}
	return append(problems, checkIdentifiers(t, root, name, Identifiers(Spans(md)))...)
}

// checkIdentifiers checks with go doc, run in root, that each identifier
// naming this module's API exists.
func checkIdentifiers(t *testing.T, root, name string, ids []Identifier) []string {
	t.Helper()
	var mu sync.Mutex
	docs := map[string]bool{} // "pkg sym" -> found
	doc := func(args ...string) bool {
		key := strings.Join(args, " ")
		mu.Lock()
		found, ok := docs[key]
		mu.Unlock()
		if ok {
			return found
		}
		out, err := goCmd(t, root, append([]string{"doc"}, args...)...)
		found = err == nil
		if err != nil && !bytes.Contains(out, []byte("doc: no ")) {
			t.Fatalf("go doc %s: %v\n%s", key, err, out)
		}
		mu.Lock()
		docs[key] = found
		mu.Unlock()
		return found
	}
	fields := map[string]bool{}
	for _, p := range apiPackages {
		out, err := goCmd(t, root, "doc", "-all", "./"+p)
		if err != nil {
			t.Fatalf("go doc -all ./%s: %v\n%s", p, err, out)
		}
		for f := range Fields(out) {
			fields[f] = true
		}
	}
	var problems []string
	for _, id := range ids {
		root, rest := id.Parts[0], id.Parts[1:]
		var ok bool
		var what string
		switch v, isVar := proseVariables[root]; {
		case isVar && len(rest) > 0:
			what = fmt.Sprintf("%s (a %s.%s) has no %s", root, filepath.Base(v[0]), v[1], rest[0])
			ok = doc("./"+v[0], v[1]+"."+rest[0])
		case isModulePackage(root):
			what = fmt.Sprintf("package %s has no %s", root, strings.Join(rest, "."))
			if len(rest) == 0 {
				ok = true // the package itself: its name is checked by the blocks that import it
			} else {
				ok = doc("./"+modulePackage(root), strings.Join(rest, "."))
			}
		case IsExported(root):
			what = fmt.Sprintf("%s is in none of %v (write a foreign name qualified, e.g. oauth2.ReuseTokenSource)", strings.Join(id.Parts, "."), apiPackages)
			ok = len(rest) == 0 && fields[root]
			for _, p := range apiPackages {
				ok = ok || doc("./"+p, strings.Join(id.Parts[:min(len(id.Parts), 2)], "."))
			}
		default:
			continue // not this module's API (a variable, the standard library, a word)
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("%s:%d: `%s`: %s", name, id.Line, id.Text, what))
		}
	}
	return problems
}

func isModulePackage(name string) bool { return modulePackage(name) != "" }

// modulePackage returns the folder of this module's package called name.
func modulePackage(name string) string {
	for _, p := range []string{"oauth", "oauth/oauthtest", "oauth/redisstore", "gen"} {
		if filepath.Base(p) == name {
			return p
		}
	}
	return ""
}

// TestREADME: README.md's Go blocks compile, vet, are gofmt-formatted and
// their tests pass; its backticked identifiers name real API.
func TestREADME(t *testing.T) {
	for _, p := range check(t, repoRoot, filepath.Join(repoRoot, "README.md"), "README.md") {
		t.Error(p)
	}
}

// checkText checks md as a Markdown file named X.md.
func checkText(t *testing.T, md string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "X.md")
	if err := os.WriteFile(path, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.Join(check(t, repoRoot, path, "X.md"), "\n")
}

// TestCheckFindsProblems: each kind of problem is found, at its line.
func TestCheckFindsProblems(t *testing.T) {
	const md = "# t\n" + // 1
		"\n" + // 2
		"```go\n" + // 3
		"x := 1\n" + // 4: not marked
		"```\n" + // 5
		"<!-- fragment -->\n" + // 6
		"```go\n" + // 7
		"oauth.TokenSourceOptions{}\n" + // 8: a bare composite literal
		"```\n" + // 9
		"<!-- fragment: tok oauth.Token -->\n" + // 10
		"```go\n" + // 11
		"if tok.AccessToken == \"\" {  return nil }\n" + // 12: not gofmt
		"```\n" + // 13
		"Call `oauth.NoSuchFunc`, `ts.Invalidatee(tok)`, `NoSuchName`, `RefreshBefore`, `TokenSource.Token` and `errors.Is`.\n" // 14
	problems := checkText(t, md)
	for _, want := range []string{
		"X.md:3: a ```go block without a package clause must be marked",
		"X.md:8: oauth.TokenSourceOptions{} (value of struct type oauth.TokenSourceOptions) is not used",
		"X.md:11: block is not gofmt-formatted",
		"X.md:14: `oauth.NoSuchFunc`: package oauth has no NoSuchFunc",
		"X.md:14: `ts.Invalidatee(tok)`: ts (a oauth.TokenSource) has no Invalidatee",
		"X.md:14: `NoSuchName`: NoSuchName is in none of",
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems lack %q:\n%s", want, problems)
		}
	}
	for _, fine := range []string{"`RefreshBefore`", "`TokenSource.Token`", "`errors.Is`"} {
		if strings.Contains(problems, fine) {
			t.Errorf("problems name %s, which is fine:\n%s", fine, problems)
		}
	}
}

// TestCheckRunsTestBlocks: a fragment's unused results compile (the
// wrapper uses them), and a failing test block fails the check.
func TestCheckRunsTestBlocks(t *testing.T) {
	const md = "<!-- fragment -->\n" +
		"```go\n" +
		"store := oauth.NewMemoryStore()\n" +
		"```\n" +
		"<!-- fragment -->\n" +
		"```go\n" +
		"func TestFails(t *testing.T) { t.Fatal(\"boom\") }\n" +
		"```\n"
	problems := checkText(t, md)
	if !strings.Contains(problems, "--- FAIL: TestFails") || !strings.Contains(problems, "X.md:7: boom") {
		t.Errorf("problems lack the failing test block at X.md:7:\n%s", problems)
	}
	if strings.Contains(problems, "declared and not used") || strings.Contains(problems, "go vet") {
		t.Errorf("the fragment did not compile:\n%s", problems)
	}
}

// TestScratchModuleFollowsGoMod: the scratch module's go directive is the
// root go.mod's, whatever version that names.
func TestScratchModuleFollowsGoMod(t *testing.T) {
	root := t.TempDir()
	for name, text := range map[string]string{
		"go.mod":          "module " + modulePath + "\n\ngo 1.25.3 // pinned\n\ntoolchain go1.26.8\n",
		"go.sum":          "",
		"examples/go.mod": "module examples\n\ngo 1.25.3\n\nrequire (\n\tgithub.com/line/line-bot-sdk-go/v8 v8.9.9\n)\n",
		"examples/go.sum": "",
	} {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mod, err := os.ReadFile(filepath.Join(scratchModule(t, root), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "\ngo 1.25.3\n") || !strings.Contains(string(mod), "github.com/line/line-bot-sdk-go/v8 v8.9.9") {
		t.Errorf("scratch go.mod:\n%s\nwant go 1.25.3 and the examples' line-bot-sdk-go v8.9.9", mod)
	}
}
