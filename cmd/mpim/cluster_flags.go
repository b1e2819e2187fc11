package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"mpim/internal/clustertls"
)

// clusterFlags are the credentials every member of a cluster needs. None
// of them need be on the command line, where `ps` shows them to every
// local user: the token secret comes from --secret-file or $MPIM_SECRET,
// the Redis password from $MPIM_REDIS_PASSWORD, the TLS credentials from
// the files in --tls-dir.
type clusterFlags struct {
	secret, secretFile, tlsDir string
}

func (c *clusterFlags) add(f *pflag.FlagSet) {
	f.StringVar(&c.secretFile, "secret-file", "", "file holding the token secret shared by the cluster (else $MPIM_SECRET)")
	f.StringVar(&c.secret, "secret", "", "token secret (visible to every local user in ps: prefer --secret-file or $MPIM_SECRET)")
	f.StringVar(&c.tlsDir, "tls-dir", "", "the cluster's mutual TLS credentials (ca.pem, member.pem, member-key.pem; made by mpim lab up): members accept only peers with them. Empty: plain TCP between members")
}

// load reads the secret, the Redis password and the TLS credentials.
func (c *clusterFlags) load() (secret []byte, redisPassword string, creds *clustertls.Credentials, err error) {
	switch {
	case c.secretFile != "":
		b, rerr := os.ReadFile(c.secretFile)
		if rerr != nil {
			return nil, "", nil, usageError{fmt.Errorf("--secret-file: %w", rerr)}
		}
		secret = []byte(strings.TrimSpace(string(b)))
	case os.Getenv("MPIM_SECRET") != "":
		secret = []byte(os.Getenv("MPIM_SECRET"))
	case c.secret != "":
		fmt.Fprintln(os.Stderr, "warning: --secret is visible to every local user in ps; use --secret-file or $MPIM_SECRET")
		secret = []byte(c.secret)
	}
	if c.tlsDir != "" {
		if creds, err = clustertls.Load(c.tlsDir); err != nil {
			return nil, "", nil, usageError{err}
		}
	}
	return secret, os.Getenv("MPIM_REDIS_PASSWORD"), creds, nil
}
