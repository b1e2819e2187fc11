package binenc

import (
	"errors"
	"math"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b []byte
	b = AppendUvarint(b, math.MaxUint64)
	b = AppendVarint(b, math.MinInt64)
	b = AppendString(b, "héllo\x00")
	b = AppendBytes(b, []byte{0, 1, 2})
	b = AppendBytes(b, []byte{})
	b = AppendBool(b, true)
	r := NewReader(b)
	if v := r.Uvarint(); v != math.MaxUint64 {
		t.Errorf("uvarint %d", v)
	}
	if v := r.Varint(); v != math.MinInt64 {
		t.Errorf("varint %d", v)
	}
	if s := r.String(); s != "héllo\x00" {
		t.Errorf("string %q", s)
	}
	if p := r.Bytes(); string(p) != "\x00\x01\x02" {
		t.Errorf("bytes %v", p)
	}
	if p := r.Bytes(); p != nil {
		t.Errorf("empty bytes read back as %#v, want nil", p)
	}
	if !r.Bool() || r.Err() != nil || r.Len() != 0 {
		t.Errorf("bool, err %v, %d bytes left", r.Err(), r.Len())
	}
}

// TestTruncated: every prefix of a valid encoding fails, and reads after
// the failure return zero values.
func TestTruncated(t *testing.T) {
	b := AppendString(AppendUvarint(nil, 300), "abc")
	for n := range len(b) {
		r := NewReader(b[:n])
		r.Uvarint()
		_ = r.String()
		if !errors.Is(r.Err(), ErrTruncated) {
			t.Errorf("prefix of %d bytes read without error", n)
		}
		if s := r.String(); s != "" {
			t.Errorf("read %q after an error", s)
		}
	}
	if r := NewReader([]byte{2}); r.Bool() || r.Err() == nil {
		t.Error("a bool byte of 2 was accepted")
	}
}
