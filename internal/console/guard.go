package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds the checks every request passes before it is authorized,
// and the page's form tokens.
//
// Cross-site request forgery is stopped twice for the page: every POST must
// pass net/http's CrossOriginProtection (a browser's Sec-Fetch-Site, or its
// Origin compared with Host, must say same-origin; requests without either
// header, such as the CLI's, are not from a browser and pass), and every form
// carries a token bound to the caller's node and signed with a key that
// lives only in this process. DNS rebinding — a hostile name resolving to
// this console, making the victim's browser same-origin with it — is
// stopped by answering only to the Host names the console was given and to
// IP literals.

// allowedHost reports whether the request's Host names this console: an IP
// literal, or one of names (case-insensitive, without port, a trailing dot
// ignored).
func allowedHost(host string, names []string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return h != "" && slices.ContainsFunc(names, func(n string) bool {
		return strings.TrimSuffix(strings.ToLower(n), ".") == h
	})
}

// securityHeaders are set on every response: nothing is cached, framed,
// sniffed or leaked by referrer, and the page may load nothing but its own
// inline style (by nonce) and post forms only to itself.
func securityHeaders(w http.ResponseWriter, nonce string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// newNonce returns a fresh random CSP nonce.
func newNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// formTokenTTL is how long a page's form token stays valid.
const formTokenTTL = 12 * time.Hour

// formTokens mints and checks the page's form tokens: an issue time and an
// HMAC over it and the caller, under a key random per process. A token is
// worthless to anyone but the caller it was issued to, and after a restart.
type formTokens struct {
	key [32]byte
}

func newFormTokens() *formTokens {
	t := &formTokens{}
	rand.Read(t.key[:])
	return t
}

// issue returns a token for subject at now.
func (t *formTokens) issue(subject string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return ts + "." + t.mac(subject, ts)
}

// valid reports whether tok was issued to subject within formTokenTTL.
func (t *formTokens) valid(tok, subject string, now time.Time) bool {
	ts, mac, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	issued := time.Unix(sec, 0)
	if now.Sub(issued) > formTokenTTL || issued.Sub(now) > time.Minute {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(t.mac(subject, ts)))
}

func (t *formTokens) mac(subject, ts string) string {
	m := hmac.New(sha256.New, t.key[:])
	m.Write([]byte(subject + "\x00" + ts))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
