package chaos

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
func readConversation(ctx context.Context, c *client.Conn, conv, mode string) (client.HistoryResult, error) {
	h, err := c.History(ctx, client.HistoryArgs{Conv: conv, Limit: historyPage, Read: mode})
	if err != nil {
		return h, err
	}
	seen := make(map[string]bool, len(h.Messages))
	for _, m := range h.Messages {
		seen[m.ID] = true
	}
	page := h.Messages
	for more := h.More; more && len(page) > 0; {
		oldest := page[0].Seq
		for _, m := range page {
			oldest = min(oldest, m.Seq)
		}
		if oldest <= 1 {
			break
		}
		p, err := c.History(ctx, client.HistoryArgs{Conv: conv, Before: oldest, Limit: historyPage, Read: mode})
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
		page, more = p.Messages, p.More
	}
	h.More = false
	return h, nil
}
