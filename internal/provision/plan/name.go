package plan

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

const (
	// DefaultPrefix is the role-name prefix used when Options.Prefix is "".
	DefaultPrefix = "wp_"
	// maxIdentLen is PostgreSQL's identifier limit (NAMEDATALEN-1) in bytes.
	maxIdentLen = 63
	// maxPrefixLen leaves room in a role name for the identity.
	maxPrefixLen = 20
	// hashLen is the number of hex digits of a name's hash suffix (64 bits).
	hashLen = 16
)

// ValidatePrefix reports whether prefix can start role names: 1 to 20 bytes
// of [a-z0-9_], starting with a letter or '_', and not "pg_" (reserved by
// PostgreSQL).
func ValidatePrefix(prefix string) error {
	switch {
	case prefix == "" || len(prefix) > maxPrefixLen:
		return fmt.Errorf("role prefix %q: must be 1 to %d bytes", prefix, maxPrefixLen)
	case sanitize(prefix) != prefix:
		return fmt.Errorf("role prefix %q: only a-z, 0-9 and _ are allowed", prefix)
	case prefix[0] >= '0' && prefix[0] <= '9':
		return fmt.Errorf("role prefix %q: must not start with a digit", prefix)
	case strings.HasPrefix(prefix, "pg_"):
		return fmt.Errorf("role prefix %q: pg_ is reserved by PostgreSQL", prefix)
	}
	return nil
}

// RoleName returns the role for peer on database:
// <prefix><user>_<machine>_<db>, plus _<preset> when preset is not "" (pass
// the preset only for a preset-limited connection). Each part is lowercased
// and every character outside [a-z0-9_] becomes '_'. A name longer than 63
// bytes is truncated and ends in '_' and a hash of the whole identity, so it
// is deterministic and at most 63 bytes. prefix must pass ValidatePrefix; ""
// means DefaultPrefix.
//
// Different identities can share a RoleName ("alice.smith" and
// "alice-smith"); Ensure detects that through the role's owner record and
// gives the newcomer ClashRoleName instead.
func RoleName(prefix string, peer identity.Peer, database string, preset authz.Preset) string {
	prefix = OrDefault(prefix)
	name := prefix + joinParts(peer.UserPart(), peer.MachineName, database, string(preset))
	if len(name) <= maxIdentLen {
		return name
	}
	return withHash(name, identityHash("role", peer.Subject(), peer.MachineName, database, string(preset)))
}

// ClashRoleName is the name a peer gets when RoleName is taken by another
// identity: the readable part truncated, then '_' and a hash of the full
// identity including the node ID. It is always at most 63 bytes.
func ClashRoleName(prefix string, peer identity.Peer, database string, preset authz.Preset) string {
	prefix = OrDefault(prefix)
	name := prefix + joinParts(peer.UserPart(), peer.MachineName, database, string(preset))
	return withHash(name, identityHash("clash", peer.Subject(), peer.NodeID, peer.MachineName, database, string(preset)))
}

// GroupName returns the shared NOLOGIN group role holding preset's
// privileges on schema in database: <prefix>g_<db>_<schema>_<preset>,
// sanitized and hashed like RoleName when longer than 63 bytes.
func GroupName(prefix, database, schema string, preset authz.Preset) string {
	prefix = OrDefault(prefix)
	name := prefix + "g_" + joinParts(database, schema, string(preset))
	if len(name) <= maxIdentLen {
		return name
	}
	return withHash(name, identityHash("group", database, schema, string(preset)))
}

// clashGroupName is GroupName's alternative when two schemas sanitize to the
// same name ("my-app" and "my_app").
func clashGroupName(prefix, database, schema string, preset authz.Preset) string {
	prefix = OrDefault(prefix)
	name := prefix + "g_" + joinParts(database, schema, string(preset))
	return withHash(name, identityHash("groupclash", database, schema, string(preset)))
}

func OrDefault(prefix string) string {
	if prefix == "" {
		return DefaultPrefix
	}
	return prefix
}

// joinParts sanitizes the non-empty-tail parts and joins them with '_'. The
// last part is dropped when it is "" (no preset).
func joinParts(parts ...string) string {
	if n := len(parts); n > 0 && parts[n-1] == "" {
		parts = parts[:n-1]
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = sanitize(p)
	}
	return strings.Join(out, "_")
}

// sanitize lowercases s and replaces each character outside [a-z0-9_] with
// '_'. The result is ASCII, so byte truncation never splits a character.
func sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// withHash truncates name so that name + "_" + hash fits in 63 bytes.
func withHash(name, hash string) string {
	keep := maxIdentLen - 1 - len(hash)
	if len(name) > keep {
		name = name[:keep]
	}
	return name + "_" + hash
}

// identityHash hashes its length-prefixed fields (so field boundaries
// matter) and returns hashLen hex digits.
func identityHash(fields ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))[:hashLen]
}

// UsersGroup is the NOLOGIN group every role Waypoint creates is a member
// of: <prefix>users. It holds no privileges; it exists so that operators
// can confine Waypoint's roles in pg_hba.conf, e.g.
//
//	host all +wp_users 10.0.0.5/32 scram-sha-256
//	host all +wp_users 0.0.0.0/0   reject
func UsersGroup(prefix string) string { return OrDefault(prefix) + "users" }

// UsersRecord is the owner record (comment) of the UsersGroup role.
const UsersRecord = `{"waypoint":1,"kind":"users"}`
