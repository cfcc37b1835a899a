package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// SQLSTATEs the provisioning transaction classifies.
const (
	sqlstateInsufficientPrivilege = "42501"
	sqlstateInvalidSchemaName     = "3F000"
	sqlstateUndefinedTable        = "42P01"
	sqlstateUndefinedObject       = "42704"
	sqlstateInvalidCatalogName    = "3D000"
	sqlstateDuplicateObject       = "42710"
	sqlstateUniqueViolation       = "23505"
	sqlstateSerialization         = "40001"
	sqlstateDeadlock              = "40P01"
	sqlstateInternal              = "XX000" // "tuple concurrently updated"
	sqlstatePrivilegeNotGranted   = "01007" // warning: no/not all privileges were granted
	sqlstateDivisionByZero        = "22012" // leaseLock.acquireSQL: a lease is held by another
	sqlstateDuplicateSchema       = "42P06"
	sqlstateDuplicateTable        = "42P07"
	sqlstateDependentObjects      = "2BP01" // DROP ROLE: the role still owns objects or holds privileges
	sqlstateLockNotAvailable      = "55P03" // lock_timeout, or NOWAIT
)

// verifier hashes password the way the server stores it.
func (p *Provisioner) verifier(password, role string) (string, error) {
	if p.md5 {
		return md5Verifier(password, role), nil
	}
	return scramVerifier(password, p.opts.SCRAMIterations)
}

// apply runs pl in one transaction on a connection to pl.Database: one
// round trip for BEGIN and every statement, one for COMMIT. When the server
// warns that a privilege was not granted (the admin holds it without GRANT
// OPTION), it checks what each group effectively holds and rolls back if
// anything is missing.
func (p *Provisioner) apply(ctx context.Context, pl *plan.Plan) error {
	steps, err := pl.Steps(p.dialect)
	if err != nil {
		return err
	}
	leave, err := p.takeTurn(ctx, pl.Database)
	if err != nil {
		return err
	}
	defer leave()
	conn, err := p.workConn(ctx, pl.Database)
	if err != nil {
		return err
	}
	defer conn.Release()
	pc := conn.Conn().PgConn()
	stop := p.watchNotices(pc)
	if pl.Fingerprint != nil {
		// Prepared once per connection (pgx remembers it), so the query is
		// not planned on every provisioning.
		if _, err := conn.Conn().Prepare(ctx, fingerprintStmt, plan.ObjectsFingerprintSQL); err != nil {
			stop()
			return classifyPG("prepare objects fingerprint", "", err)
		}
	}
	batch := &pgconn.Batch{}
	batch.ExecParams("BEGIN", nil, nil, nil, nil)
	for _, s := range steps {
		if s.FP {
			batch.ExecPrepared(fingerprintStmt, [][]byte{textArray(pl.Fingerprint)}, nil, nil)
			continue
		}
		batch.ExecParams(s.SQL, nil, nil, nil, nil)
	}
	results, err := pc.ExecBatch(ctx, batch).ReadAll()
	notices := stop()
	if err != nil {
		rollback(ctx, conn)
		return p.classifyStep(ctx, conn, steps, failedStep(results), err)
	}
	if hasWarning(notices, sqlstatePrivilegeNotGranted) {
		if err := p.verifyGroups(ctx, conn, pl); err != nil {
			rollback(ctx, conn)
			return err
		}
	}
	if _, err := pc.Exec(ctx, "COMMIT").ReadAll(); err != nil {
		rollback(ctx, conn)
		return classifyPG("commit", "", err)
	}
	pl.ObjectsFP = fingerprintResult(steps, results)
	return nil
}

// workConn acquires an admin connection to database. A database that does
// not exist is forgotten (its pool and turn), so that names clients made up
// do not accumulate pools.
func (p *Provisioner) workConn(ctx context.Context, database string) (*pgxpool.Conn, error) {
	pool, err := p.workPool(database)
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		err = classifyConnect(database, err)
		if KindOf(err) == MissingObject {
			p.dropPool(database, pool)
			p.dbTurns.Delete(database)
		}
		return nil, err
	}
	return conn, nil
}

// takeTurn serializes, within this process, the transactions that grant
// in database: concurrent GRANTs on the same objects otherwise fail with
// "tuple concurrently updated". (Between instances, such a conflict is
// retried; see applyLocked.) The wait is bounded by ctx; call leave when
// done. It is an in-process mutex, not a database lock: nothing a user
// does can hold it.
func (p *Provisioner) takeTurn(ctx context.Context, database string) (leave func(), err error) {
	v, _ := p.dbTurns.LoadOrStore(database, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, backendErr("wait for another provisioning in database "+database, ctx.Err())
	}
}

// fingerprintResult returns the objects fingerprint the transaction read,
// or "" (results[0] is BEGIN).
func fingerprintResult(steps []plan.Step, results []*pgconn.Result) string {
	for i, s := range steps {
		if s.FP && i+1 < len(results) && len(results[i+1].Rows) == 1 && len(results[i+1].Rows[0]) == 1 {
			return string(results[i+1].Rows[0][0])
		}
	}
	return ""
}

// failedStep returns the index in steps of the statement that failed
// (results[0] is BEGIN; the reader stops at the failing statement, which
// may or may not be among results).
func failedStep(results []*pgconn.Result) int {
	for i, r := range results {
		if r.Err != nil {
			return i - 1
		}
	}
	return len(results) - 1
}

// rollback ends a failed transaction; a connection it cannot clean is closed.
func rollback(ctx context.Context, conn *pgxpool.Conn) {
	pc := conn.Conn().PgConn()
	if _, err := pc.Exec(context.WithoutCancel(ctx), "ROLLBACK").ReadAll(); err != nil {
		_ = pc.Close(context.WithoutCancel(ctx))
	}
}

func hasWarning(notices []*pgconn.Notice, code string) bool {
	for _, n := range notices {
		if n.Code == code {
			return true
		}
	}
	return false
}

// verifyGroups checks, inside the transaction, that every group holds its
// preset's privileges on every object of its schema; it returns CannotGrant
// naming the first object that is missing.
func (p *Provisioner) verifyGroups(ctx context.Context, conn *pgxpool.Conn, pl *plan.Plan) error {
	for _, g := range pl.Groups {
		obj, err := firstMissing(ctx, conn, g.Name, g.Schema, g.Preset, false)
		if err != nil {
			return err
		}
		if obj != "" {
			return &Error{Kind: CannotGrant, Object: obj,
				Msg: "the admin holds privileges on this object without GRANT OPTION; no privileges were granted"}
		}
	}
	return nil
}

// classifyStep turns the failure of steps[i] into an *Error. For a refused
// preset grant it asks the database which object the admin may not grant.
func (p *Provisioner) classifyStep(ctx context.Context, conn *pgxpool.Conn, steps []plan.Step, i int, err error) error {
	if i < 0 || i >= len(steps) {
		return classifyPG("provision role", "", err)
	}
	s := steps[i]
	var pgErr *pgconn.PgError
	isPG := errors.As(err, &pgErr)
	switch {
	case s.Raw > 0:
		return classifyPG(fmt.Sprintf("run raw SQL sql[%d]", s.Raw-1), fmt.Sprintf("sql[%d]", s.Raw-1), err)
	case s.Schema != "" && isPG && pgErr.Code == sqlstateInsufficientPrivilege:
		obj, qerr := firstMissing(ctx, conn, "", s.Schema, s.Preset, true)
		if qerr != nil || obj == "" {
			obj = "schema " + s.Schema
		}
		return &Error{Kind: CannotGrant, Object: obj, Msg: "the admin role may not grant the preset's privileges", Err: err}
	case s.Schema != "":
		return classifyPG("grant preset", "schema "+s.Schema, err)
	case isPG && pgErr.Code == sqlstateInsufficientPrivilege && isRoleDDL(s.SQL):
		return &Error{Kind: CannotGrant, Object: plan.ObjectCreateRole, Msg: "the admin role may not create or alter roles", Err: err}
	}
	return classifyPG("provision role", "", err)
}

// isRoleDDL reports whether sql creates or alters a role, which needs
// CREATEROLE.
func isRoleDDL(sql string) bool {
	return strings.HasPrefix(sql, "CREATE ROLE ") || strings.HasPrefix(sql, "ALTER ROLE ")
}

// classifyPG maps a server error to an *Error kind.
func classifyPG(msg, object string, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return &Error{Kind: Backend, Object: object, Msg: msg, Err: err}
	}
	switch pgErr.Code {
	case sqlstateInsufficientPrivilege:
		return &Error{Kind: CannotGrant, Object: object, Msg: msg, Err: err}
	case sqlstateInvalidSchemaName, sqlstateUndefinedTable, sqlstateUndefinedObject, sqlstateInvalidCatalogName:
		return &Error{Kind: MissingObject, Object: object, Msg: msg, Err: err}
	}
	return &Error{Kind: Backend, Object: object, Msg: msg, Err: err}
}

// classifyConnect classifies a failure to connect to database.
func classifyConnect(database string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstateInvalidCatalogName {
		return &Error{Kind: MissingObject, Object: "database " + database, Msg: "connect", Err: err}
	}
	return backendErr("connect to database "+database, err)
}

// isConflict reports whether err is a concurrent-update conflict worth one
// retry: another instance created the same group, or updated the same
// catalog row, between our lookup and our transaction.
func isConflict(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	switch {
	case !ok:
		return false
	case slices.Contains([]string{sqlstateDuplicateObject, sqlstateUniqueViolation, sqlstateSerialization, sqlstateDeadlock}, pgErr.Code):
		return true
	default:
		return pgErr.Code == sqlstateInternal && strings.Contains(pgErr.Message, "concurrently")
	}
}

// firstMissing returns the first object ("table private.secrets") in schema
// that role lacks preset's privileges on ("" role = current_user; grantOption
// = the right to grant them), or "" when nothing is missing.
func firstMissing(ctx context.Context, conn *pgxpool.Conn, role, schema string, preset authz.Preset, grantOption bool) (string, error) {
	objs, err := missingObjects(ctx, conn, role, schema, preset, grantOption, 1)
	if err != nil || len(objs) == 0 {
		return "", err
	}
	return objs[0].String(), nil
}
