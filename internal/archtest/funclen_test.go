package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// maxFuncLines is the longest a function of production code may be, counted
// from its func keyword to its closing brace, unless its doc comment says
// why it is longer (see longReason).
const maxFuncLines = 60

// longReason starts the sentence of a doc comment that explains why a
// function is longer than maxFuncLines.
const longReason = "It is long because"

// TestFunctionLength keeps functions small: every function or method of
// non-test code is at most maxFuncLines long, or its doc comment has a
// sentence starting with longReason.
func TestFunctionLength(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	checked := 0
	for _, p := range sourceFiles(t, root) {
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		for _, fn := range longFuncs(fset, f) {
			t.Errorf("%s:%d: %s is %d lines (at most %d, or its doc comment says %q why)",
				rel, fset.Position(fn.Pos()).Line, fn.Name.Name, funcLines(fset, fn), maxFuncLines, longReason+" …")
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("found no source files; is the module root right?")
	}
}

// longFuncs returns f's functions over maxFuncLines whose doc comment gives
// no reason.
func longFuncs(fset *token.FileSet, f *ast.File) []*ast.FuncDecl {
	var long []*ast.FuncDecl
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil || funcLines(fset, fn) <= maxFuncLines {
			continue
		}
		if fn.Doc == nil || !strings.Contains(fn.Doc.Text(), longReason) {
			long = append(long, fn)
		}
	}
	return long
}

// funcLines counts fn's lines, func keyword to closing brace.
func funcLines(fset *token.FileSet, fn *ast.FuncDecl) int {
	return fset.Position(fn.End()).Line - fset.Position(fn.Type.Func).Line + 1
}

func TestLongFuncs(t *testing.T) {
	body := strings.Repeat("\tx++\n", maxFuncLines-2)
	src := "package p\n\nvar x int\n\n" +
		"func short() {\n" + body + "}\n\n" +
		"func long() {\n" + body + "\tx++\n}\n\n" +
		"// excused does a lot. " + longReason + " it is a table.\nfunc excused() {\n" + body + "\tx++\n}\n"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fn := range longFuncs(fset, f) {
		names = append(names, fn.Name.Name)
	}
	if got := strings.Join(names, ","); got != "long" {
		t.Fatalf("longFuncs = %q, want only long (short is %d lines, the limit)", got, maxFuncLines)
	}
}
