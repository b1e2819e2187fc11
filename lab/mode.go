package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"mpim/chaos/fault"
)

// EventMode: the lab restarted every member in a consistency mode, on
// fresh data (SwitchMode); Detail names the mode.
const EventMode EventKind = "mode"

// ErrBusy means another mode switch is still running.
var ErrBusy = errors.New("lab: a mode switch is already running; wait for it to finish")

// currentMode returns the consistency mode the nodes run now.
func (l *Lab) currentMode() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mode
}

// SwitchMode restarts the whole cluster in mode ("cp" or "ap") on fresh
// data: it heals the network, stops every member (gateways, nodes, Redis,
// as Close does), deletes the nodes' data directories, and starts every
// member again with the same ports and the new --mode. Users, groups and
// messages are gone afterwards (the two modes keep different data on
// disk, and a lecture wants a clean slate); the logs are kept. The same
// mode restarts the cluster fresh. An external Redis is not restarted nor
// flushed. If a member does not become ready, the error says which, and
// the lab stays up with that member down.
func (l *Lab) SwitchMode(ctx context.Context, mode string) error {
	if mode != "cp" && mode != "ap" {
		return fmt.Errorf("%w: mode %q: use cp or ap", ErrConfig, mode)
	}
	if !l.switching.CompareAndSwap(false, true) {
		return ErrBusy
	}
	defer l.switching.Store(false)
	l.mu.Lock()
	if l.closed || !l.up {
		l.mu.Unlock()
		return ErrClosed
	}
	members := append([]*member(nil), l.members...)
	l.mu.Unlock()

	l.stopLeaderWatch()
	if _, err := l.Apply(ctx, fault.Fault{Verb: fault.Heal}); err != nil {
		return err
	}
	l.network.mu.Lock()
	l.network.downLeader = nil
	l.network.mu.Unlock()

	waves := map[Kind][]*member{}
	for _, m := range members {
		waves[m.info.Kind] = append(waves[m.info.Kind], m)
	}
	for _, kind := range []Kind{KindGateway, KindNode, KindRedis} {
		var wg sync.WaitGroup
		for _, m := range waves[kind] {
			wg.Go(func() {
				m.op.Lock()
				defer m.op.Unlock()
				l.stop(m)
			})
		}
		wg.Wait()
	}
	for _, m := range waves[KindNode] {
		if m.host != "" {
			if err := l.actRemote(m, "wipe"); err != nil {
				return err
			}
			continue
		}
		if err := os.RemoveAll(m.info.Data); err != nil {
			return fmt.Errorf("lab: clear %s for a fresh start: %w", m.info.Data, err)
		}
		if err := os.MkdirAll(m.info.Data, 0o755); err != nil {
			return fmt.Errorf("lab: create %s: %w", m.info.Data, err)
		}
	}
	for _, m := range waves[KindNode] {
		m.op.Lock()
		m.args = withFlag(m.args, "--mode", mode)
		m.op.Unlock()
	}
	l.mu.Lock()
	l.mode = mode
	l.mu.Unlock()

	// Every wave is started even if a member of an earlier one failed:
	// the lab stays up with that member down, as documented.
	var errs []error
	for _, kind := range []Kind{KindRedis, KindNode, KindGateway} {
		errs = append(errs, l.startAll(ctx, waves[kind]))
	}
	l.startLeaderWatch(ctx)
	if err := l.reservePanels(ctx); err != nil {
		l.log.Warn("could not reserve the chat panels' users", "err", err)
	}
	l.emit(Event{Kind: EventMode, Detail: "mode " + mode + " (fresh data)"})
	return errors.Join(errs...)
}

// withFlag returns args with the value after flag replaced, or flag and
// value appended when args lack it.
func withFlag(args []string, flag, value string) []string {
	out := slices.Clone(args)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == flag {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}
