// Package plan is Waypoint's provisioning planner: it decides what the
// executor (package provision) runs, and touches no database. It imports
// no database driver; the import rules in internal/archtest enforce that.
//
// Contract:
//
//   - Names: [RoleName], [ClashRoleName], [GroupName] and [UsersGroup]
//     derive role names from an identity, deterministically, at most 63
//     bytes of [a-z0-9_]; [ValidatePrefix] checks a prefix.
//   - Owner records: every role Waypoint creates carries a [Record] naming
//     its identity; [ParseRecord] reads one and [ResolveName] picks a role's
//     name from what exists, refusing ([Clash]) a role without Waypoint's
//     record.
//   - Raw SQL: [RenderSQL] substitutes quoted names into a grant's
//     template and [ValidateSQL] accepts only GRANT, REVOKE and ALTER
//     DEFAULT PRIVILEGES to the role itself.
//   - Plans: [NewRequest] validates one Ensure's inputs; given a [Lookup]
//     (what the server says exists), [Request.Plan] decides the [Plan], and
//     [Plan.Steps] renders its statements in the SQL of a [Syntax]
//     ([PostgreSQL] or [CockroachDB]). Equal inputs give equal statements.
//   - [Explain] shows the statements Ensure would run on an empty
//     PostgreSQL backend.
//
// Errors are [*Error] with an [ErrorKind]; package provision returns the
// same type (it aliases it) for backend failures.
package plan
