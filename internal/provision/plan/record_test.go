package plan

import "testing"

func TestResolveName(t *testing.T) {
	want := Record{Waypoint: 1, Kind: RecordUser, Subject: "a@x", Node: "n1", Database: "db"}
	other := want
	other.Subject = "b@x"
	mine := RoleInfo{Record: want, Ours: true}
	theirs := RoleInfo{Record: other, Ours: true}
	foreign := RoleInfo{}
	tests := []struct {
		name       string
		found      map[string]RoleInfo
		wantName   string
		wantExists bool
		wantKind   ErrorKind
	}{
		{"free", map[string]RoleInfo{}, "p", false, 0},
		{"ours", map[string]RoleInfo{"p": mine}, "p", true, 0},
		{"ours after clash", map[string]RoleInfo{"p": theirs, "a": mine}, "a", true, 0},
		{"clash, alternate free", map[string]RoleInfo{"p": theirs}, "a", false, 0},
		{"primary free again, alternate ours", map[string]RoleInfo{"a": mine}, "a", true, 0},
		{"primary ours, alternate also ours", map[string]RoleInfo{"p": mine, "a": mine}, "p", true, 0},
		{"foreign role", map[string]RoleInfo{"p": foreign}, "", false, Clash},
		{"foreign role, alternate ours", map[string]RoleInfo{"p": foreign, "a": mine}, "a", true, 0},
		{"both taken", map[string]RoleInfo{"p": theirs, "a": theirs}, "", false, Clash},
		{"alternate foreign", map[string]RoleInfo{"p": theirs, "a": foreign}, "", false, Clash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, exists, err := ResolveName("p", "a", want, tt.found)
			if KindOf(err) != tt.wantKind || name != tt.wantName || exists != tt.wantExists {
				t.Errorf("got (%q, %v, %v), want (%q, %v, kind %v)", name, exists, err, tt.wantName, tt.wantExists, tt.wantKind)
			}
		})
	}
}

func TestParseRecord(t *testing.T) {
	group := Record{Waypoint: 1, Kind: RecordGroup, Database: "db", Schema: "s", Preset: "readonly"}
	user := Record{Waypoint: 1, Kind: RecordUser, Subject: "a@x", Node: "n", Database: "db", State: StateInactive}
	tests := []struct {
		name    string
		comment string
		want    Record
		ok      bool
	}{
		{"group", group.String(), group, true},
		{"user", user.String(), user, true},
		{"empty", "", Record{}, false},
		{"prose", "app service account", Record{}, false},
		{"other version", `{"waypoint":2,"kind":"user"}`, Record{}, false},
		{"other kind", `{"waypoint":1,"kind":"other"}`, Record{}, false},
		{"users group", UsersRecord, Record{}, false},
		{"truncated", `{"waypoint":1`, Record{}, false},
		{"leading space", " " + user.String(), Record{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseRecord(tt.comment)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("ParseRecord(%q): got %+v, %v; want %+v, %v", tt.comment, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRecordSameOwner(t *testing.T) {
	base := Record{Waypoint: 1, Kind: RecordUser, Subject: "a@x", Node: "n1", Machine: "m", Database: "db", Preset: "readonly"}
	with := func(f func(*Record)) Record { r := base; f(&r); return r }
	tests := []struct {
		name  string
		other Record
		same  bool
	}{
		{"equal", base, true},
		{"SQL hash differs", with(func(r *Record) { r.SQL = "abc" }), true},
		{"grant hash differs", with(func(r *Record) { r.Grant = "abc" }), true},
		{"inactive", with(func(r *Record) { r.State = StateInactive }), true},
		{"machine renamed", with(func(r *Record) { r.Machine = "m2" }), true},
		{"other subject", with(func(r *Record) { r.Subject = "b@x" }), false},
		{"other node", with(func(r *Record) { r.Node = "n2" }), false},
		{"other database", with(func(r *Record) { r.Database = "db2" }), false},
		{"other preset", with(func(r *Record) { r.Preset = "" }), false},
		{"group", with(func(r *Record) { r.Kind = RecordGroup }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := base.SameOwner(tt.other); got != tt.same {
				t.Errorf("SameOwner: got %v, want %v", got, tt.same)
			}
		})
	}
}

func TestNewRoleInfo(t *testing.T) {
	rec := Record{Waypoint: 1, Kind: RecordUser, Subject: "a@x", Database: "db"}
	tests := []struct {
		name     string
		comment  string
		adminHas bool
		want     RoleInfo
	}{
		{"ours", rec.String(), true, RoleInfo{Record: rec, Ours: true, Comment: rec.String(), AdminHas: true}},
		{"foreign", "hand-made", false, RoleInfo{Comment: "hand-made"}},
		{"no comment", "", true, RoleInfo{AdminHas: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewRoleInfo(tt.comment, tt.adminHas); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
