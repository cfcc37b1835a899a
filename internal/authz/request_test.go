package authz

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestPostgresPresetLimitFromStartup checks every way a client can ask for a
// per-connection preset limit in its startup parameters.
func TestPostgresPresetLimitFromStartup(t *testing.T) {
	tests := []struct {
		name        string
		params      map[string]string
		want        Preset
		wantPresent bool
	}{
		{name: "nothing", params: map[string]string{"user": "x", "database": "appdb"}},
		{name: "nil params", params: nil},
		{name: "options without request", params: map[string]string{"options": "-c search_path=app"}},
		{name: "startup parameter", params: map[string]string{"waypoint_presets": "readonly"}, want: Readonly, wantPresent: true},
		{name: "dotted startup parameter", params: map[string]string{"waypoint.presets": "readwrite"}, want: Readwrite, wantPresent: true},
		{name: "parameter name case-insensitive", params: map[string]string{"Waypoint_Presets": "readonly"}, want: Readonly, wantPresent: true},
		{name: "value case-insensitive", params: map[string]string{"waypoint_presets": "ADMIN"}, want: Admin, wantPresent: true},
		{name: "comma list: strongest is the maximum", params: map[string]string{"waypoint_presets": "readonly,readwrite"}, want: Readwrite, wantPresent: true},
		{name: "comma list with whitespace and duplicates", params: map[string]string{"waypoint_presets": " readonly , admin,readonly "}, want: Admin, wantPresent: true},
		{name: "options -c with space", params: map[string]string{"options": "-c waypoint_presets=readonly"}, want: Readonly, wantPresent: true},
		{name: "options -c dotted", params: map[string]string{"options": "-c waypoint.presets=readwrite"}, want: Readwrite, wantPresent: true},
		{name: "options -c attached", params: map[string]string{"options": "-cwaypoint_presets=readonly"}, want: Readonly, wantPresent: true},
		{name: "options long form", params: map[string]string{"options": "--waypoint_presets=readonly"}, want: Readonly, wantPresent: true},
		{name: "options long dotted", params: map[string]string{"options": "--waypoint.presets=readonly"}, want: Readonly, wantPresent: true},
		{name: "options dashes in name", params: map[string]string{"options": "--waypoint-presets=readonly"}, want: Readonly, wantPresent: true},
		{name: "options among others", params: map[string]string{"options": "-c search_path=app  -c waypoint_presets=readonly\t-c work_mem=4MB"}, want: Readonly, wantPresent: true},
		{name: "options escaped space in list", params: map[string]string{"options": `-c waypoint_presets=readonly,\ readwrite`}, want: Readwrite, wantPresent: true},
		{name: "several occurrences: weakest maximum wins", params: map[string]string{"waypoint_presets": "admin", "options": "-c waypoint.presets=readonly"}, want: Readonly, wantPresent: true},
		{name: "other settings named alike are not requests", params: map[string]string{"options": "-c waypoint_presets_x=admin -c xwaypoint.presets=admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, present, err := PresetRequest(tt.params)
			if err != nil {
				t.Fatalf("PresetRequest(%q): got error %v, want %q", tt.params, err, tt.want)
			}
			if got != tt.want || present != tt.wantPresent {
				t.Errorf("PresetRequest(%q) = %q, %v; want %q, %v", tt.params, got, present, tt.want, tt.wantPresent)
			}
		})
	}
}

func TestPresetRequestErrors(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   string // substring of the error
	}{
		{name: "empty value", params: map[string]string{"waypoint_presets": ""}, want: "empty value"},
		{name: "blank value", params: map[string]string{"waypoint_presets": "  "}, want: "empty value"},
		{name: "unknown name", params: map[string]string{"waypoint_presets": "readonly,superuser"}, want: `unknown preset "superuser"`},
		{name: "empty list item", params: map[string]string{"waypoint_presets": "readonly,"}, want: "empty preset name"},
		{name: "options without value", params: map[string]string{"options": "-c waypoint_presets"}, want: `options item "waypoint_presets": empty value`},
		{name: "options empty value", params: map[string]string{"options": "--waypoint.presets="}, want: "empty value"},
		{name: "options unknown", params: map[string]string{"options": "-c waypoint.presets=root"}, want: `unknown preset "root"`},
		{name: "long value shortened", params: map[string]string{"waypoint_presets": strings.Repeat("x", 500)}, want: `"...`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, present, err := PresetRequest(tt.params)
			if err == nil {
				t.Fatalf("PresetRequest(%q) = %q, %v; want an error", tt.params, got, present)
			}
			if !errors.Is(err, ErrPresetRequest) {
				t.Errorf("got error %v, want one wrapping ErrPresetRequest", err)
			}
			if !present {
				t.Errorf("got present false with an error, want true")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to contain %q", err, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("got a %d-byte error, want a short one", len(err.Error()))
			}
			msg := err.Error()
			if n := strings.Count(msg, "invalid waypoint_presets request"); n != 1 {
				t.Errorf("got %q, which says \"invalid waypoint_presets request\" %d times, want once", msg, n)
			}
			if want := "; valid values are readonly, readwrite and admin, or a comma-separated list of them (the strongest listed applies)"; !strings.HasSuffix(msg, want) {
				t.Errorf("got %q, want it to end with what is valid: %q", msg, want)
			}
			if strings.Count(msg, "readonly, readwrite") != 1 || strings.Contains(msg, "(want") {
				t.Errorf("got %q, want the valid presets listed once", msg)
			}
		})
	}
}

func TestStripPresetRequest(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   map[string]string
	}{
		{name: "nil", params: nil, want: map[string]string{}},
		{name: "nothing to strip", params: map[string]string{"user": "u", "options": "-c  a=b"}, want: map[string]string{"user": "u", "options": "-c  a=b"}},
		{
			name:   "parameters removed",
			params: map[string]string{"user": "u", "waypoint_presets": "readonly", "WAYPOINT.PRESETS": "admin", "application_name": "psql"},
			want:   map[string]string{"user": "u", "application_name": "psql"},
		},
		{name: "options emptied is dropped", params: map[string]string{"options": " -c waypoint.presets=readonly "}, want: map[string]string{}},
		{
			name:   "other options kept as written",
			params: map[string]string{"options": `-c search_path=a\ b -c waypoint_presets=readonly --work_mem=4MB -cwaypoint.presets=admin -c statement_timeout=5s`},
			want:   map[string]string{"options": `-c search_path=a\ b --work_mem=4MB -c statement_timeout=5s`},
		},
		{name: "long and dashed forms", params: map[string]string{"options": "--waypoint-presets=readonly -B 8"}, want: map[string]string{"options": "-B 8"}},
		{name: "invalid request stripped too", params: map[string]string{"options": "-c waypoint_presets=bogus", "waypoint_presets": ""}, want: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before map[string]string
			if tt.params != nil {
				before = make(map[string]string)
				for k, v := range tt.params {
					before[k] = v
				}
			}
			got := StripPresetRequest(tt.params)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("StripPresetRequest(%q) = %q, want %q", tt.params, got, tt.want)
			}
			if !reflect.DeepEqual(tt.params, before) {
				t.Errorf("StripPresetRequest modified its input: got %q, want %q", tt.params, before)
			}
			if _, present, _ := PresetRequest(got); present {
				t.Errorf("PresetRequest(StripPresetRequest(%q)): got present, want nothing left", tt.params)
			}
		})
	}
}

func TestSplitOptions(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{in: "", want: nil},
		{in: "   ", want: nil},
		{in: "-c a=b", want: []string{"-c", "a=b"}},
		{in: " \t-c\na=b\r\v\f x ", want: []string{"-c", "a=b", "x"}},
		{in: `a\ b c`, want: []string{"a b", "c"}},
		{in: `a\\b`, want: []string{`a\b`}},
		{in: `a\`, want: []string{"a"}},
		{in: `\x`, want: []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got []string
			for _, w := range splitOptions(tt.in) {
				got = append(got, w.text)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitOptions(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestOptionSettings(t *testing.T) {
	tests := []struct {
		opts   string
		want   [][2]string
		wantOK bool
	}{
		{"", nil, true},
		{"-c DateStyle=ISO,DMY", [][2]string{{"DateStyle", "ISO,DMY"}}, true},
		{"-cwork_mem=8MB --statement-timeout=5s", [][2]string{{"work_mem", "8MB"}, {"statement_timeout", "5s"}}, true},
		{`-c search_path=a,\ b`, [][2]string{{"search_path", "a, b"}}, true},
		{"-c application_name=x -c application_name=y", [][2]string{{"application_name", "x"}, {"application_name", "y"}}, true},
		{"-d 5", nil, false},
		{"-c work_mem=1MB -B 100", nil, false},
		{"-c novalue", nil, false},
		{"-c", nil, false},
	}
	for _, tt := range tests {
		got, ok := OptionSettings(tt.opts)
		if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("OptionSettings(%q): got %q, %v; want %q, %v", tt.opts, got, ok, tt.want, tt.wantOK)
		}
	}
}
