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
// name), BackendKeyData with key (Waypoint's own key, not the backend's) and
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

// NewCancelKey returns a random key for a client's BackendKeyData. ProcessID
// is in [1, 2^31-1], like a real PID (some drivers store it as a signed
// int32); SecretKey is non-zero. Both come from crypto/rand. Uniqueness among
// live sessions is the caller's job.
func NewCancelKey() (CancelKey, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return CancelKey{}, fmt.Errorf("pgwire: cancel key: %w", err)
		}
		k := CancelKey{
			ProcessID: binary.BigEndian.Uint32(b[:4]) & 0x7fffffff,
			SecretKey: binary.BigEndian.Uint32(b[4:]),
		}
		if k.ProcessID != 0 && k.SecretKey != 0 {
			return k, nil
		}
	}
}
