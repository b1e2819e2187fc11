package ap

import "testing"

// TestSeal: a sealed message opens with the key on its own channel only;
// a changed byte, another channel, another key or no tag at all is
// refused; without a key nothing is signed or checked.
func TestSeal(t *testing.T) {
	s := sealer{LogKey([]byte("cluster secret 0123456789"))}
	msg := []byte("an entry")
	sealed := s.seal("mpim:ap:log", msg)
	if got, ok := s.open("mpim:ap:log", sealed); !ok || string(got) != "an entry" {
		t.Fatalf("open(seal(m)) = %q, %v", got, ok)
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	other := sealer{LogKey([]byte("another cluster's secret"))}
	for name, c := range map[string]struct {
		s       sealer
		channel string
		b       []byte
	}{
		"a changed byte":  {s, "mpim:ap:log", tampered},
		"another channel": {s, "mpim:ap:hb", sealed},
		"another key":     {other, "mpim:ap:log", sealed},
		"no tag":          {s, "mpim:ap:log", msg},
		"empty":           {s, "mpim:ap:log", nil},
	} {
		if _, ok := c.s.open(c.channel, c.b); ok {
			t.Errorf("%s: opened", name)
		}
	}
	if got := (sealer{}).seal("c", msg); string(got) != "an entry" {
		t.Errorf("without a key seal changed the message: %q", got)
	}
	if got, ok := (sealer{}).open("c", msg); !ok || string(got) != "an entry" {
		t.Errorf("without a key open refused or changed the message: %q %v", got, ok)
	}
}
