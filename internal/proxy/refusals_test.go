package proxy

import (
	"errors"
	"fmt"
	"testing"
)

func TestRefusals_KeepsTheNewest(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		added   int
		wantIDs []string
	}{
		{"empty", 3, 0, []string{}},
		{"partly filled", 3, 2, []string{"c1", "c0"}},
		{"exactly full", 3, 3, []string{"c2", "c1", "c0"}},
		{"wrapped", 3, 7, []string{"c6", "c5", "c4"}},
		{"default size", 0, DefaultRefusals + 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRefusals(tt.size)
			for i := range tt.added {
				r.add(Refusal{ID: fmt.Sprintf("c%d", i)})
			}
			got := r.Recent()
			if tt.wantIDs == nil {
				if len(got) != DefaultRefusals || got[0].ID != fmt.Sprintf("c%d", DefaultRefusals) {
					t.Errorf("got %d refusals, newest %v; want %d, newest c%d", len(got), got[0].ID, DefaultRefusals, DefaultRefusals)
				}
				return
			}
			ids := []string{}
			for _, ref := range got {
				ids = append(ids, ref.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.wantIDs) {
				t.Errorf("Recent IDs = %v, want %v", ids, tt.wantIDs)
			}
		})
	}
}

func TestRefusals_NilIsSafe(t *testing.T) {
	var r *Refusals
	r.add(Refusal{ID: "x"})
	if got := r.Recent(); got != nil {
		t.Errorf("nil Refusals reported %v", got)
	}
}

// TestNoteRefusal: what a refusal records is what the client is told, and
// nothing internal.
func TestNoteRefusal(t *testing.T) {
	s := &Server{opts: Options{Listener: "pg-main", Refusals: NewRefusals(4)}}
	sess := &session{id: "c1", remote: "100.64.0.9:4242"}
	s.noteRefusal(sess, failMsg(KindLimit, "too many connections for alice", errors.New("coord: 2 of 2 held")))
	s.noteRefusal(sess, nil) // not refused
	got := s.opts.Refusals.Recent()
	if len(got) != 1 {
		t.Fatalf("got %d refusals, want 1", len(got))
	}
	r := got[0]
	if r.ID != "c1" || r.Listener != "pg-main" || r.ClientAddr != "100.64.0.9:4242" || r.Reason != "limit" ||
		r.SQLState != "53300" || r.Message != "too many connections for alice" || r.Time.IsZero() {
		t.Errorf("refusal = %+v", r)
	}
}
