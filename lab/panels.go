package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"mpim/internal/clustertls"
	pb "mpim/proto/mpimpb"
)

// PanelUsers are the accounts of the dashboard's two chat panels.
var PanelUsers = []string{"alice", "bob"}

// panelCredentials answers the panels' password — made by the lab, never
// in the pages it serves — to the teacher's own pages only (the same rule
// as the controls): a student who reads the dashboard from another machine
// cannot log in as a panel's user.
func (l *Lab) panelCredentials(w http.ResponseWriter, r *http.Request) {
	if why := controlRefusal(r); why != "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "the chat panels are the teacher's: " + why + "; students use the student page"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": PanelUsers, "password": l.panelPassword})
}

// reservePanels registers the panels' users with the lab's password on a
// fresh cluster (after Up and after a mode switch) when students can reach
// the lab (it listens beyond loopback) or Config.ReservePanels says so, so
// that a student cannot take those names first.
func (l *Lab) reservePanels(ctx context.Context) error {
	if !l.cfg.ReservePanels && !l.listenAll {
		return nil
	}
	var addr string
	for _, m := range l.Members() {
		if m.Kind == KindNode && m.State == StateRunning {
			addr = m.GRPC
			break
		}
	}
	if addr == "" {
		return errors.New("lab: no node running to reserve the panels' users")
	}
	creds, err := clustertls.Load(l.tlsDir)
	if err != nil {
		return err
	}
	// Straight to a node, as a member would (the lab holds the cluster's
	// credentials); the node hashes the password.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(creds.Client())))
	if err != nil {
		return err
	}
	defer cc.Close()
	users := pb.NewUsersClient(cc)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, u := range PanelUsers {
		// A register that timed out may have been applied: a retry that
		// meets the name taken found the account it made.
		for try := 0; ; try++ {
			_, err = users.Register(ctx, &pb.RegisterRequest{User: u, Password: l.panelPassword})
			if err == nil || (try > 0 && status.Code(err) == codes.AlreadyExists) || try == 4 || ctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("lab: reserve %s: %w", u, err)
		}
	}
	return nil
}

// replicaCache answers GET /api/replicas: every node hashes every
// conversation for it, so readers share one reading a second.
type replicaCache struct {
	mu   sync.Mutex
	at   time.Time
	last map[string]Replica
}

func (c *replicaCache) get(ctx context.Context, l *Lab) map[string]Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil || time.Since(c.at) > time.Second {
		c.last, c.at = l.Replicas(ctx), time.Now()
	}
	return c.last
}

// handleReplicas serves the replicas' digests: in full to the teacher's
// pages; to anyone else with each conversation named by a hash of its id,
// so that divergence still shows but not who talks to whom.
func (l *Lab) handleReplicas(w http.ResponseWriter, r *http.Request) {
	reps := l.replicas.get(r.Context(), l)
	if controlRefusal(r) == "" {
		writeJSON(w, http.StatusOK, reps)
		return
	}
	out := make(map[string]Replica, len(reps))
	for node, rp := range reps {
		anon := Replica{Error: rp.Error, Convs: map[string]ConvReplica{}}
		for conv, c := range rp.Convs {
			h := sha256.Sum256([]byte(l.panelPassword + conv))
			anon.Convs["c-"+hex.EncodeToString(h[:4])] = c
		}
		out[node] = anon
	}
	writeJSON(w, http.StatusOK, out)
}
