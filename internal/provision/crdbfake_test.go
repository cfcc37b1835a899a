package provision

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// fakeCRDB is a strict, scripted Postgres-protocol server on loopback that
// reports a CockroachDB version. A scenario lists, in order, every
// statement it expects (matched by prefix or regexp) with the answer to
// send; any other statement fails the test and is answered with an error,
// and statements left unsent at the end fail it too. Statements arrive on
// several connections, but the provisioner sends them one step after
// another, so one ordered script describes them all.
type fakeCRDB struct {
	t  *testing.T
	ln net.Listener

	mu       sync.Mutex
	steps    []step
	pos      int          // the next step
	repeated map[int]bool // loop markers whose group has repeated
	seen     []string     // every statement executed, in order
}

// step is one statement a scenario expects and its answer.
type step struct {
	prefix string         // the statement starts with this (after trimming)...
	re     *regexp.Regexp // ...or matches this
	cols   []column       // result columns; nil: no result set
	rows   [][]any        // result rows (Go values; see encodeValue)
	code   string         // answer with an error of this SQLSTATE instead
	msg    string         // the error's message
	back   int            // a loop marker: the back steps before it may repeat
}

// exec expects a statement starting with prefix and answers without rows.
func exec(prefix string) step { return step{prefix: prefix} }

// query expects a statement starting with prefix and answers with rows.
func query(prefix string, cols []column, rows ...[]any) step {
	return step{prefix: prefix, cols: cols, rows: rows}
}

// matching expects a statement matching the regexp pattern.
func matching(pattern string) step { return step{re: regexp.MustCompile(pattern)} }

// fail expects a statement starting with prefix and answers with an error.
func fail(prefix, code, msg string) step { return step{prefix: prefix, code: code, msg: msg} }

// loop lets the n steps before it repeat, as a group, any number of times.
func loop(n int) step { return step{back: n} }

func (s step) matches(sql string) bool {
	if s.re != nil {
		return s.re.MatchString(sql)
	}
	return strings.HasPrefix(sql, s.prefix)
}

func (s step) String() string {
	if s.re != nil {
		return "/" + s.re.String() + "/"
	}
	return "prefix " + s.prefix
}

// pingSQL is what pgxpool sends to check a connection idle for a second;
// it may come at any time and is always answered.
const pingSQL = "-- ping"

func startFakeCRDB(t *testing.T, script ...step) *fakeCRDB {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCRDB{t: t, ln: ln, steps: script, repeated: map[int]bool{}}
	stop := testkit.Serve(t, ln, func(c net.Conn) { _ = f.serve(c) })
	t.Cleanup(func() {
		stop()
		f.finish()
	})
	return f
}

// finish fails the test when required steps were never sent. A group that
// has repeated may stop anywhere in its last pass (a context ended it).
func (f *fakeCRDB) finish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := f.pos; i < len(f.steps); i++ {
		if f.steps[i].back > 0 || f.inRepeatedLoop(i) {
			continue
		}
		f.t.Errorf("fake CockroachDB: statement %d (%s) never came; statements seen:\n%s", i+1, f.steps[i], strings.Join(f.seen, "\n"))
		return
	}
}

// inRepeatedLoop reports whether step i belongs to a loop group that has
// repeated at least once.
func (f *fakeCRDB) inRepeatedLoop(i int) bool {
	for m := i + 1; m < len(f.steps); m++ {
		if b := f.steps[m].back; b > 0 {
			return m-b <= i && f.repeated[m]
		}
	}
	return false
}

// next consumes the step sql matches and returns it; ok is false (and the
// test fails) when sql is not the statement the script expects next.
func (f *fakeCRDB) next(sql string) (step, bool) {
	sql = strings.TrimSpace(sql)
	f.mu.Lock()
	defer f.mu.Unlock()
	if sql == pingSQL {
		return step{}, true
	}
	f.seen = append(f.seen, sql)
	for f.pos < len(f.steps) && f.steps[f.pos].back > 0 {
		if start := f.pos - f.steps[f.pos].back; f.steps[start].matches(sql) {
			f.repeated[f.pos] = true
			f.pos = start
			break
		}
		f.pos++
	}
	if f.pos >= len(f.steps) || !f.steps[f.pos].matches(sql) {
		want := "nothing more"
		if f.pos < len(f.steps) {
			want = f.steps[f.pos].String()
		}
		f.t.Errorf("fake CockroachDB: unexpected statement %q; want %s", sql, want)
		return step{}, false
	}
	f.pos++
	return f.steps[f.pos-1], true
}

// columns returns the result columns of sql, from the first step not yet
// sent (or in a loop) that it matches, without consuming it. Describe
// comes before execution, even of statements queued after others in a
// pipeline; an unexpected statement is caught when it is executed.
func (f *fakeCRDB) columns(sql string) []column {
	sql = strings.TrimSpace(sql)
	f.mu.Lock()
	defer f.mu.Unlock()
	from := f.pos
	for i := f.pos; i < len(f.steps); i++ {
		if b := f.steps[i].back; b > 0 {
			from = min(from, i-b)
		}
	}
	for _, s := range f.steps[max(from, 0):] {
		if s.back == 0 && s.matches(sql) {
			return s.cols
		}
	}
	return nil
}

// statements returns every statement executed so far.
func (f *fakeCRDB) statements() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
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

// parameterOIDs guesses the types of sql's parameters from their casts.
func parameterOIDs(sql string) []uint32 {
	var oids []uint32
	for i := 1; strings.Contains(sql, "$"+string(rune('0'+i))); i++ {
		p := "$" + string(rune('0'+i))
		switch {
		case strings.Contains(sql, p+"::STRING[]"):
			oids = append(oids, oidTextArray)
		case strings.Contains(sql, p+"::FLOAT8"):
			oids = append(oids, oidFloat8)
		default:
			oids = append(oids, oidText)
		}
	}
	return oids
}

func commandTag(sql string) string {
	word, _, _ := strings.Cut(strings.TrimSpace(sql), " ")
	return strings.ToUpper(word)
}

// startup answers the startup message without authentication.
func startup(c net.Conn, be *pgproto3.Backend) error {
	msg, err := be.ReceiveStartupMessage()
	if _, ok := msg.(*pgproto3.SSLRequest); ok {
		c.Write([]byte("N"))
		_, err = be.ReceiveStartupMessage()
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
	return be.Flush()
}

// conn is the state of one client connection.
type conn struct {
	f         *fakeCRDB
	be        *pgproto3.Backend
	prepared  map[string]string
	portalSQL string
	formats   []int16
	txStatus  byte
	failed    bool // an error was sent: skip to Sync, as a server does
}

// serve speaks just enough of the protocol for pgx: startup without
// authentication, the extended protocol (named and unnamed statements,
// pipelines) and simple queries of one statement.
func (f *fakeCRDB) serve(c net.Conn) error {
	be := pgproto3.NewBackend(c, c)
	if err := startup(c, be); err != nil {
		return err
	}
	s := &conn{f: f, be: be, prepared: map[string]string{}, txStatus: 'I'}
	for {
		msg, err := be.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if _, ok := msg.(*pgproto3.Terminate); ok {
			return nil
		}
		s.handle(msg)
		if err := be.Flush(); err != nil {
			return err
		}
	}
}

func (s *conn) handle(msg pgproto3.FrontendMessage) {
	switch m := msg.(type) {
	case *pgproto3.Parse:
		if !s.failed {
			s.prepared[m.Name] = m.Query
			s.be.Send(&pgproto3.ParseComplete{})
		}
	case *pgproto3.Describe:
		if s.failed {
			break
		}
		sql := s.prepared[m.Name]
		if m.ObjectType == 'P' {
			sql = s.portalSQL
		} else {
			s.be.Send(&pgproto3.ParameterDescription{ParameterOIDs: parameterOIDs(sql)})
		}
		s.be.Send(rowDescription(s.f.columns(sql)))
	case *pgproto3.Bind:
		if !s.failed {
			s.portalSQL, s.formats = s.prepared[m.PreparedStatement], m.ResultFormatCodes
			s.be.Send(&pgproto3.BindComplete{})
		}
	case *pgproto3.Execute:
		if !s.failed {
			s.failed = !s.answer(s.portalSQL, s.formats, false)
		}
	case *pgproto3.Sync:
		s.failed = false
		s.be.Send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus})
	case *pgproto3.Query:
		s.answer(m.String, nil, true)
		s.be.Send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus})
	}
}

// answer sends the scripted answer to sql; it reports false when it sent
// an error.
func (s *conn) answer(sql string, formats []int16, simple bool) bool {
	st, ok := s.f.next(sql)
	if !ok {
		st = step{code: "XX000", msg: "fake CockroachDB: unexpected statement"}
	}
	if st.code != "" {
		s.be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: st.code, Message: st.msg})
		if s.txStatus == 'T' {
			s.txStatus = 'E'
		}
		return false
	}
	if simple && st.cols != nil {
		s.be.Send(rowDescription(st.cols))
	}
	for _, r := range st.rows {
		dr := &pgproto3.DataRow{}
		for i, v := range r {
			bin := len(formats) == 1 && formats[0] == 1 || len(formats) > i && formats[i] == 1
			dr.Values = append(dr.Values, encodeValue(v, bin))
		}
		s.be.Send(dr)
	}
	tag := commandTag(sql)
	s.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	switch tag {
	case "BEGIN":
		s.txStatus = 'T'
	case "COMMIT", "ROLLBACK":
		s.txStatus = 'I'
	}
	return true
}
