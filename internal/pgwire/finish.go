package pgwire

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5/pgproto3"
)

// FinishStartup completes the client's startup after the backend login:
// AuthenticationOk, every ParameterStatus the backend reported (sorted by
// name), BackendKeyData with key (from ClientKey: the backend's process ID
// and Waypoint's own secret, never the backend's secret) and
// ReadyForQuery('I'), in one write bounded by a short deadline. The client
// never authenticates to Waypoint with a password: the tailnet identity is
// its credential. It must not run concurrently with other writes to c.Conn.
func (c *Client) FinishStartup(up *Upstream, key CancelKey) error {
	be := pgproto3.NewBackend(c.Conn, c.Conn)
	be.Send(&pgproto3.AuthenticationOk{})
	names := make([]string, 0, len(up.ParameterStatus))
	for name := range up.ParameterStatus {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		be.Send(&pgproto3.ParameterStatus{Name: name, Value: up.ParameterStatus[name]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: key.ProcessID, SecretKey: key.secretBytes()})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	err := withWriteDeadline(c.Conn, be.Flush)
	if err != nil {
		return fmt.Errorf("pgwire: finish startup: %w", err)
	}
	return nil
}

// secretBytes returns the secret key as the 4 bytes protocol 3.0 sends.
func (k CancelKey) secretBytes() []byte {
	return binary.BigEndian.AppendUint32(nil, k.SecretKey)
}

// ClientKey returns the key for the BackendKeyData of a client relayed to
// up: the backend's real process ID (up.Key.ProcessID), so that
// pg_backend_pid(), a NOTIFY's sender pid, pg_terminate_backend and the
// server log agree with what the driver reports, and a non-zero secret of
// Waypoint's own from crypto/rand, so the backend's secret never leaves
// Waypoint. The secret is 4 bytes, as PostgreSQL's own keys are at protocol
// 3.0: every client session runs at 3.0 (a client asking for 3.2 is
// answered with NegotiateProtocolVersion, see startup), so no client ever
// expects the longer 3.2 key.
//
// The process ID is not secret (pg_stat_activity shows it to every role), so
// the key's only unguessable part is the 32-bit secret, as in PostgreSQL at
// 3.0. Two backends on different servers may share a process ID: the caller
// must key its sessions by the whole (process ID, secret) pair, never by the
// process ID alone, and keep the pairs of live sessions unique.
func ClientKey(up *Upstream) (CancelKey, error) {
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return CancelKey{}, fmt.Errorf("pgwire: cancel key: %w", err)
		}
		if secret := binary.BigEndian.Uint32(b[:]); secret != 0 {
			return CancelKey{ProcessID: up.Key.ProcessID, SecretKey: secret}, nil
		}
	}
}
