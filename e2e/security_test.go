package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"mpim/fsm"
	"mpim/internal/channels"
	"mpim/internal/clustertls"
	"mpim/internal/testcluster"
	"mpim/node/ap"
	pb "mpim/proto/mpimpb"
)

// TestClusterTrafficAuthenticated: the cluster's own traffic accepts only
// its members. A node's gRPC port refuses a caller without the cluster's
// certificate and one with another authority's; the node-to-node port
// refuses a handshake without it too; Redis wants the lab's password; an
// AP log entry published on Redis by someone who has the password but not
// the cluster's key is dropped, counted, and never applied; and no
// member's command line (what `ps` shows every local user) holds a secret.
func TestClusterTrafficAuthenticated(t *testing.T) {
	c := startLab(t, labOpts{mode: "ap", nodes: 3, gateways: 1})
	ctx := ctxFor(t, 30*time.Second)
	n1 := c.member("n1")
	status := func(opt grpc.DialOption) error {
		cc, err := grpc.NewClient(n1.GRPC, opt)
		if err != nil {
			return err
		}
		defer cc.Close()
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = pb.NewAdminClient(cc).Status(cctx, &pb.Empty{})
		return err
	}
	if err := status(grpc.WithTransportCredentials(insecure.NewCredentials())); err == nil {
		t.Fatal("a node answered Admin.Status over plain TCP, without the cluster's certificate")
	}
	other := filepath.Join(t.TempDir(), "other")
	if err := clustertls.Generate(other); err != nil {
		t.Fatal(err)
	}
	stranger, err := clustertls.Load(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := status(grpc.WithTransportCredentials(credentials.NewTLS(stranger.Client()))); err == nil {
		t.Fatal("a node answered a caller whose certificate another authority signed")
	}
	mine, err := clustertls.Load(c.CredentialsDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := status(grpc.WithTransportCredentials(credentials.NewTLS(mine.Client()))); err != nil {
		t.Fatalf("a node refused the lab's own credentials: %v", err)
	}
	// The node-to-node port: a caller that trusts the node but presents
	// another authority's certificate is refused before anything it sends
	// is read.
	cfg := stranger.Client()
	cfg.InsecureSkipVerify = true
	raw, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", n1.Raft, cfg)
	if err == nil {
		raw.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = raw.Write([]byte{1, 0, 0}) // a Raft stream's header
		_, err = raw.Read(make([]byte, 1))
		raw.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("the node-to-node port took a stranger's certificate: %v", err)
	}

	// Redis without the password.
	redisAddr := strings.TrimPrefix(c.member("redis").Redis, "redis://")
	anon := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer anon.Close()
	if err := anon.Publish(ctx, channels.APLog, "x").Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("Redis took a PUBLISH without the password: %v", err)
	}

	// An insider with the Redis password forges a registration entry.
	c.register("g1", "alice")
	c.waitConverged(10*time.Second, "n1", "n2", "n3")
	insider := redis.NewClient(&redis.Options{Addr: redisAddr, Password: c.RedisPassword()})
	defer insider.Close()
	forged, err := ap.EncodeEntry(ap.Entry{Origin: "n2", OSeq: 1 << 30, HLC: uint64(time.Now().UnixMilli()) << 16,
		Cmd: fsm.Command{Register: &fsm.Register{Name: "mallory", PwHash: []byte("x"), Created: 1, UID: 2<<40 | 1<<30}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := insider.Publish(ctx, channels.APLog, forged).Err(); err != nil {
		t.Fatalf("publish with the password: %v", err)
	}
	eventually(t, 10*time.Second, "every node counts the forged entry", func() bool {
		for _, n := range []string{"n1", "n2", "n3"} {
			if st, ok := c.apStatus(n); !ok || st.Forged == 0 {
				return false
			}
		}
		return true
	})
	// Had n1 applied it, the name would be taken there.
	if _, err := c.dial("g1").Register(ctx, "mallory", password); err != nil {
		t.Fatalf("registering the name of the forged entry: %v (was the forged entry applied?)", err)
	}

	// No secret on any member's command line.
	for _, m := range c.Members() {
		if m.PID == 0 {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(m.PID) + "/cmdline")
		if err != nil {
			continue
		}
		for what, secret := range map[string]string{"token secret": testcluster.Secret, "Redis password": c.RedisPassword()} {
			if secret != "" && strings.Contains(string(cmdline), secret) {
				t.Errorf("%s's command line shows the %s", m.Name, what)
			}
		}
	}
}
