package pgwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// protocolOptionPrefix marks protocol extension options in a StartupMessage.
const protocolOptionPrefix = "_pq_."

// startup handles a StartupMessage body (version + parameters). Any 3.x
// version is accepted: a minor version above 0, or "_pq_." options, are
// answered with NegotiateProtocolVersion and the session continues at 3.0.
func (h *handshake) startup(body []byte) (*Client, error) {
	version := binary.BigEndian.Uint32(body)
	major, minor := version>>16, version&0xffff
	if major != 3 {
		return nil, h.fail(codeFeatureUnsupported, fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0", major, minor), nil)
	}
	params, err := parseStartupParams(body[4:])
	if err != nil {
		return nil, h.fail(codeProtocolViolation, err.Error(), nil)
	}
	if h.opts.TLSMode == TLSRequire && h.tls == nil {
		return nil, h.failTLSRequired()
	}
	if params["user"] == "" {
		return nil, h.fail(codeInvalidAuthSpec, "no PostgreSQL user name specified in startup packet", nil)
	}
	if params["database"] == "" {
		params["database"] = params["user"]
	}
	unrecognized := stripProtocolOptions(params)
	if minor > 0 || len(unrecognized) > 0 {
		if err := h.negotiate(unrecognized); err != nil {
			return nil, err
		}
	}
	c := h.client()
	c.Params = params
	return c, nil
}

// failTLSRequired refuses a plaintext startup on a TLSRequire listener.
func (h *handshake) failTLSRequired() error {
	err := h.fail(codeInvalidAuthSpec, "this Waypoint listener requires TLS: connect with sslmode=require", ErrTLSRequired)
	return err
}

// negotiate tells the client that the session runs at protocol 3.0 and which
// protocol options were not recognized (all of them: Waypoint supports none).
func (h *handshake) negotiate(unrecognized []string) error {
	msg := &pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unrecognized}
	buf, err := msg.Encode(nil)
	if err != nil {
		return fmt.Errorf("pgwire: encode NegotiateProtocolVersion: %w", err)
	}
	if _, err := h.conn.Write(buf); err != nil {
		return fmt.Errorf("pgwire: write NegotiateProtocolVersion: %w", err)
	}
	return nil
}

// stripProtocolOptions removes the "_pq_." options from params and returns
// their names, sorted.
func stripProtocolOptions(params map[string]string) []string {
	var names []string
	for name := range params {
		if strings.HasPrefix(name, protocolOptionPrefix) {
			names = append(names, name)
			delete(params, name)
		}
	}
	sort.Strings(names)
	return names
}

// maxNameInError bounds how much of a client-supplied name an error quotes.
const maxNameInError = 64

// parseStartupParams parses the parameter list of a StartupMessage: pairs of
// NUL-terminated name and value, ended by an empty name that must be the last
// byte. Duplicate names are refused.
//
// pgproto3's StartupMessage.Decode is not used because it only accepts
// versions 3.0 and 3.2 and silently keeps the last of duplicate names; the
// list is parsed the same way for every 3.x version here.
func parseStartupParams(b []byte) (map[string]string, error) {
	params := make(map[string]string)
	for {
		name, rest, ok := cutNUL(b)
		if !ok {
			return nil, errors.New("invalid startup packet layout: expected terminator as last byte")
		}
		if name == "" {
			if len(rest) != 0 {
				return nil, errors.New("invalid startup packet layout: expected terminator as last byte")
			}
			return params, nil
		}
		value, rest, ok := cutNUL(rest)
		if !ok {
			return nil, fmt.Errorf("invalid startup packet layout: missing value for parameter %q", truncate(name))
		}
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("invalid startup packet: duplicate parameter %q", truncate(name))
		}
		params[name] = value
		b = rest
	}
}

// cutNUL splits b at its first NUL byte.
func cutNUL(b []byte) (s string, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

func truncate(s string) string {
	if len(s) > maxNameInError {
		return s[:maxNameInError] + "…"
	}
	return s
}
