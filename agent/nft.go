package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"mpim/chaos/hostnet"
)

// support is what the probe found this host can do.
type support struct {
	Nftables, Netem bool
	Why             map[string]string
}

// probe tries what the agent needs, by doing it: load and delete a
// throwaway nftables table; add a netem qdisc to a throwaway dummy link.
// Shelling out to nft and ip (rather than github.com/google/nftables and
// vishvananda/netlink) keeps the rules readable as text (the lab's netns
// backend writes the same syntax, and an operator can paste them into
// `nft -f`), loads a whole table in one transaction, and adds no
// dependency; the price is that the host needs the nft and ip commands.
func probe() support {
	s := support{Why: map[string]string{}}
	probe := "mpimprobe" + strconv.Itoa(os.Getpid())
	if err := nftLoad("table inet " + probe + " { chain in { type filter hook input priority 0; policy accept; ip saddr 10.0.0.1 numgen random mod 100 < 5 drop\n}\n}\ndelete table inet " + probe + "\n"); err != nil {
		s.Why["nftables"] = err.Error()
	} else {
		s.Nftables = true
	}
	link := "mpd" + strconv.Itoa(os.Getpid()%100000)
	if err := run("ip", "link", "add", link, "type", "dummy"); err != nil {
		s.Why["netem"] = err.Error()
		return s
	}
	defer run("ip", "link", "del", link)
	if err := run("tc", "qdisc", "add", "dev", link, "root", "netem", "delay", "10ms"); err != nil {
		s.Why["netem"] = err.Error()
	} else {
		s.Netem = true
	}
	return s
}

// nftTable is the agent's table, inet mpim.
type nftTable struct {
	mu sync.Mutex
}

// load replaces the table with rules, in one transaction.
func (t *nftTable) load(rules []hostnet.Rule) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return nftLoad(hostnet.Render(rules))
}

// remove deletes the table.
func (t *nftTable) remove() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return nftLoad("table inet mpim\ndelete table inet mpim\n")
}

func nftLoad(ruleset string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
