package spans

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRecorder(t *testing.T) {
	r := New("n1", 4)
	t0 := time.Unix(100, 0)
	for i := range 6 {
		r.Add(fmt.Sprint("k", i%3), fmt.Sprint("stage", i), t0.Add(time.Duration(i)*time.Millisecond), t0.Add(time.Duration(i+1)*time.Millisecond))
	}
	// The ring keeps the last 4: stage2..stage5.
	got := r.Find([]string{"k0", "k2"})
	if len(got) != 3 || got[0].Name != "stage2" || got[1].Name != "stage3" || got[2].Name != "stage5" || got[0].Proc != "n1" {
		t.Fatalf("Find(k0, k2) = %+v, want stage2, stage3, stage5 in order (stage0 overwritten)", got)
	}
	var nilRec *Recorder
	nilRec.Add("k", "x", t0, t0) // a nil recorder records nothing, and does not panic
	if nilRec.Find([]string{"k"}) != nil {
		t.Fatal("a nil recorder found spans")
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/debug/spans?key=k1", nil))
	var served []Span
	if err := json.Unmarshal(w.Body.Bytes(), &served); err != nil || len(served) != 1 || served[0].Name != "stage4" {
		t.Fatalf("GET /debug/spans?key=k1 = %s (%v), want the one span of k1 still kept (stage4)", w.Body, err)
	}
}
