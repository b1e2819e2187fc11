package ap

import (
	"testing"

	"mpim/fsm"
)

// TestCountAbove checks the tentative count the dashboard shows: message
// entries (not other commands) whose clock is above the stable clock, over
// every origin, bounded per origin.
func TestCountAbove(t *testing.T) {
	l, err := openLog(t.TempDir(), func(Entry) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	send := fsm.Command{Send: &fsm.Send{Conv: "g:lab", Text: "hi"}}
	other := fsm.Command{GroupJoin: &fsm.GroupMember{Group: "lab"}}
	var entries []Entry
	for i := uint64(1); i <= 5; i++ {
		entries = append(entries, Entry{Origin: "n1", OSeq: i, HLC: 100 * i, Cmd: send})
		entries = append(entries, Entry{Origin: "n10", OSeq: i, HLC: 100*i + 50, Cmd: send})
	}
	entries = append(entries, Entry{Origin: "n2", OSeq: 1, HLC: 1000, Cmd: other})
	appendTo(t, l, entries)
	for _, tc := range []struct {
		stable uint64
		limit  int
		want   int
		capped bool
	}{
		{stable: 0, limit: 100, want: 10},
		{stable: 300, limit: 100, want: 5}, // n1: 400, 500; n10: 350, 450, 550
		{stable: 550, limit: 100, want: 0}, // n2's entry is not a message
		{stable: 0, limit: 2, want: 4, capped: true},
	} {
		got, capped := l.countAbove(tc.stable, tc.limit)
		if got != tc.want || capped != tc.capped {
			t.Errorf("countAbove(%d, limit %d) = %d (capped %v), want %d (capped %v)", tc.stable, tc.limit, got, capped, tc.want, tc.capped)
		}
	}
}

// appendTo encodes entries and appends them to l without fsync.
func appendTo(t testing.TB, l *log, entries []Entry) {
	t.Helper()
	var encoded [][]byte
	for _, e := range entries {
		b, err := EncodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, b)
	}
	if err := l.appendEntries(entries, encoded, false); err != nil {
		t.Fatal(err)
	}
}
