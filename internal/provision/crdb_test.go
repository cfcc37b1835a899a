package provision

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// fakeCRDB is a scripted Postgres-protocol server on loopback that reports
// a CockroachDB version, answers the queries the provisioner sends with
// empty or fixed results, and records every statement it receives.
type fakeCRDB struct {
	ln    net.Listener
	mu    sync.Mutex
	stmts []string
	wg    sync.WaitGroup
	// dependents makes DROP ROLE fail as CockroachDB does for a role that
	// still owns objects (SQLSTATE 2BP01).
	dependents bool
}

func startFakeCRDB(t *testing.T) *fakeCRDB {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCRDB{ln: ln}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeCRDB) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			_ = f.serve(c)
		}()
	}
}

func (f *fakeCRDB) record(sql string) {
	f.mu.Lock()
	f.stmts = append(f.stmts, sql)
	f.mu.Unlock()
}

func (f *fakeCRDB) statements() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.stmts...)
}

// column is one result column of a scripted answer.
type column struct {
	name string
	oid  uint32
}

const (
	oidText        = 25
	oidBool        = 16
	oidTimestamptz = 1184
	oidTextArray   = 1009
	oidFloat8      = 701
)

// answer scripts the result of sql: its columns and rows (as Go values).
func answer(sql string) ([]column, [][]any) {
	switch {
	case sql == crdbExpiredRolesSQL:
		return []column{{"rolname", oidText}, {"record", oidText}}, [][]any{
			{"wp_alice_laptop_appdb", crdbAliceRecord.String()},
			{"other_alice_laptop_appdb", crdbAliceRecord.String()}, // not our prefix
			{"wp_g_appdb_public_readonly", plan.Record{Waypoint: 1, Kind: plan.RecordGroup, Database: "appdb"}.String()},
		}
	case sql == crdbRecheckSQL:
		return []column{{"expired", oidBool}, {"in_use", oidBool}, {"record", oidText}},
			[][]any{{true, false, crdbAliceRecord.String()}}
	case sql == crdbGrantsSQL("wp_alice_laptop_appdb"):
		return []column{{"object_type", oidText}, {"database_name", oidText}, {"schema_name", oidText}, {"object_name", oidText}},
			[][]any{{"table", "appdb", "public", "audit_log"}, {"database", "appdb", "", ""}}
	case sql == membershipsSQL:
		return []column{{"rolname", oidText}}, [][]any{{"wp_g_appdb_public_readonly"}}
	case strings.Contains(sql, "version()"):
		return []column{{"version", oidText}}, [][]any{{"CockroachDB CCL v23.2.0 (x86_64-pc-linux-gnu, built 2024/01/01)"}}
	case strings.Contains(sql, "now()"):
		return []column{{"now", oidTimestamptz}}, [][]any{{time.Now()}}
	case strings.HasPrefix(sql, "SELECT r.rolname"):
		return []column{{"rolname", oidText}, {"record", oidText}, {"has", oidBool}}, nil
	case strings.HasPrefix(sql, "SELECT DISTINCT u.rolname"):
		return []column{{"member", oidText}, {"group", oidText}, {"record", oidText}}, nil
	case strings.HasPrefix(sql, "SELECT role FROM"):
		return []column{{"role", oidText}}, nil
	}
	return nil, nil
}

// crdbAliceRecord is the owner record the fake reports for alice's role.
var crdbAliceRecord = plan.Record{Waypoint: 1, Kind: plan.RecordUser, Subject: "alice@example.com", Node: "n1", Database: "appdb"}

func encodeValue(v any, binaryFormat bool) []byte {
	switch v := v.(type) {
	case bool:
		switch {
		case binaryFormat && v:
			return []byte{1}
		case binaryFormat:
			return []byte{0}
		case v:
			return []byte("t")
		}
		return []byte("f")
	case string:
		return []byte(v)
	case time.Time:
		if !binaryFormat {
			return []byte(v.UTC().Format("2006-01-02 15:04:05.999999") + "+00")
		}
		epoch := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		return binary.BigEndian.AppendUint64(nil, uint64(v.Sub(epoch).Microseconds()))
	}
	return nil
}

func rowDescription(cols []column) pgproto3.BackendMessage {
	if cols == nil {
		return &pgproto3.NoData{}
	}
	rd := &pgproto3.RowDescription{}
	for _, c := range cols {
		rd.Fields = append(rd.Fields, pgproto3.FieldDescription{Name: []byte(c.name), DataTypeOID: c.oid, DataTypeSize: -1, TypeModifier: -1})
	}
	return rd
}

func commandTag(sql string) string {
	word, _, _ := strings.Cut(strings.TrimSpace(sql), " ")
	return strings.ToUpper(word)
}

// serve speaks just enough of the protocol for pgx: startup without
// authentication, the extended protocol (named and unnamed statements,
// pipelines) and simple queries of one statement.
func (f *fakeCRDB) serve(c net.Conn) error {
	be := pgproto3.NewBackend(c, c)
	msg, err := be.ReceiveStartupMessage()
	if _, ok := msg.(*pgproto3.SSLRequest); ok {
		c.Write([]byte("N"))
		msg, err = be.ReceiveStartupMessage()
	}
	if err != nil {
		return err
	}
	be.Send(&pgproto3.AuthenticationOk{})
	for k, v := range map[string]string{"server_version": "13.0.0", "client_encoding": "UTF8",
		"standard_conforming_strings": "on", "DateStyle": "ISO, MDY", "TimeZone": "UTC", "integer_datetimes": "on"} {
		be.Send(&pgproto3.ParameterStatus{Name: k, Value: v})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 1}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := be.Flush(); err != nil {
		return err
	}
	prepared := map[string]string{}
	var portalSQL string
	var formats []int16
	txStatus := byte('I')
	failed := false // an error was sent: skip to Sync, as a server does
	for {
		msg, err := be.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.Parse:
			if failed {
				break
			}
			prepared[m.Name] = m.Query
			f.record(m.Query)
			be.Send(&pgproto3.ParseComplete{})
		case *pgproto3.Describe:
			if failed {
				break
			}
			sql := prepared[m.Name]
			if m.ObjectType == 'P' {
				sql = portalSQL
			} else {
				var oids []uint32
				for i := 1; strings.Contains(sql, "$"+string(rune('0'+i))); i++ {
					if strings.Contains(sql, "$"+string(rune('0'+i))+"::STRING[]") {
						oids = append(oids, oidTextArray)
					} else if strings.Contains(sql, "$"+string(rune('0'+i))+"::FLOAT8") {
						oids = append(oids, oidFloat8)
					} else {
						oids = append(oids, oidText)
					}
				}
				be.Send(&pgproto3.ParameterDescription{ParameterOIDs: oids})
			}
			cols, _ := answer(sql)
			be.Send(rowDescription(cols))
		case *pgproto3.Bind:
			if failed {
				break
			}
			portalSQL, formats = prepared[m.PreparedStatement], m.ResultFormatCodes
			be.Send(&pgproto3.BindComplete{})
		case *pgproto3.Execute:
			if f.dependents && strings.HasPrefix(portalSQL, "DROP ROLE") {
				be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "2BP01", Message: "role cannot be dropped because some objects depend on it"})
				failed = true
				break
			}
			if !failed {
				txStatus = sendRows(be, portalSQL, formats, txStatus)
			}
		case *pgproto3.Sync:
			failed = false
			be.Send(&pgproto3.ReadyForQuery{TxStatus: txStatus})
		case *pgproto3.Query:
			f.record(m.String)
			if f.dependents && strings.HasPrefix(m.String, "DROP ROLE") {
				be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "2BP01", Message: "role cannot be dropped because some objects depend on it"})
				be.Send(&pgproto3.ReadyForQuery{TxStatus: txStatus})
				break
			}
			cols, _ := answer(m.String)
			if cols != nil {
				be.Send(rowDescription(cols))
			}
			txStatus = sendRows(be, m.String, nil, txStatus)
			be.Send(&pgproto3.ReadyForQuery{TxStatus: txStatus})
		case *pgproto3.Terminate:
			return nil
		}
		if err := be.Flush(); err != nil {
			return err
		}
	}
}

// sendRows sends sql's scripted rows and CommandComplete; it returns the
// transaction status after sql.
func sendRows(be *pgproto3.Backend, sql string, formats []int16, tx byte) byte {
	_, rows := answer(sql)
	for _, r := range rows {
		dr := &pgproto3.DataRow{}
		for i, v := range r {
			bin := len(formats) == 1 && formats[0] == 1 || len(formats) > i && formats[i] == 1
			dr.Values = append(dr.Values, encodeValue(v, bin))
		}
		be.Send(dr)
	}
	tag := commandTag(sql)
	be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	switch tag {
	case "BEGIN":
		return 'T'
	case "COMMIT", "ROLLBACK":
		return 'I'
	}
	return tx
}

// TestCockroachDB_NoAdvisoryLocks provisions against a fake CockroachDB and
// checks the dialect: lock rows instead of advisory locks, owner records in
// a table instead of role comments.
func TestCockroachDB_NoAdvisoryLocks(t *testing.T) {
	f := startFakeCRDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := New(ctx, Options{AdminConnString: "postgres://admin:pw@" + f.ln.Addr().String() + "/defaultdb?sslmode=disable"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer p.Close()
	if !p.IsCockroachDB() {
		t.Fatalf("dialect: got PostgreSQL, want CockroachDB")
	}
	eff := authz.Effective{Database: "appdb", Preset: authz.Readonly, Schemas: authz.SchemaGrants(authz.Readonly, "public")}
	l, err := p.Ensure(ctx, peer("alice@example.com", "laptop", "n1"), eff)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if l.Role != "wp_alice_laptop_appdb" || l.Password == "" {
		t.Errorf("lease: got role %q, password set %v", l.Role, l.Password != "")
	}
	l.Release()
	all := strings.Join(f.statements(), "\n")
	for _, unwanted := range []string{"pg_advisory", "COMMENT ON ROLE", "SET LOCAL", "NOSUPERUSER", "DO $", "public.waypoint"} {
		if strings.Contains(all, unwanted) {
			t.Errorf("statements contain %q:\n%s", unwanted, all)
		}
	}
	for _, want := range []string{
		"FROM waypoint.role_locks WHERE role = ANY($1::STRING[]) ORDER BY role FOR UPDATE",
		`UPSERT INTO "defaultdb".waypoint.role_records (role, record) VALUES ('wp_alice_laptop_appdb'`,
		`GRANT "wp_users" TO "wp_alice_laptop_appdb"`,
		`CREATE ROLE "wp_alice_laptop_appdb" WITH LOGIN`,
		`GRANT "wp_g_appdb_public_readonly" TO "wp_alice_laptop_appdb"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("statements lack %q:\n%s", want, all)
		}
	}
}

// newFakeCRDBProvisioner connects a Provisioner to a fake CockroachDB.
func newFakeCRDBProvisioner(t *testing.T) (*fakeCRDB, *Provisioner) {
	f := startFakeCRDB(t)
	p, err := New(testCtx(t), Options{AdminConnString: "postgres://admin:pw@" + f.ln.Addr().String() + "/defaultdb?sslmode=disable"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Close)
	return f, p
}

// TestCockroachDB_Cleanup cleans up an idle Waypoint role on the fake with
// CockroachDB statements: lock row FOR UPDATE NOWAIT, SHOW CLUSTER SESSIONS,
// deactivation (NOLOGIN, memberships and every privilege from SHOW GRANTS
// revoked), DROP ROLE and the record row deleted. Objects are never
// reassigned (no REASSIGN OWNED, no DROP OWNED: a user's table keeps its
// rows and is never the admin's). Other prefixes and group roles are
// untouched.
func TestCockroachDB_Cleanup(t *testing.T) {
	f, p := newFakeCRDBProvisioner(t)
	res, err := p.Cleanup(testCtx(t))
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if got := strings.Join(res.Dropped, ","); got != "wp_alice_laptop_appdb" || res.Errors != 0 {
		t.Errorf("Cleanup result: got dropped %q, %d errors; want wp_alice_laptop_appdb, 0", got, res.Errors)
	}
	stmts := f.statements()
	all := strings.Join(stmts, "\n")
	for _, unwanted := range []string{"pg_advisory", "pg_stat_activity", "TO CURRENT_USER", "other_alice", `DROP ROLE "wp_g_`, "REASSIGN", "DROP OWNED"} {
		if strings.Contains(all, unwanted) {
			t.Errorf("statements contain %q:\n%s", unwanted, all)
		}
	}
	want := []string{
		"INSERT INTO waypoint.role_locks (role) VALUES ($1) ON CONFLICT DO NOTHING",
		"SELECT role FROM waypoint.role_locks WHERE role = $1 FOR UPDATE NOWAIT",
		crdbRecheckSQL,
		`ALTER ROLE "wp_alice_laptop_appdb" WITH NOLOGIN PASSWORD NULL`,
		`REVOKE "wp_g_appdb_public_readonly" FROM "wp_alice_laptop_appdb"`,
		crdbGrantsSQL("wp_alice_laptop_appdb"),
		`REVOKE ALL ON TABLE "appdb"."public"."audit_log" FROM "wp_alice_laptop_appdb"`,
		`REVOKE ALL ON DATABASE "appdb" FROM "wp_alice_laptop_appdb"`,
		`DROP ROLE "wp_alice_laptop_appdb"`,
		"DELETE FROM waypoint.role_records WHERE role = $1",
		"commit",
	}
	if err := inOrder(stmts, want); err != nil {
		t.Errorf("%v; statements:\n%s", err, all)
	}
}

// TestCockroachDB_CleanupKeepsOwner: when CockroachDB refuses DROP ROLE
// because the role owns objects, the role stays deactivated with its record
// marked inactive; nothing is reassigned.
func TestCockroachDB_CleanupKeepsOwner(t *testing.T) {
	f, p := newFakeCRDBProvisioner(t)
	f.mu.Lock()
	f.dependents = true
	f.mu.Unlock()
	res, err := p.Cleanup(testCtx(t))
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if got := strings.Join(res.Deactivated, ","); got != "wp_alice_laptop_appdb" || len(res.Dropped) != 0 || res.Errors != 0 {
		t.Errorf("Cleanup result: got deactivated %q, dropped %q, %d errors; want wp_alice_laptop_appdb, none, 0", got, res.Dropped, res.Errors)
	}
	all := strings.Join(f.statements(), "\n")
	if strings.Contains(all, "REASSIGN") || strings.Contains(all, "DROP OWNED") || strings.Contains(all, "DELETE FROM waypoint.role_records") {
		t.Errorf("statements reassign, drop objects or forget the record:\n%s", all)
	}
	if !strings.Contains(all, "UPSERT INTO waypoint.role_records (role, record) VALUES ($1, $2)") {
		t.Errorf("statements lack the inactive record:\n%s", all)
	}
}

// inOrder checks that want occur in stmts in this order (each matched by
// case-insensitive equality, other statements in between allowed).
func inOrder(stmts, want []string) error {
	i := 0
	for _, s := range stmts {
		if i < len(want) && strings.EqualFold(strings.TrimSpace(s), want[i]) {
			i++
		}
	}
	if i < len(want) {
		return fmt.Errorf("statement %q (number %d of %d wanted) missing or out of order", want[i], i+1, len(want))
	}
	return nil
}

// TestCockroachDB_TouchAndTerminate: Touch records use in the lock table and
// never extends VALID UNTIL; Terminate is refused (no process IDs there).
func TestCockroachDB_TouchAndTerminate(t *testing.T) {
	f, p := newFakeCRDBProvisioner(t)
	if err := p.Touch(testCtx(t), []string{"wp_alice_laptop_appdb", "postgres"}); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	all := strings.Join(f.statements(), "\n")
	if !strings.Contains(all, crdbTouchSQL) || strings.Contains(all, "VALID UNTIL") || strings.Contains(all, "DO $") {
		t.Errorf("Touch statements: want %q, no VALID UNTIL and no DO block:\n%s", crdbTouchSQL, all)
	}
	if err := p.Terminate(testCtx(t), 42); err == nil {
		t.Errorf("Terminate on CockroachDB: got nil error, want unsupported")
	}
}
