package netns

import (
	"fmt"
	"io"
	"mpim/internal/testenv"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The test binary plays the processes inside the namespaces: with
// helperEnv=echo it serves an echo on its argument, with helperEnv=dial it
// dials its argument, writes a byte and expects it back within a second.
const helperEnv = "MPIM_NETNS_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "echo":
		ln, err := net.Listen("tcp", os.Args[len(os.Args)-1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(0)
			}
			go io.Copy(c, c)
		}
	case "dial":
		c, err := net.DialTimeout("tcp", os.Args[len(os.Args)-1], time.Second)
		if err != nil {
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(time.Second))
		b := []byte{'x'}
		if _, err := c.Write(b); err != nil {
			os.Exit(1)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func needSupport(t *testing.T) {
	t.Helper()
	testenv.Need(t, testenv.NetNS, Probe().Err())
}

// TestProbe: the probe answers without leaving a namespace behind, and a
// missing capability carries its reason.
func TestProbe(t *testing.T) {
	s := Probe()
	t.Logf("support: %+v", s)
	if !s.Netem && s.Why["netem"] == "" {
		t.Error("netem missing without a reason")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), fmt.Sprintf("mpim%d-probe", os.Getpid())) {
		t.Error("the probe left its namespace behind")
	}
}

// TestFaults: two members in their own namespaces talk over the bridge; a
// hold a->b and a 100% loss cut the traffic, a release and a cleared loss
// restore it; delay is refused with a reason on a kernel without netem;
// Close removes every namespace.
func TestFaults(t *testing.T) {
	needSupport(t)
	n, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	a, err := n.Add("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Add("b")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	path, args := n.Command("b", self, []string{"-test.run=^$", b + ":9000"})
	echo := exec.Command(path, args...)
	echo.Env = append(os.Environ(), helperEnv+"=echo")
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { echo.Process.Kill(); echo.Wait() }()
	dial := func() bool {
		path, args := n.Command("a", self, []string{"-test.run=^$", b + ":9000"})
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), helperEnv+"=dial")
		return cmd.Run() == nil
	}
	reachable := func(want bool, what string) {
		t.Helper()
		for i := 0; i < 20; i++ { // the echo may still be starting
			if dial() == want {
				return
			}
			if !want {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: a reaches b = %v, want %v", what, !want, want)
	}
	reachable(true, "no fault")
	if err := n.Hold("a", "b"); err != nil {
		t.Fatal(err)
	}
	if rs := n.Ruleset("b"); !strings.Contains(rs, "ip saddr "+a+" drop") {
		t.Fatalf("b's ruleset lacks the hold:\n%s", rs)
	}
	reachable(false, "hold a->b")
	if err := n.Release("a", "b"); err != nil {
		t.Fatal(err)
	}
	reachable(true, "released")
	if err := n.SetLoss("a", "b", 100); err != nil {
		t.Fatal(err)
	}
	if f := n.Faults(); len(f) != 1 || f[0].LossPercent != 100 {
		t.Fatalf("faults %+v, want 100%% loss a->b", f)
	}
	reachable(false, "100% loss")
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	reachable(true, "healed")
	// A batch takes effect at its end, all at once.
	if err := n.Batch(func() error {
		if err := n.Hold("a", "b"); err != nil {
			return err
		}
		reachable(true, "hold inside a batch, before its end")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	reachable(false, "after the batch")
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	reachable(true, "healed again")
	if err := n.SetDelay("a", "b", 10*time.Millisecond, 0); err == nil || !strings.Contains(err.Error(), "netem") {
		t.Errorf("delay: err %v, want an unsupported error naming netem", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), n.prefix+"-") {
		t.Fatalf("namespaces left after Close:\n%s", out)
	}
}
