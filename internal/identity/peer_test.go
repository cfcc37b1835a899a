package identity

import "testing"

func TestPeerNames(t *testing.T) {
	tests := []struct {
		name              string
		peer              Peer
		tagged            bool
		subject, userPart string
	}{
		{"user", Peer{LoginName: "alice@example.com"}, false, "alice@example.com", "alice"},
		{"user without domain", Peer{LoginName: "bob"}, false, "bob", "bob"},
		{"tagged", Peer{LoginName: TaggedLogin, Tags: []string{"tag:web", "tag:ci"}}, true, "tag:ci,tag:web", "ci"},
		{"tags without login", Peer{Tags: []string{"tag:ci"}}, true, "tag:ci", "ci"},
		{"user with tags stays the user", Peer{LoginName: "carol@example.com", Tags: []string{"tag:x"}}, false, "carol@example.com", "carol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.peer.IsTagged(); got != tt.tagged {
				t.Errorf("IsTagged() = %v, want %v", got, tt.tagged)
			}
			if got := tt.peer.Subject(); got != tt.subject {
				t.Errorf("Subject() = %q, want %q", got, tt.subject)
			}
			if got := tt.peer.UserPart(); got != tt.userPart {
				t.Errorf("UserPart() = %q, want %q", got, tt.userPart)
			}
		})
	}
}

func TestSubjectDoesNotReorderCallerTags(t *testing.T) {
	tags := []string{"tag:z", "tag:a"}
	p := Peer{LoginName: TaggedLogin, Tags: tags}
	p.Subject()
	p.UserPart()
	if tags[0] != "tag:z" {
		t.Errorf("Subject sorted the caller's slice in place: %v", tags)
	}
}
