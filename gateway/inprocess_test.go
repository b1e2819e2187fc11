package gateway_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"mpim/client"
	"mpim/internal/testcluster"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestInProcessChat runs two users on two gateways through one node under
// the race detector: register, login, DM, pushes in order.
func TestInProcessChat(t *testing.T) {
	c := testcluster.StartInProcess(t, testcluster.Options{Nodes: 1, Gateways: 2})
	ctx := ctxT(t)
	a, err := client.Dial(ctx, c.URL(0), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := client.Dial(ctx, c.URL(1), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, x := range []struct {
		c    *client.Conn
		name string
	}{{a, "alice"}, {b, "bob"}} {
		if _, err := x.c.Register(ctx, x.name, "password1"); err != nil {
			t.Fatalf("register %s: %v", x.name, err)
		}
		if _, err := x.c.Login(ctx, x.name, "password1", ""); err != nil {
			t.Fatalf("login %s: %v", x.name, err)
		}
	}
	for i := 0; i < 5; i++ {
		r, err := a.Send(ctx, client.SendArgs{To: "bob", Text: "hi", Cmid: "c" + string(rune('0'+i))})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if r.Seq != uint64(i+1) {
			t.Fatalf("send %d got seq %d", i, r.Seq)
		}
	}
	for want := uint64(1); want <= 5; {
		select {
		case p := <-b.Pushes():
			if p.Kind != "message" {
				continue
			}
			m, err := p.Message()
			if err != nil {
				t.Fatal(err)
			}
			if m.Seq != want {
				t.Fatalf("bob got seq %d, want %d", m.Seq, want)
			}
			want++
		case <-ctx.Done():
			t.Fatalf("bob got only up to seq %d", want-1)
		}
	}
}

// TestMain checks that stopped gateways and nodes leave no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
