package config

import "testing"

// tricky exercises everything the line scan must get right: comments and
// strings that look like headers or keys, multi-line strings and arrays,
// inline tables, quoted and dotted keys, and nested arrays of tables.
const tricky = `# [not.a.table]
top = "value # not a comment [x]"           # line 2
multi = """
[fake]
fake = 1
"""                                         # ends on line 6
lit = '''
x = "y" '''
arr = [                                     # line 9
  "a",   # comment ]
  "b",                                      # line 11
]
inline = { a = 1, "b.c" = { d = 2 } }       # line 13
"quoted key" = 1                            # line 14
dotted.key = true                           # line 15
date = 1979-05-27 07:32:00Z

[[outer]]                                   # line 18
name = "first"
[outer.inner]                               # line 20
v = 1
[[outer.list]]                              # line 22
w = 1

[[outer]]                                   # line 25
name = "second"                             # line 26
[[outer.list]]                              # line 27
w = 2
[[outer.list]]                              # line 29
w = 3                                       # line 30
tables = [{x = 1},
  {x = 2}]                                  # line 32
s = "quote \" [[outer]]"
[implicit.child]                            # line 34
`

func TestScanKeyLines(t *testing.T) {
	if _, err := decodeTOML([]byte(tricky)); err != nil {
		t.Fatalf("the test document is not valid TOML: %v", err)
	}
	lines := scanKeyLines([]byte(tricky))
	tests := []struct {
		path string
		want int
	}{
		{"top", 2},
		{"multi", 3},
		{"lit", 7},
		{"arr", 9},
		{"arr[0]", 10},
		{"arr[1]", 11},
		{"inline", 13},
		{"inline.a", 13},
		{`inline."b.c".d`, 13},
		{`"quoted key"`, 14},
		{"dotted", 15},
		{"dotted.key", 15},
		{"date", 16},
		{"outer", 18},
		{"outer[0]", 18},
		{"outer[0].name", 19},
		{"outer[0].inner", 20},
		{"outer[0].inner.v", 21},
		{"outer[0].list[0]", 22},
		{"outer[0].list[0].w", 23},
		{"outer[1]", 25},
		{"outer[1].name", 26},
		{"outer[1].list[0].w", 28},
		{"outer[1].list[1]", 29},
		{"outer[1].list[1].w", 30},
		{"outer[1].list[1].tables[0].x", 31},
		{"outer[1].list[1].tables[1].x", 32},
		{"outer[1].list[1].s", 33},
		{"implicit", 34},
		{"implicit.child", 34},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got, ok := lines[tt.path]; !ok || got != tt.want {
				t.Errorf("line of %s = %d (found %v), want %d", tt.path, got, ok, tt.want)
			}
		})
	}
	for _, fake := range []string{"fake", "x", "not", "[x]"} {
		if line, ok := lines[fake]; ok {
			t.Errorf("found key %q on line %d inside a string or comment", fake, line)
		}
	}
}

func TestKeyLinesLookup(t *testing.T) {
	lines := keyLines{"a": 1, "a[0]": 2, `a[0]."x.y"`: 3, "b.c": 4}
	tests := []struct {
		path string
		want int
	}{
		{"a", 1},
		{"a[0].missing", 2},
		{`a[0]."x.y".z`, 3},
		{`a[0]."x.y"[3]`, 3},
		{`a[0]."x\"[.y"`, 2},
		{"a[1].name", 1},
		{"b.c.d", 4},
		{"b.missing", 0},
		{"", 0},
		{`"`, 0},
		{"]", 0},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := lines.lookup(tt.path); got != tt.want {
				t.Errorf("lookup(%q) = %d, want %d", tt.path, got, tt.want)
			}
		})
	}
}

func TestJoinKey(t *testing.T) {
	tests := []struct {
		parent, name, want string
	}{
		{"", "a", "a"},
		{"a", "b_c-d", "a.b_c-d"},
		{"a[1]", "b", "a[1].b"},
		{"a", "b.c", `a."b.c"`},
		{"a", "", `a.""`},
		{"", `say "hi"`, `"say \"hi\""`},
	}
	for _, tt := range tests {
		if got := joinKey(tt.parent, tt.name); got != tt.want {
			t.Errorf("joinKey(%q, %q) = %q, want %q", tt.parent, tt.name, got, tt.want)
		}
	}
}
