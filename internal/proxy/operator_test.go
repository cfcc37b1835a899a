package proxy

import (
	"errors"
	"strings"
	"testing"
)

// TestClientError_Terminated: a session an operator ended tells the client
// 57P01 that an operator did it, and not who.
func TestClientError_Terminated(t *testing.T) {
	err := failMsg(KindTerminated, "", errors.New("terminated by operator ops@example.com via tailnet"))
	told := clientError(err, "c1")
	code, msg, hint := told.Code, told.Message, told.Hint
	if code != "57P01" || !strings.Contains(msg, "terminated by a Waypoint operator") {
		t.Errorf("client gets %s %q, want 57P01 saying an operator terminated the session", code, msg)
	}
	if strings.Contains(msg+hint, "ops@example.com") {
		t.Errorf("client message %q (hint %q) names the operator", msg, hint)
	}
	if !strings.Contains(hint, "c1") {
		t.Errorf("hint %q lacks the connection id", hint)
	}
	if kindOf(err).String() != "terminated" {
		t.Errorf("kind name %q, want terminated", kindOf(err))
	}
}

func TestSessionState(t *testing.T) {
	tests := []struct {
		relaying, stopped, closing bool
		want                       SessionState
	}{
		{false, false, false, StateSettingUp},
		{true, false, false, StateRelaying},
		{true, false, true, StateDraining},
		{false, false, true, StateSettingUp},
		{true, true, false, StateClosing},
		{false, true, true, StateClosing},
	}
	for _, tt := range tests {
		if got := state(tt.relaying, tt.stopped, tt.closing); got != tt.want {
			t.Errorf("state(relaying=%v, stopped=%v, closing=%v) = %q, want %q", tt.relaying, tt.stopped, tt.closing, got, tt.want)
		}
	}
}
