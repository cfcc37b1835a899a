package plan

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// maxSQLTemplateLen bounds a raw-SQL template and its rendering.
const maxSQLTemplateLen = 8 << 10

// SQLData is what a raw-SQL template sees. Every value is already quoted,
// so a template writes {{.Role}}, never "{{.Role}}" or '{{.User}}'.
type SQLData struct {
	Role     string // the role, as a quoted identifier
	Database string // the database, as a quoted identifier
	User     string // the caller's login (identity.Peer.Subject), as a quoted literal
}

// RenderSQL quotes role, database and user, then executes tmpl (Go
// text/template) with them. A template is plain text with the
// substitutions {{.Role}}, {{.Database}} and {{.User}} and nothing else:
// no range, if, with, template, variables, functions or pipelines (a grant
// author has no use for them, and {{range 1000000000}} would run for a
// long time). The rendering is bounded by maxSQLTemplateLen as it is
// written. It does not validate the result; see ValidateSQL.
func RenderSQL(tmpl, role, database, user string) (string, error) {
	if len(tmpl) > maxSQLTemplateLen {
		return "", fmt.Errorf("sql template longer than %d bytes", maxSQLTemplateLen)
	}
	t, err := template.New("sql").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("parse sql template: %w", err)
	}
	if err := onlySubstitutions(t); err != nil {
		return "", err
	}
	b := &boundedWriter{max: maxSQLTemplateLen}
	data := SQLData{Role: QuoteIdent(role), Database: QuoteIdent(database), User: QuoteLiteral(user)}
	if err := t.Execute(b, data); err != nil {
		if errors.Is(err, errTooLong) {
			return "", fmt.Errorf("rendered sql longer than %d bytes", maxSQLTemplateLen)
		}
		return "", fmt.Errorf("execute sql template: %w", err)
	}
	return b.String(), nil
}

// onlySubstitutions refuses a template that is anything but text and
// {{.Role}}, {{.Database}} or {{.User}} actions.
func onlySubstitutions(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return errors.New("sql template: {{define}} and {{block}} are not allowed")
	}
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
		case *parse.ActionNode:
			if !isField(n.Pipe) {
				return fmt.Errorf("sql template: %s is not allowed; only {{.Role}}, {{.Database}} and {{.User}}", n)
			}
		default:
			return fmt.Errorf("sql template: %s is not allowed; only {{.Role}}, {{.Database}} and {{.User}}", n)
		}
	}
	return nil
}

// isField reports whether pipe is exactly one of .Role, .Database, .User.
func isField(pipe *parse.PipeNode) bool {
	if pipe == nil || len(pipe.Decl) > 0 || len(pipe.Cmds) != 1 || len(pipe.Cmds[0].Args) != 1 {
		return false
	}
	f, ok := pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return false
	}
	switch f.Ident[0] {
	case "Role", "Database", "User":
		return true
	}
	return false
}

// errTooLong is boundedWriter's error.
var errTooLong = errors.New("output too long")

// boundedWriter is a strings.Builder that refuses to grow past max bytes.
type boundedWriter struct {
	strings.Builder
	max int
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > w.max {
		return 0, errTooLong
	}
	return w.Builder.Write(p)
}

// ValidateSQL parses sql with PostgreSQL's own parser (pg_query) and accepts
// it only when it is exactly one statement of an allowed kind:
//
//   - GRANT privileges ON objects TO role (without WITH GRANT OPTION, so the
//     role cannot pass privileges on to roles Waypoint does not manage,
//     and without GRANTED BY);
//   - REVOKE privileges ON objects FROM role;
//   - ALTER DEFAULT PRIVILEGES ... GRANT/REVOKE ... TO/FROM role.
//
// The only grantee allowed is role itself (not PUBLIC, not other roles).
// Role-membership grants (GRANT some_role TO role) are refused: a CREATEROLE
// admin can grant membership in nearly any role on PostgreSQL 15, which would
// let a grant hand out pg_read_server_files or another user's privileges.
func ValidateSQL(sql, role string) error {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return fmt.Errorf("not valid SQL: %w", err)
	}
	if n := len(tree.GetStmts()); n != 1 {
		return fmt.Errorf("want exactly one statement, got %d", n)
	}
	node := tree.GetStmts()[0].GetStmt()
	switch {
	case node.GetGrantStmt() != nil:
		return checkGrant(node.GetGrantStmt(), role)
	case node.GetAlterDefaultPrivilegesStmt() != nil:
		action := node.GetAlterDefaultPrivilegesStmt().GetAction()
		if action == nil {
			return errors.New("ALTER DEFAULT PRIVILEGES without GRANT or REVOKE")
		}
		return checkGrant(action, role)
	case node.GetGrantRoleStmt() != nil:
		return errors.New("granting role membership is not allowed")
	}
	return fmt.Errorf("statement type %s is not allowed (only GRANT, REVOKE, ALTER DEFAULT PRIVILEGES)", stmtType(node))
}

func checkGrant(g *pg_query.GrantStmt, role string) error {
	if g.GetIsGrant() && g.GetGrantOption() {
		return errors.New("WITH GRANT OPTION is not allowed")
	}
	if g.GetGrantor() != nil {
		return errors.New("GRANTED BY is not allowed")
	}
	if len(g.GetGrantees()) == 0 {
		return errors.New("statement has no grantee")
	}
	for _, n := range g.GetGrantees() {
		rs := n.GetRoleSpec()
		if rs == nil || rs.GetRoletype() != pg_query.RoleSpecType_ROLESPEC_CSTRING || rs.GetRolename() != role {
			return errors.New("the only allowed grantee is {{.Role}}")
		}
	}
	return nil
}

// stmtType names a parse-tree node's statement type, e.g. "DropStmt".
func stmtType(n *pg_query.Node) string {
	if n == nil || n.GetNode() == nil {
		return "empty"
	}
	t := fmt.Sprintf("%T", n.GetNode()) // *pg_query.Node_DropStmt
	return strings.TrimPrefix(t, "*pg_query.Node_")
}

// prepareSQL renders and validates every template before anything runs. It
// returns the statements, or a BadSQL *Error naming the first bad template
// by position (the template text may be long; it is in the grant).
func prepareSQL(templates []string, role, database, user string) ([]string, error) {
	out := make([]string, 0, len(templates))
	for i, tmpl := range templates {
		sql, err := RenderSQL(tmpl, role, database, user)
		if err == nil {
			err = ValidateSQL(sql, role)
		}
		if err != nil {
			return nil, &Error{Kind: BadSQL, Object: fmt.Sprintf("sql[%d]", i), Msg: "refused raw SQL", Err: err}
		}
		out = append(out, sql)
	}
	return out, nil
}
