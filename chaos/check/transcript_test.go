package check

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// transcript is a hand-written run under testdata/: a history, and for the
// checkers that need them the final views, what clients were shown and the
// fault windows. Times are milliseconds from the start of the run, which
// keeps the files readable.
type transcript struct {
	About string `json:"about"`
	Ops   []struct {
		Process  int      `json:"process"`
		Kind     string   `json:"kind"`
		Conv     string   `json:"conv"`
		Cmid     string   `json:"cmid"`
		Call     int64    `json:"call"`
		Return   int64    `json:"return"`
		Status   Status   `json:"status"`
		Seq      uint64   `json:"seq"`
		Read     []string `json:"read"`
		Gateway  string   `json:"gateway"`
		Node     string   `json:"node"`
		ReadMode string   `json:"read_mode"`
		MsgID    string   `json:"msg_id"`
		Side     string   `json:"side"`
		Error    string   `json:"error"`
	} `json:"ops"`
	Views []FinalView `json:"views"`
	Shown []struct {
		Client string `json:"client"`
		Conv   string `json:"conv"`
		ID     string `json:"id"`
		Seq    uint64 `json:"seq"`
		Time   int64  `json:"time"`
	} `json:"shown"`
	Faults []struct {
		Start int64 `json:"start"`
		End   int64 `json:"end"`
	} `json:"faults"`
	DetectionMs int64 `json:"detection_ms"`
}

// run is a transcript with its times made absolute.
type run struct {
	about     string
	ops       []Op
	views     []FinalView
	shown     []Shown
	faults    []Window
	detection time.Duration
}

// transcriptBase is the start of every transcript's run.
var transcriptBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// ms is the time ms milliseconds into a transcript's run.
func ms(ms int64) time.Time { return transcriptBase.Add(time.Duration(ms) * time.Millisecond) }

// loadRun reads testdata/name.json, refusing unknown fields so that a typo
// in a hand-written file cannot silently drop what it meant to test.
func loadRun(t testing.TB, name string) run {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var tr transcript
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tr); err != nil {
		t.Fatalf("testdata/%s.json: %v", name, err)
	}
	r := run{about: tr.About, views: tr.Views, detection: time.Duration(tr.DetectionMs) * time.Millisecond}
	for _, o := range tr.Ops {
		r.ops = append(r.ops, Op{
			Process: o.Process, Kind: o.Kind, Conv: o.Conv, Cmid: o.Cmid,
			Call: ms(o.Call), Return: ms(o.Return),
			Status: o.Status, Seq: o.Seq, Read: o.Read,
			Gateway: o.Gateway, Node: o.Node, ReadMode: o.ReadMode, MsgID: o.MsgID, Side: o.Side, Error: o.Error,
		})
	}
	for _, s := range tr.Shown {
		r.shown = append(r.shown, Shown{Client: s.Client, Conv: s.Conv, ID: s.ID, Seq: s.Seq, Time: ms(s.Time)})
	}
	for _, f := range tr.Faults {
		w := Window{Start: ms(f.Start)}
		if f.End != 0 {
			w.End = ms(f.End)
		}
		r.faults = append(r.faults, w)
	}
	return r
}

// loadTranscript reads testdata/name.json as a history.
func loadTranscript(t testing.TB, name string) (about string, ops []Op) {
	t.Helper()
	r := loadRun(t, name)
	return r.about, r.ops
}
