// Package pgwire is the only package in Waypoint that speaks the PostgreSQL
// wire protocol. It has three jobs:
//
//   - the front door (Accept): negotiate TLS (SSLRequest or PostgreSQL 17
//     direct TLS), refuse GSS encryption, downgrade newer protocol versions
//     with NegotiateProtocolVersion, and read the StartupMessage or
//     CancelRequest, all under the caller's handshake deadline;
//   - the back door (ConnectUpstream): log in to the real PostgreSQL with
//     pgconn (SCRAM-SHA-256, MD5 or cleartext, only those allowed like
//     libpq's require_auth; TLS like libpq's sslmode) and hijack the raw
//     connection for relaying;
//   - the bits in between: finishing the client's startup with a
//     BackendKeyData that carries the backend's process ID and a secret of
//     Waypoint's own (ClientKey, FinishStartup), ErrorResponses to clients
//     (SendError, WriteError) and forwarding cancel requests (CancelBackend).
//
// Every message is encoded and decoded with pgx's pgproto3. The only bytes
// read by hand are the 4-byte length and 4-byte code that open a startup
// packet, because the version must be known before pgproto3 can decode it.
package pgwire
