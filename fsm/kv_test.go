package fsm

import (
	"bytes"
	"slices"
	"testing"
)

func scanKeys(t *testing.T, kv *MemKV, from, to []byte, reverse bool, stopAfter int) []string {
	t.Helper()
	var out []string
	err := kv.Scan("b", from, to, reverse, func(k, _ []byte) bool {
		out = append(out, string(k))
		return len(out) != stopAfter
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

func TestMemKVScan(t *testing.T) {
	kv := NewMemKV()
	for _, k := range []string{"d", "b", "a", "c", "e"} {
		if err := kv.Put("b", []byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		from, to []byte
		reverse  bool
		stop     int
		want     []string
	}{
		{"all", nil, nil, false, 0, []string{"a", "b", "c", "d", "e"}},
		{"all reversed", nil, nil, true, 0, []string{"e", "d", "c", "b", "a"}},
		{"half open", []byte("b"), []byte("d"), false, 0, []string{"b", "c"}},
		{"half open reversed", []byte("b"), []byte("d"), true, 0, []string{"c", "b"}},
		{"from between keys", []byte("bb"), nil, false, 0, []string{"c", "d", "e"}},
		{"empty range", []byte("c"), []byte("c"), false, 0, nil},
		{"inverted range", []byte("d"), []byte("b"), true, 0, nil},
		{"stop early", nil, nil, false, 2, []string{"a", "b"}},
		{"stop early reversed", nil, nil, true, 2, []string{"e", "d"}},
	}
	for _, tc := range cases {
		if got := scanKeys(t, kv, tc.from, tc.to, tc.reverse, tc.stop); !slices.Equal(got, tc.want) {
			t.Errorf("%s: scan %v, want %v", tc.name, got, tc.want)
		}
	}
	if err := kv.Scan("missing", nil, nil, false, func(_, _ []byte) bool {
		t.Fatalf("scan of a missing bucket called fn")
		return false
	}); err != nil {
		t.Fatalf("scan of a missing bucket: %v", err)
	}
}

func TestMemKVPutGetDelete(t *testing.T) {
	kv := NewMemKV()
	if kv.Get("b", []byte("k")) != nil {
		t.Fatalf("Get on an empty store returned a value")
	}
	v := []byte("one")
	_ = kv.Put("b", []byte("k"), v)
	v[0] = 'X' // the store must have copied
	if got := kv.Get("b", []byte("k")); string(got) != "one" {
		t.Fatalf("Get after the caller reused its buffer: %q, want one", got)
	}
	_ = kv.Put("b", []byte("k"), []byte("two"))
	if got := scanKeys(t, kv, nil, nil, false, 0); !slices.Equal(got, []string{"k"}) {
		t.Fatalf("overwrite duplicated the key: %v", got)
	}
	if got := kv.Get("b", []byte("k")); string(got) != "two" {
		t.Fatalf("Get after overwrite: %q, want two", got)
	}
	_ = kv.Delete("b", []byte("k"))
	_ = kv.Delete("b", []byte("k"))    // deleting twice is fine
	_ = kv.Delete("none", []byte("k")) // so is a missing bucket
	if kv.Get("b", []byte("k")) != nil || len(scanKeys(t, kv, nil, nil, false, 0)) != 0 {
		t.Fatalf("key still present after Delete")
	}
}

// TestMemKVScanWhileWriting checks fn may write to the bucket it scans
// (Scan walks a copy of the key list).
func TestMemKVScanWhileWriting(t *testing.T) {
	kv := NewMemKV()
	for _, k := range []string{"a", "b", "c"} {
		_ = kv.Put("b", []byte(k), nil)
	}
	var seen []string
	_ = kv.Scan("b", nil, nil, false, func(k, _ []byte) bool {
		seen = append(seen, string(k))
		_ = kv.Delete("b", k)
		_ = kv.Put("b", append(k, 'x'), nil)
		return true
	})
	if !slices.Equal(seen, []string{"a", "b", "c"}) {
		t.Fatalf("scan with writes saw %v, want a b c", seen)
	}
}

func TestPrefixEnd(t *testing.T) {
	cases := []struct{ in, want []byte }{
		{[]byte("ab"), []byte("ac")},
		{[]byte{'a', 0xff}, []byte("b")},
		{[]byte{0xff, 0xff}, nil},
		{[]byte{}, nil},
		{[]byte{'g', ':', 't', 0}, []byte{'g', ':', 't', 1}},
	}
	for _, tc := range cases {
		got := prefixEnd(tc.in)
		if !bytes.Equal(got, tc.want) || (tc.want == nil) != (got == nil) {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
