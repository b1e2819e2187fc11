package runner

import (
	"context"

	"mpim/client"
)

// historyPage is the protocol's largest history page (docs/protocol.md).
const historyPage = 1000

// readConversation reads every message of conv: the latest page, then
// older pages (before the oldest seq seen) while the node says there are
// more. One page holds at most 1000 messages, and a full-length scenario
// puts a few thousand into each group conversation: a checker that saw
// only the latest page would count every older message as lost and every
// read of a long conversation as stale (and so not linearizable).
//
// In CP mode a committed seq never changes, so the older pages hold what
// they held at the first page's read, and the union is the state at that
// read. In AP mode a page boundary can move while messages are renumbered;
// a message already taken from a newer page is not taken again.
//
// A refused page fails the whole read (the final views ask again, see
// finalViews; the workload's reads are operations of the history and keep
// their first answer).
func readConversation(ctx context.Context, c *client.Conn, conv, mode string) (client.HistoryResult, error) {
	page := func(before uint64) (client.HistoryResult, error) {
		return c.History(ctx, client.HistoryArgs{Conv: conv, Before: before, Limit: historyPage, Read: mode})
	}
	h, err := page(0)
	if err != nil {
		return h, err
	}
	seen := make(map[string]bool, len(h.Messages))
	for _, m := range h.Messages {
		seen[m.ID] = true
	}
	last := h.Messages
	for more := h.More; more && len(last) > 0; {
		oldest := last[0].Seq
		for _, m := range last {
			oldest = min(oldest, m.Seq)
		}
		if oldest <= 1 {
			break
		}
		p, err := page(oldest)
		if err != nil {
			return h, err
		}
		var older []client.Message
		for _, m := range p.Messages {
			if !seen[m.ID] {
				seen[m.ID] = true
				older = append(older, m)
			}
		}
		h.Messages = append(older, h.Messages...)
		last, more = p.Messages, p.More
	}
	h.More = false
	return h, nil
}
