package clustertls

import (
	"crypto/tls"
	"testing"
)

// TestMutualTLS: two members of one cluster complete a handshake; a peer
// with another cluster's certificate, or none, is refused both ways.
func TestMutualTLS(t *testing.T) {
	load := func() *Credentials {
		dir := t.TempDir()
		if err := Generate(dir); err != nil {
			t.Fatal(err)
		}
		c, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ours, theirs := load(), load()
	handshake := func(server *tls.Config, client *tls.Config) error {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				err = c.(*tls.Conn).Handshake()
				c.Close()
			}
			done <- err
		}()
		c, err := tls.Dial("tcp", ln.Addr().String(), client)
		if err == nil {
			err = c.Handshake()
			c.Close()
		}
		if serr := <-done; err == nil {
			err = serr
		}
		return err
	}
	if err := handshake(ours.Server(), ours.Client()); err != nil {
		t.Fatalf("two members of one cluster: %v", err)
	}
	if err := handshake(ours.Server(), theirs.Client()); err == nil {
		t.Fatal("a member of another cluster was accepted")
	}
	if err := handshake(ours.Server(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	if err := handshake(theirs.Server(), ours.Client()); err == nil {
		t.Fatal("a member accepted another cluster's server")
	}
}
