package ctxtime

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  func(t *testing.T) context.Context
		d    time.Duration
		want error
	}{
		{"full wait", func(*testing.T) context.Context { return context.Background() }, time.Millisecond, nil},
		{"zero wait", func(*testing.T) context.Context { return context.Background() }, 0, nil},
		{"already cancelled, even with no wait", func(*testing.T) context.Context { return cancelled }, 0, context.Canceled},
		{"cancelled during a wait that would never end", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			time.AfterFunc(10*time.Millisecond, cancel)
			return ctx
		}, time.Hour, context.Canceled},
		{"deadline before the wait ends", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, time.Hour, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Sleep(tt.ctx(t), tt.d); !errors.Is(err, tt.want) {
				t.Fatalf("Sleep = %v, want %v", err, tt.want)
			}
		})
	}
}
