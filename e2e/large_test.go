package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mpim/client"
	"mpim/gateway/wire"
)

// TestAPLargeBacklogConverges: a node cut off while 1200 messages of the
// largest text (4096 bytes, each '<' — six bytes in a client's JSON) and
// the longest cmid are written on the other side gets all of them after
// heal. The backlog is
// ~5 MB: a pull page cut by count alone would pass gRPC's 4 MiB limit,
// fail, and be asked for again forever (the replicas would never agree);
// pages cut by bytes arrive. Then history and sync of those messages with
// the largest limit (1000) answer a page that fits, says more, and pages
// through them all — never a false rate_limited.
func TestAPLargeBacklogConverges(t *testing.T) {
	c := startLab(t, labOpts{mode: "ap", nodes: 3, gateways: 3, gatewayArgs: []string{"--rate-limit", "0"}})
	a1, b2, c3 := apSetup(t, c)
	c.apply("partition isolate:n3")
	text := strings.Repeat("<", wire.MaxText)
	const n = 1200
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			conn := a1
			if w%2 == 1 {
				conn = b2
			}
			for i := w; i < n; i += 8 {
				if _, err := conn.Send(ctxFor(t, 30*time.Second), client.SendArgs{Group: "room", Text: text, Cmid: fmt.Sprintf("big-%d-%0*d", i, wire.MaxCmid-12, 0)}); err != nil {
					errs <- fmt.Errorf("send %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := c.convCount("n3", "g:room"); got != 0 {
		t.Fatalf("n3 holds %d of the messages written while it was cut off: the partition leaked", got)
	}
	healed := time.Now()
	c.apply("heal")
	counts := c.waitConverged(60*time.Second, "n1", "n2", "n3")
	if counts["g:room"] != n {
		t.Fatalf("after heal the replicas agree on %d messages in g:room, want %d", counts["g:room"], n)
	}
	t.Logf("%d messages of %d bytes (~%d MB) reached the cut-off node %v after heal", n, wire.MaxText, n*wire.MaxText>>20, time.Since(healed).Round(time.Millisecond))

	// History with the largest limit: a page that fits, then the rest.
	ctx := ctxFor(t, 60*time.Second)
	seen := map[string]bool{}
	var before uint64
	pages := 0
	for {
		h, err := c3.History(ctx, client.HistoryArgs{Conv: "g:room", Limit: wire.MaxHistoryLimit, Before: before, Read: "local"})
		if err != nil {
			t.Fatalf("history of %d large messages, limit %d, page %d: %v", n, wire.MaxHistoryLimit, pages+1, err)
		}
		pages++
		if len(h.Messages) == 0 {
			t.Fatalf("history page %d is empty with more=%v", pages, h.More)
		}
		for _, m := range h.Messages {
			seen[m.Cmid] = true
		}
		before = h.Messages[0].Seq
		if !h.More {
			break
		}
	}
	if len(seen) != n || pages < 2 {
		t.Fatalf("history paged %d distinct messages in %d pages, want %d in several pages (each cut by bytes)", len(seen), pages, n)
	}
	// Sync with the largest limit, from nothing.
	seen = map[string]bool{}
	var cursor string
	for pages = 0; ; {
		args := client.SyncArgs{Cursor: cursor, Limit: wire.MaxSyncLimit}
		if cursor == "" {
			args.After = map[string]uint64{"g:room": 0}
		}
		s, err := c3.Sync(ctx, args)
		if err != nil {
			t.Fatalf("sync page %d: %v", pages+1, err)
		}
		pages++
		for _, m := range s.Messages {
			seen[m.Cmid] = true
		}
		cursor = s.Cursor
		if !s.More {
			break
		}
		if pages > 100 {
			t.Fatal("sync never finished")
		}
	}
	if len(seen) != n || pages < 2 {
		t.Fatalf("sync paged %d distinct messages in %d pages, want %d in several pages", len(seen), pages, n)
	}
}
