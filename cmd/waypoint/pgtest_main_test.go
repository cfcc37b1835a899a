package main

import (
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// TestMain stops the shared throwaway PostgreSQL clusters after the tests.
func TestMain(m *testing.M) { pgtest.Main(m) }
