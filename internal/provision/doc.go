// Package provision creates, rotates, reconciles and removes the backend
// PostgreSQL roles that Waypoint logs in as on behalf of tailnet callers.
// It is the executor: what to run is decided by the planner, package plan
// (names, owner records, presets, raw SQL, the statements of a plan),
// which touches no database; how to run it on PostgreSQL or CockroachDB is
// the dialect's (dialect.go: postgres and cockroach), and nothing else in
// the package asks which server it talks to.
//
// For every connection the proxy calls [Provisioner.Ensure] with the caller's
// identity and the authorization decision. Ensure
//
//   - derives the role name from the identity ([RoleName]) and makes sure the
//     role belongs to that identity (an owner record in the role's comment);
//   - gives the role membership in shared NOLOGIN group roles that hold the
//     preset's privileges per schema ([plan.GroupName]) and revokes
//     memberships the grant no longer implies, plus CONNECT on the database;
//   - validates and runs the grant's raw SQL templates ([plan.ValidateSQL]);
//   - sets a fresh random password, sent pre-hashed (SCRAM-SHA-256 verifier
//     or md5), with VALID UNTIL now+TTL;
//
// all in one transaction on a connection to the target database, and returns
// a [Lease] holding the password. The role stays locked (a lease row in
// Waypoint's schema of the admin database, so several Waypoint instances
// cooperate) until the lease is released, so no other rotation can change
// the password between rotation and login. Within one process, the
// provisioning transactions of one database take turns.
//
// A reconnect whose role this process provisioned recently with the same
// grant takes a warm path instead: one statement that checks the role's
// owner record and sets password and VALID UNTIL, while the set of
// relations in the granted schemas is compared with the one seen at the
// last reconcile (see Ensure). Any difference falls back to the full
// transaction above.
//
// For live sessions, [Provisioner.Reconcile] applies a changed grant
// without rotating the password, [Provisioner.Touch] pushes VALID UNTIL
// forward and [Provisioner.Terminate] ends a backend session.
//
// [Provisioner.Cleanup] drops Waypoint-owned roles whose VALID UNTIL has
// passed and that have no session. [Explain] shows what Ensure would run and
// [Provisioner.Check] reports what the admin role is missing.
//
// Owner records: every role and group Waypoint creates carries a JSON comment
// (COMMENT ON ROLE) naming the identity (login subject and node ID), the
// database, schema and preset. A comment needs no extra table or schema in
// the admin database and is dropped with the role. Roles without such a
// record are never modified or dropped.
//
// A Provisioner is safe for concurrent use; Close it when done.
package provision
