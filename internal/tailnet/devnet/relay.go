package devnet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"tailscale.com/derp/derpserver"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// loopback is the address every devnet server binds to.
const loopback = "127.0.0.1"

// certLifetime is the validity of the DERP server's self-signed certificate.
const certLifetime = 30 * 24 * time.Hour

// relay is the DERP relay (over HTTPS, with a self-signed certificate the
// DERP map pins by hash) and the STUN server that nodes use for NAT
// discovery. Both listen on loopback.
type relay struct {
	derp     *derpserver.Server
	https    *http.Server
	derpPort int
	certHash string // hex SHA-256 of the certificate's DER bytes

	stun     *net.UDPConn
	stunDone chan struct{} // closed when the STUN loop has returned

	closeOnce sync.Once
}

// startRelay starts DERP and STUN on loopback. On error nothing is left
// running.
func startRelay(logf func(string, ...any)) (*relay, error) {
	cert, err := selfSignedCert()
	if err != nil {
		return nil, fmt.Errorf("DERP certificate: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return nil, fmt.Errorf("DERP listener: %w", err)
	}
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(loopback), 0)))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("STUN listener: %w", err)
	}
	d := derpserver.New(key.NewNode(), logf)
	r := &relay{
		derp:     d,
		derpPort: ln.Addr().(*net.TCPAddr).Port,
		certHash: fmt.Sprintf("%02x", sha256.Sum256(cert.Certificate[0])),
		https: &http.Server{
			Handler:           derpserver.Handler(d),
			ReadHeaderTimeout: readHeaderTimeout,
			ErrorLog:          newStdLogger(logf),
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			// DERP upgrades HTTP/1.1 connections; HTTP/2 must stay off.
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		},
		stun:     pc,
		stunDone: make(chan struct{}),
	}
	go r.https.ServeTLS(ln, "", "")
	go r.serveSTUN()
	return r, nil
}

// derpMap is the DERP map of the tailnet: one region with this relay.
func (r *relay) derpMap() *tailcfg.DERPMap {
	return &tailcfg.DERPMap{
		Regions: map[int]*tailcfg.DERPRegion{
			1: {
				RegionID:   1,
				RegionCode: "devnet",
				RegionName: "devnet (loopback)",
				Nodes: []*tailcfg.DERPNode{{
					Name:       "1a",
					RegionID:   1,
					HostName:   loopback,
					IPv4:       loopback,
					IPv6:       "none",
					DERPPort:   r.derpPort,
					STUNPort:   r.stun.LocalAddr().(*net.UDPAddr).Port,
					STUNTestIP: loopback,
					CertName:   "sha256-raw:" + r.certHash,
				}},
			},
		},
	}
}

// serveSTUN answers STUN binding requests until the socket is closed.
func (r *relay) serveSTUN() {
	defer close(r.stunDone)
	buf := make([]byte, 64<<10)
	for {
		n, src, err := r.stun.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || !stun.Is(buf[:n]) {
			continue
		}
		txID, err := stun.ParseBindingRequest(buf[:n])
		if err != nil {
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		r.stun.WriteToUDPAddrPort(stun.Response(txID, src), src)
	}
}

// close stops DERP and STUN, dropping every connection. It is idempotent.
func (r *relay) close() {
	r.closeOnce.Do(func() {
		r.https.Close()
		r.derp.Close()
		r.stun.Close()
		<-r.stunDone
	})
}

// selfSignedCert makes an ECDSA certificate for the loopback address. The
// DERP map pins its hash, so no CA is involved.
func selfSignedCert() (tls.Certificate, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "devnet DERP " + loopback},
		IPAddresses:  []net.IP{net.ParseIP(loopback)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// newStdLogger adapts logf for http.Server.ErrorLog.
func newStdLogger(logf func(string, ...any)) *log.Logger {
	return log.New(logfWriter(logf), "", 0)
}

// logfWriter sends each write to logf as one line.
type logfWriter func(string, ...any)

func (w logfWriter) Write(p []byte) (int, error) {
	w("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
