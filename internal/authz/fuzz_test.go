package authz

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// FuzzParseGrants feeds arbitrary bytes as a capability value: ParseGrants
// and Decide must never panic, must agree on whether the grant is valid, and
// every Effective must satisfy its documented invariants. Seeds are in
// testdata/fuzz/FuzzParseGrants.
func FuzzParseGrants(f *testing.F) {
	f.Add([]byte(`[{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readwrite"],"schemas":["public","app"],"sql":["GRANT INSERT ON public.audit_log TO {{.Role}}"]},"*":{"permissions":["readonly"]}}}}}}]`))
	f.Add([]byte(`{"limits":{"max_conns":10,"max_conn_duration":"1h","max_bytes_per_conn":"10GB"}}`))
	f.Add([]byte(`[{"limits":{"max_conn_duration":1.5e3,"max_bytes_per_conn":"1.5GiB"}},null]`))
	f.Add([]byte(`[{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["Admin"]}}}}}}]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[1]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		caps := []json.RawMessage{data}
		_, parseErr := ParseGrants(caps)
		if parseErr != nil && !errors.Is(parseErr, ErrBadGrant) {
			t.Fatalf("ParseGrants error %v does not wrap ErrBadGrant", parseErr)
		}
		peer := identity.Peer{LoginName: "alice@example.com", MachineName: "laptop", Caps: caps}
		for _, db := range []string{"appdb", "*", ""} {
			for _, maxPreset := range []Preset{"", Readonly, Admin} {
				for _, raw := range []bool{false, true} {
					req := Request{Listener: "pg-main", Database: db, MaxPreset: maxPreset}
					eff, err := Decide(peer, req, Policy{AllowRawSQL: raw})
					checkDecision(t, req, eff, err, parseErr)
				}
			}
		}
	})
}

// checkDecision fails t unless one Decide result is consistent with its
// request and with whether ParseGrants accepted the same capability.
func checkDecision(t *testing.T, req Request, eff Effective, err, parseErr error) {
	t.Helper()
	if err != nil {
		var d *Denial
		if !errors.As(err, &d) {
			t.Fatalf("Decide error %v is not a *Denial", err)
		}
		_, _ = d.Error(), d.ClientMessage()
		if (d.Reason == BadGrant) != (parseErr != nil) {
			t.Fatalf("Decide reason %v disagrees with ParseGrants error %v", d.Reason, parseErr)
		}
		return
	}
	if parseErr != nil {
		t.Fatalf("Decide granted %+v although ParseGrants failed: %v", eff, parseErr)
	}
	if !eff.Preset.Valid() {
		t.Fatalf("got invalid preset %q", eff.Preset)
	}
	names := eff.SchemaNames()
	if len(names) == 0 || !sort.StringsAreSorted(names) {
		t.Fatalf("got schemas %q, want a non-empty sorted list", names)
	}
	strongest := Preset("")
	for i, s := range eff.Schemas {
		if i > 0 && s.Schema == eff.Schemas[i-1].Schema {
			t.Fatalf("got duplicate schema in %q", names)
		}
		if !s.Preset.Valid() || (req.MaxPreset != "" && s.Preset.rank() > req.MaxPreset.rank()) {
			t.Fatalf("schema %q got preset %q (request %q)", s.Schema, s.Preset, req.MaxPreset)
		}
		strongest = stronger(strongest, s.Preset)
	}
	if strongest != eff.Preset {
		t.Fatalf("got Preset %q, want the strongest schema preset %q", eff.Preset, strongest)
	}
	if req.MaxPreset != "" && (!eff.PresetLimited || len(eff.SQL) > 0 || eff.Preset.rank() > req.MaxPreset.rank()) {
		t.Fatalf("preset-limited request %q got %+v", req.MaxPreset, eff)
	}
	if eff.Listener != req.Listener || eff.Database != req.Database {
		t.Fatalf("got target %q/%q, want %q/%q", eff.Listener, eff.Database, req.Listener, req.Database)
	}
}

// FuzzPresetRequest feeds arbitrary startup parameters: PresetRequest must
// never panic, and StripPresetRequest must remove exactly the request.
// Seeds are in testdata/fuzz/FuzzPresetRequest.
func FuzzPresetRequest(f *testing.F) {
	f.Add("waypoint_presets", "readonly,readwrite", "")
	f.Add("application_name", "psql", "-c waypoint.presets=readonly -c search_path=app")
	f.Add("user", "x", `--waypoint-presets=admin\ ,readonly -cwork_mem=4MB`)
	f.Add("WAYPOINT.PRESETS", "", `-c`)
	f.Fuzz(func(t *testing.T, key, value, options string) {
		params := map[string]string{key: value, optionsParam: options}
		got, present, err := PresetRequest(params)
		switch {
		case err != nil:
			if !present || !errors.Is(err, ErrPresetRequest) {
				t.Fatalf("PresetRequest: error %v with present=%v, want present and ErrPresetRequest", err, present)
			}
		case present && !got.Valid():
			t.Fatalf("PresetRequest = %q, present; want a valid preset", got)
		case !present && got != "":
			t.Fatalf("PresetRequest = %q, not present; want \"\"", got)
		}
		stripped := StripPresetRequest(params)
		if _, again, _ := PresetRequest(stripped); again {
			t.Fatalf("StripPresetRequest(%q) = %q still holds a request", params, stripped)
		}
		if !present && !reflect.DeepEqual(stripped, params) {
			t.Fatalf("StripPresetRequest(%q) = %q, want it unchanged (no request)", params, stripped)
		}
		for k := range stripped {
			if isPresetName(k) {
				t.Fatalf("StripPresetRequest left parameter %q", k)
			}
		}
	})
}
