package pgwire

import (
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// TestMain lets tests share throwaway PostgreSQL clusters (pgtest.Shared).
func TestMain(m *testing.M) { pgtest.Main(m) }
