package config

import (
	"strconv"
	"strings"
)

// BurntSushi/toml records key positions only internally, and per flattened
// key (listeners[0].name and listeners[1].name share one entry), so this file
// finds the line of every key itself. It runs only on text the TOML parser has
// already accepted, so it understands just enough TOML to tell keys from
// values; on anything it does not understand it still terminates and at
// worst leaves keys without a line.

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
// element in src.
func scanKeyLines(src string) keyLines {
	s := &lineScanner{src: src, line: 1, lines: keyLines{}, arrays: map[string]int{}}
	s.document()
	return s.lines
}

// lineScanner walks TOML text, tracking the line number and the number of
// elements of each array of tables seen so far.
type lineScanner struct {
	src    string
	pos    int
	line   int
	lines  keyLines
	arrays map[string]int // path of an array of tables → elements so far
}

func (s *lineScanner) eof() bool { return s.pos >= len(s.src) }

func (s *lineScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.pos]
}

func (s *lineScanner) next() {
	if s.eof() {
		return
	}
	if s.src[s.pos] == '\n' {
		s.line++
	}
	s.pos++
}

func (s *lineScanner) skip(n int) {
	for ; n > 0; n-- {
		s.next()
	}
}

func (s *lineScanner) hasPrefix(p string) bool { return strings.HasPrefix(s.src[s.pos:], p) }

// record notes line for path unless the path was seen before.
func (s *lineScanner) record(path string, line int) {
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = line
	}
}

// space skips blanks and, when newlines is set, line breaks and comments.
func (s *lineScanner) space(newlines bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t':
			s.next()
		case newlines && (c == '\n' || c == '\r'):
			s.next()
		case newlines && c == '#':
			for !s.eof() && s.peek() != '\n' {
				s.next()
			}
		default:
			return
		}
	}
}

// document scans top-level statements: table headers and key/value pairs.
func (s *lineScanner) document() {
	table := ""
	for {
		s.space(true)
		if s.eof() {
			return
		}
		start := s.pos
		switch {
		case s.hasPrefix("[["):
			s.skip(2)
			table = s.header(true)
		case s.peek() == '[':
			s.next()
			table = s.header(false)
		default:
			s.keyValue(table)
		}
		if s.pos == start {
			s.next() // never loop on text we do not understand
		}
	}
}

// header reads the rest of a "[a.b]" or "[[a.b]]" header and returns the
// path of the table it opens, with the index of each array of tables.
func (s *lineScanner) header(array bool) string {
	line := s.line
	parts := s.keyParts()
	s.space(false)
	if array && s.hasPrefix("]]") {
		s.skip(2)
	} else if s.peek() == ']' {
		s.next()
	}
	path := ""
	for i, part := range parts {
		path = joinKey(path, part)
		n := s.arrays[path]
		if array && i == len(parts)-1 {
			s.record(path, line)
			s.arrays[path] = n + 1
			path = indexKey(path, n)
		} else if n > 0 {
			path = indexKey(path, n-1)
		}
	}
	s.record(path, line)
	return path
}

// keyValue reads "a.b = value" inside the table at path table.
func (s *lineScanner) keyValue(table string) {
	line := s.line
	path := table
	for _, part := range s.keyParts() {
		path = joinKey(path, part)
		s.record(path, line)
	}
	s.space(false)
	if s.peek() == '=' {
		s.next()
	}
	s.value(path)
}

// keyParts reads a dotted key and returns its parts, unquoted.
func (s *lineScanner) keyParts() []string {
	var parts []string
	for {
		s.space(false)
		start := s.pos
		switch s.peek() {
		case '"', '\'':
			raw := s.src[start:s.quoted()]
			parts = append(parts, unquoteKey(raw))
		default:
			for !s.eof() && isBareChar(s.peek()) {
				s.next()
			}
			parts = append(parts, s.src[start:s.pos])
		}
		s.space(false)
		if s.pos == start || s.peek() != '.' {
			return parts
		}
		s.next()
	}
}

// unquoteKey returns the name a quoted key stands for; raw includes quotes.
func unquoteKey(raw string) string {
	if len(raw) >= 2 && raw[0] == '\'' && raw[len(raw)-1] == '\'' {
		return raw[1 : len(raw)-1]
	}
	if name, err := strconv.Unquote(raw); err == nil {
		return name
	}
	return strings.Trim(raw, `"`)
}

// value skips one value, recording the lines of array elements and of keys
// in inline tables, as children of path.
func (s *lineScanner) value(path string) {
	s.space(false)
	switch s.peek() {
	case '"', '\'':
		s.quoted()
	case '[':
		s.next()
		s.array(path)
	case '{':
		s.next()
		s.inlineTable(path)
	default:
		for !s.eof() && !strings.ContainsRune(",]}\n#", rune(s.peek())) {
			s.next()
		}
	}
}

// array skips the rest of an array value, after its '['.
func (s *lineScanner) array(path string) {
	for i := 0; ; {
		s.space(true)
		start := s.pos
		switch s.peek() {
		case 0:
			return
		case ']':
			s.next()
			return
		case ',':
			s.next()
		default:
			elem := indexKey(path, i)
			s.record(elem, s.line)
			s.value(elem)
			i++
		}
		if s.pos == start {
			s.next()
		}
	}
}

// inlineTable skips the rest of an inline table, after its '{'.
func (s *lineScanner) inlineTable(path string) {
	for {
		s.space(true)
		start := s.pos
		switch s.peek() {
		case 0:
			return
		case '}':
			s.next()
			return
		case ',':
			s.next()
		default:
			s.keyValue(path)
		}
		if s.pos == start {
			s.next()
		}
	}
}

// quoted skips a basic, literal or multi-line string starting at the cursor
// and returns the position after it.
func (s *lineScanner) quoted() int {
	q := s.peek()
	delim := string(q)
	if s.hasPrefix(strings.Repeat(delim, 3)) {
		delim = strings.Repeat(delim, 3)
	}
	s.skip(len(delim))
	for !s.eof() {
		switch {
		case q == '"' && s.peek() == '\\':
			s.skip(2)
		case s.hasPrefix(delim):
			s.skip(len(delim))
			for len(delim) == 3 && s.peek() == q { // up to two quotes may end the content
				s.next()
			}
			return s.pos
		case len(delim) == 1 && s.peek() == '\n':
			return s.pos
		default:
			s.next()
		}
	}
	return s.pos
}
