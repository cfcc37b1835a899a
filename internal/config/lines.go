package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Lines come from go-toml's parser, which gives every key and value of its
// syntax tree a byte range in the source. go-toml's decoder, which builds the
// tree that the decoder walks (see decodeTOML), keeps no positions, and its
// struct decoding reports key paths without array indices and stops at the
// first type error; so the decoder walks the generic tree and this file maps
// its key paths to lines.
//
// scanKeyLines only runs on documents decodeTOML accepted, and both come from
// the same library; should its parser ever refuse such a document, keys from
// the point of refusal on simply have no line.

// keyLines maps key paths, as rendered by joinKey and indexKey, to the
// 1-based line where the key (or table header) first appears.
type keyLines map[string]int

// lookup returns the line of path or, when path is not in the file (a missing
// required key, say), of its nearest ancestor; 0 when none is known.
func (kl keyLines) lookup(path string) int {
	for path != "" {
		if line, ok := kl[path]; ok {
			return line
		}
		path = parentKey(path)
	}
	return 0
}

// joinKey appends the key name to the path parent. Names that are not TOML
// bare keys are quoted, Go-style.
func joinKey(parent, name string) string {
	if !isBareKey(name) {
		name = strconv.Quote(name)
	}
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// indexKey returns the path of element i of the array at path.
func indexKey(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parentKey strips the last element (".name", ".\"quoted\"" or "[i]") from path.
func parentKey(path string) string {
	end := len(path) - 1
	if end < 0 {
		return ""
	}
	start := 0
	switch path[end] {
	case ']':
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
		return ""
	case '"':
		start = openingQuote(path, end)
	default:
		start = strings.LastIndexByte(path, '.') + 1
	}
	if start <= 0 {
		return ""
	}
	return path[:start-1]
}

// openingQuote returns the index of the unescaped '"' that opens the quoted
// segment closed by the '"' at end, or 0 when there is none.
func openingQuote(path string, end int) int {
	for i := end - 1; i >= 0; i-- {
		if path[i] != '"' {
			continue
		}
		backslashes := 0
		for j := i - 1; j >= 0 && path[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return i
		}
	}
	return 0
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareChar(s[i]) {
			return false
		}
	}
	return true
}

func isBareChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// scanKeyLines returns the line of every table header, key, and array
// element in src. It never fails: on text go-toml cannot parse it returns the
// lines of the expressions before the error.
func scanKeyLines(src []byte) keyLines {
	w := &lineWalker{lines: keyLines{}, arrays: map[string]int{}, newlines: newlineOffsets(src)}
	var p unstable.Parser
	p.Reset(src)
	table := ""
	for p.NextExpression() {
		switch expr := p.Expression(); expr.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = w.header(expr)
		case unstable.KeyValue:
			w.keyValue(table, expr)
		}
	}
	return w.lines
}

// lineWalker records the lines of one document's keys, tracking the number
// of elements of each array of tables seen so far.
type lineWalker struct {
	lines    keyLines
	arrays   map[string]int // path of an array of tables → elements so far
	newlines []int          // byte offsets of the '\n's in the source
}

// newlineOffsets returns the offsets of the line breaks in src, in order.
func newlineOffsets(src []byte) []int {
	var out []int
	for i, c := range src {
		if c == '\n' {
			out = append(out, i)
		}
	}
	return out
}

// line returns the 1-based line on which n starts.
func (w *lineWalker) line(n *unstable.Node) int {
	return sort.SearchInts(w.newlines, int(n.Raw.Offset)) + 1
}

// record notes line for path unless the path was seen before.
func (w *lineWalker) record(path string, line int) {
	if _, ok := w.lines[path]; !ok {
		w.lines[path] = line
	}
}

// header records a "[a.b]" or "[[a.b]]" header and returns the path of the
// table it opens, with the index of each array of tables.
func (w *lineWalker) header(expr *unstable.Node) string {
	array := expr.Kind == unstable.ArrayTable
	path, line := "", 0
	for it := expr.Key(); it.Next(); {
		part := it.Node()
		if line == 0 {
			line = w.line(part)
		}
		path = joinKey(path, string(part.Data))
		w.record(path, line) // "a" of [a.b], if a is not defined earlier
		n := w.arrays[path]
		if array && it.IsLast() {
			w.arrays[path] = n + 1
			path = indexKey(path, n)
		} else if n > 0 {
			path = indexKey(path, n-1)
		}
	}
	w.record(path, line)
	return path
}

// keyValue records "a.b = value" inside the table at path table.
func (w *lineWalker) keyValue(table string, kv *unstable.Node) {
	path := table
	for it := kv.Key(); it.Next(); {
		path = joinKey(path, string(it.Node().Data))
		w.record(path, w.line(it.Node()))
	}
	w.value(path, kv.Value())
}

// value records the lines of the elements of an array and of the keys of an
// inline table, as children of path.
func (w *lineWalker) value(path string, v *unstable.Node) {
	switch v.Kind {
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); i++ {
			elem := indexKey(path, i)
			if n := firstLeaf(it.Node()); n != nil {
				w.record(elem, w.line(n))
			}
			w.value(elem, it.Node())
		}
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			w.keyValue(path, it.Node())
		}
	}
}

// firstLeaf returns the first node of value v that has a position: v itself,
// unless v is an array, which has none; nil for an array of empty arrays.
func firstLeaf(v *unstable.Node) *unstable.Node {
	for v != nil && v.Kind == unstable.Array {
		v = v.Child()
	}
	return v
}
