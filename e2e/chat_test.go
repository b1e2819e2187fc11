package e2e

import (
	"fmt"
	"testing"
	"time"

	"mpim/client"
)

// TestChat covers the MPIM send sequence end to end on real processes:
// two users on different gateways chat 1:1 and in a group, presence shows
// them online, an offline recipient gets everything at login once and in
// order, a second device gets its own copy, and a retried cmid is a dup.
func TestChat(t *testing.T) {
	c := startLab(t, labOpts{nodes: 1, gateways: 2})
	ctx := ctxFor(t, 60*time.Second)
	for _, u := range []string{"alice", "bob", "carol"} {
		c.register("g1", u)
	}
	alice := c.login("g1", "alice", "phone")
	bob := c.login("g2", "bob", "phone")

	t.Run("presence", func(t *testing.T) {
		// Presence is shared between users who share a conversation:
		// dave, a stranger, reads as offline even while he is online.
		c.register("g1", "dave")
		dave := c.login("g2", "dave", "phone")
		if _, err := alice.GroupCreate(ctx, "friends", []string{"bob", "carol"}); err != nil {
			t.Fatal(err)
		}
		p, err := alice.Presence(ctx, []string{"bob", "carol", "dave"})
		if err != nil {
			t.Fatal(err)
		}
		if p["dave"].Online || p["dave"].Gateway != "" {
			t.Fatalf("a stranger's presence shows %+v, want offline", p["dave"])
		}
		dave.Close()
		if !p["bob"].Online || p["bob"].Gateway != "g2" {
			t.Fatalf("bob's presence = %+v, want online on g2", p["bob"])
		}
		if p["carol"].Online {
			t.Fatalf("carol never logged in but shows online: %+v", p["carol"])
		}
		// alice is now subscribed to carol's presence.
		carol := c.login("g2", "carol", "laptop")
		f := pushOf(t, alice, "presence", 5*time.Second)
		if f.User != "carol" || !f.Online {
			t.Fatalf("presence push = %+v, want carol online", f)
		}
		carol.Close()
	})

	t.Run("dm", func(t *testing.T) {
		var ids []string
		for i := 1; i <= 5; i++ {
			r, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: fmt.Sprintf("hello %d", i), Cmid: fmt.Sprintf("dm-%d", i)})
			if err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			if r.Conv != "dm:alice:bob" || r.Seq != uint64(i) || r.Dup {
				t.Fatalf("send %d reply = %+v, want conv dm:alice:bob seq %d", i, r, i)
			}
			ids = append(ids, r.ID)
		}
		got := messages(t, bob, 5, 10*time.Second)
		for i, m := range got {
			if m.Seq != uint64(i+1) || m.ID != ids[i] || m.From != "alice" || m.Text != fmt.Sprintf("hello %d", i+1) {
				t.Fatalf("bob's push %d = %+v, want seq %d id %s from alice", i, m, i+1, ids[i])
			}
		}
		quiet(t, bob, 300*time.Millisecond)
	})

	t.Run("dup", func(t *testing.T) {
		first, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "once", Cmid: "same-cmid"})
		if err != nil {
			t.Fatal(err)
		}
		again, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "once", Cmid: "same-cmid"})
		if err != nil {
			t.Fatal(err)
		}
		if !again.Dup || again.ID != first.ID || again.Seq != first.Seq || first.Dup {
			t.Fatalf("retry of a cmid: first %+v, again %+v; want the first result with dup true", first, again)
		}
		messages(t, bob, 1, 5*time.Second)
		h, err := bob.History(ctx, client.HistoryArgs{Conv: "dm:alice:bob", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range h.Messages {
			if m.Cmid == "same-cmid" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("history holds %d messages with cmid same-cmid, want 1", n)
		}
		quiet(t, bob, 300*time.Millisecond)
	})

	t.Run("group", func(t *testing.T) {
		if _, err := alice.GroupCreate(ctx, "team", []string{"bob"}); err != nil {
			t.Fatal(err)
		}
		members, err := bob.GroupMembers(ctx, "team")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(members) != "[alice bob]" {
			t.Fatalf("members of team = %v, want [alice bob]", members)
		}
		if _, err := bob.Send(ctx, client.SendArgs{Group: "team", Text: "hi team", Cmid: "g1"}); err != nil {
			t.Fatal(err)
		}
		m := messages(t, alice, 1, 5*time.Second)[0]
		if m.Conv != "g:team" || m.Seq != 1 || m.Text != "hi team" || m.From != "bob" {
			t.Fatalf("group push = %+v", m)
		}
		// The sending connection has the reply; it is not pushed its own message.
		quiet(t, bob, 300*time.Millisecond)
	})

	t.Run("offline-and-second-device", func(t *testing.T) {
		// carol is offline; alice writes to her and to the group carol joins later.
		const n = 30
		for i := 1; i <= n; i++ {
			if _, err := alice.Send(ctx, client.SendArgs{To: "carol", Text: fmt.Sprint(i), Cmid: fmt.Sprint("off-", i)}); err != nil {
				t.Fatal(err)
			}
		}
		check := func(conn *client.Conn, who string) {
			got := messages(t, conn, n, 10*time.Second)
			for i, m := range got {
				if m.Conv != "dm:alice:carol" || m.Seq != uint64(i+1) {
					t.Fatalf("%s: push %d = conv %s seq %d, want dm:alice:carol seq %d (in order, once)", who, i, m.Conv, m.Seq, i+1)
				}
			}
			quiet(t, conn, 500*time.Millisecond)
		}
		laptop := c.login("g2", "carol", "laptop")
		check(laptop, "carol's laptop")
		// A second device has its own delivery cursor: it gets its own copy.
		phone := c.login("g1", "carol", "phone")
		check(phone, "carol's phone")
		// Acknowledge on the laptop; a new login of the laptop gets nothing
		// old, and alice is told of the delivery.
		if err := laptop.Ack(ctx, "dm:alice:carol", n); err != nil {
			t.Fatal(err)
		}
		f := pushOf(t, alice, "delivered", 5*time.Second)
		if f.Conv != "dm:alice:carol" || f.User != "carol" || f.Seq != n {
			t.Fatalf("delivered push = %+v", f)
		}
		laptop.Close()
		again := c.login("g2", "carol", "laptop")
		quiet(t, again, 500*time.Millisecond)
		// Live delivery still reaches both devices, once each.
		if _, err := alice.Send(ctx, client.SendArgs{To: "carol", Text: "live", Cmid: "live-1"}); err != nil {
			t.Fatal(err)
		}
		for _, conn := range []*client.Conn{again, phone} {
			m := messages(t, conn, 1, 5*time.Second)[0]
			if m.Seq != n+1 || m.Text != "live" {
				t.Fatalf("live push = %+v, want seq %d", m, n+1)
			}
		}
	})
}
