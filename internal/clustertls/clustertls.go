// Package clustertls gives a cluster's members mutual TLS: a certificate
// authority made for one cluster, and a member certificate it signs,
// which every node and gateway presents and requires of its peers — on
// the gateway→node gRPC port, on the node-to-node link (Raft and
// forwarding) and on the AP mode's pulls. A peer without a certificate of
// this cluster's authority cannot complete a handshake, so nothing it
// sends (a forged Caller, a membership change, a command to apply) is
// ever read. The lab makes the files (Generate); `mpim node` and `mpim
// gateway` read them with --tls-dir.
package clustertls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// ServerName is the name in every member certificate, and the name a
// member checks in its peer's: members are found by address, and the
// authority, made for one cluster only, is what is trusted.
const ServerName = "member.mpim.cluster"

// The files of a credentials directory.
const (
	CAFile     = "ca.pem"
	CertFile   = "member.pem"
	KeyFile    = "member-key.pem"
	caKeyFile  = "ca-key.pem"
	validYears = 10
)

// Generate makes a new authority and a member certificate in dir (created
// 0700), unless dir already holds them. The authority's key stays in dir:
// it can sign nothing else once the lab is gone, and a new lab makes a
// new one.
func Generate(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, CertFile)); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("clustertls: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "mpim cluster authority"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(validYears, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	member := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: ServerName},
		DNSNames: []string{ServerName}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(validYears, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, member, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	writePEM := func(name, kind string, b []byte) error {
		return os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b}), 0o600)
	}
	caKeyDER, _ := x509.MarshalECPrivateKey(caKey)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return errors.Join(writePEM(CAFile, "CERTIFICATE", caDER), writePEM(caKeyFile, "EC PRIVATE KEY", caKeyDER),
		writePEM(KeyFile, "EC PRIVATE KEY", keyDER), writePEM(CertFile, "CERTIFICATE", der))
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// Credentials are a member's TLS configurations, read from a directory.
type Credentials struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// Load reads dir's authority and member certificate.
func Load(dir string) (*Credentials, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("clustertls: member certificate in %s: %w (make them with mpim lab up, or copy a lab's credentials directory)", dir, err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("clustertls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("clustertls: %s holds no certificate", filepath.Join(dir, CAFile))
	}
	return &Credentials{cert: cert, pool: pool}, nil
}

// Server is the configuration of a member's listener: it requires a
// client certificate of the cluster's authority.
func (c *Credentials) Server() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.cert}, ClientCAs: c.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
}

// Client is the configuration a member dials its peers with: it presents
// its certificate and requires the peer's, of the same authority.
func (c *Credentials) Client() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.cert}, RootCAs: c.pool, ServerName: ServerName,
		MinVersion: tls.VersionTLS13}
}
