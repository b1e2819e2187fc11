package node

import (
	"strings"
	"testing"
)

// TestValidateAPNodeNumbers: in AP every node mints user ids from the
// number its id ends in, so ids without one, or two nodes ending in the
// same number, are refused at start (they would mint the same uids).
func TestValidateAPNodeNumbers(t *testing.T) {
	for _, tc := range []struct {
		id    string
		peers []string
		want  string // "" for valid
	}{
		{"n1", []string{"n1", "n2", "n3"}, ""},
		{"alpha", []string{"alpha", "beta"}, `node id "alpha" must end in a number`},
		{"n1", []string{"n1", "m1"}, "end in the same number 1"},
		{"n70000", nil, `node id "n70000" must end in a number`},
	} {
		cfg := DefaultConfig()
		cfg.ID, cfg.Mode, cfg.DataDir, cfg.Secret, cfg.RaftListen = tc.id, "ap", t.TempDir(), []byte("0123456789abcdef"), "127.0.0.1:1"
		cfg.Peers = map[string]string{}
		for _, p := range tc.peers {
			cfg.Peers[p] = "127.0.0.1:1"
		}
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %v: %v, want valid", tc.id, tc.peers, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %v: %v, want an error saying %q", tc.id, tc.peers, err, tc.want)
		}
	}
}
