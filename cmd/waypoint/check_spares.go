package main

import (
	"context"
	"fmt"
	"io"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/provision"
)

// connectionSlots is what a PostgreSQL server offers ordinary roles:
// max_connections minus the slots reserved for superusers and for roles
// with pg_use_reserved_connections (PostgreSQL 16 and later).
type connectionSlots struct {
	Max, SuperuserReserved, Reserved int
}

// ordinary is the number of connections ordinary roles can hold at once.
func (s connectionSlots) ordinary() int {
	return s.Max - s.SuperuserReserved - s.Reserved
}

// spareShareLimit is the largest share of the ordinary connection slots that
// one Waypoint instance's spare backends may take before check -connect
// warns: spares are idle sessions held in advance, and each is a slot a
// client cannot use.
const spareShareLimit = 4 // a quarter

// spareSlotsReport describes how a listener's spare backends (at most
// pg.MaxSpareBackends per Waypoint instance when pg.SpareBackends > 0) fit
// in the server's slots: an informational line, and a warning when they may
// take more than a quarter of the ordinary slots. Both are "" with spares
// off.
func spareSlotsReport(pg *config.Postgres, slots connectionSlots) (info, warn string) {
	if pg.SpareBackends <= 0 || pg.MaxSpareBackends <= 0 {
		return "", ""
	}
	n := slots.ordinary()
	info = fmt.Sprintf("spare backends: up to %d idle sessions per Waypoint instance, of the %d connections this server "+
		"allows ordinary roles (max_connections %d)", pg.MaxSpareBackends, n, slots.Max)
	if pg.MaxSpareBackends*spareShareLimit > n {
		warn = fmt.Sprintf("max_spare_backends = %d may take more than a quarter of the %d connections this server allows "+
			"ordinary roles, on each Waypoint instance; clients are refused with 53300 when the slots run out: "+
			"lower max_spare_backends or raise max_connections", pg.MaxSpareBackends, n)
	}
	return info, warn
}

// readConnectionSlots reads the server's connection limits as the admin
// (connectAdmin).
// reserved_connections reads 0 on servers before PostgreSQL 16, which lack it.
func readConnectionSlots(ctx context.Context, login provision.Options) (connectionSlots, error) {
	conn, err := connectAdmin(ctx, login)
	if err != nil {
		return connectionSlots{}, err
	}
	defer conn.Close(ctx)
	var s connectionSlots
	err = conn.QueryRow(ctx, `SELECT current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int,
		coalesce(current_setting('reserved_connections', true), '0')::int`).Scan(&s.Max, &s.SuperuserReserved, &s.Reserved)
	return s, err
}

// checkSpareSlots prints spareSlotsReport for the listener, or a warning
// when the limits cannot be read.
func checkSpareSlots(ctx context.Context, pg *config.Postgres, login provision.Options, w io.Writer) {
	if pg.SpareBackends <= 0 {
		return
	}
	slots, err := readConnectionSlots(ctx, login)
	if err != nil {
		fmt.Fprintf(w, "  WARN could not read max_connections: %v\n", err)
		return
	}
	info, warn := spareSlotsReport(pg, slots)
	fmt.Fprintf(w, "  %s\n", info)
	if warn != "" {
		fmt.Fprintf(w, "  WARN %s\n", warn)
	}
}
