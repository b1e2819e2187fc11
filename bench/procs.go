package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// A load process is the part of the clients one OS process holds. With
// --procs 1 it is the bench process itself; with --procs N each is a child
// running `mpim bench worker` (the same binary), which is how 20k client
// sockets fit under a per-process descriptor limit of 20000, and how the
// clients' CPU spreads over cores.
type loadProc interface {
	// runPhase runs one phase and returns its stats.
	runPhase(ctx context.Context, ph Phase) (*phaseStats, error)
	// counts is the progress so far.
	counts() Counts
	close() error
}

// localProc runs the clients in this process.
type localProc struct{ w *worker }

func startLocal(ctx context.Context, plan workerPlan) (*localProc, error) {
	w := &worker{plan: plan}
	if err := w.connect(ctx); err != nil {
		return nil, err
	}
	return &localProc{w}, nil
}

func (l *localProc) runPhase(ctx context.Context, ph Phase) (*phaseStats, error) {
	return l.w.run(ctx, ph), nil
}
func (l *localProc) counts() Counts { return l.w.prog.snapshot() }
func (l *localProc) close() error   { l.w.close(); return nil }

// childMsg is one line a child writes on stdout.
type childMsg struct {
	Ready    bool        `json:"ready,omitempty"`
	Error    string      `json:"error,omitempty"`
	Progress *Counts     `json:"progress,omitempty"`
	Stats    *phaseStats `json:"stats,omitempty"`
}

// childProc is a `mpim bench worker` child.
type childProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	msgs  chan childMsg
	mu    sync.Mutex
	last  Counts
	done  chan struct{}
}

func startChild(ctx context.Context, binary string, plan workerPlan) (*childProc, error) {
	cmd := exec.Command(binary, "bench", "worker")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start a load process (%s bench worker): %w", binary, err)
	}
	c := &childProc{cmd: cmd, stdin: stdin, msgs: make(chan childMsg, 16), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.msgs)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var m childMsg
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			if m.Progress != nil {
				c.mu.Lock()
				c.last = *m.Progress
				c.mu.Unlock()
				continue
			}
			c.msgs <- m
		}
	}()
	if err := json.NewEncoder(stdin).Encode(plan); err != nil {
		c.close()
		return nil, err
	}
	m, err := c.next(ctx)
	if err == nil && !m.Ready {
		err = errors.New(m.Error)
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("bench: load process %d: %w", cmd.Process.Pid, err)
	}
	return c, nil
}

func (c *childProc) next(ctx context.Context) (childMsg, error) {
	select {
	case m, ok := <-c.msgs:
		if !ok {
			return m, errors.New("exited")
		}
		return m, nil
	case <-ctx.Done():
		return childMsg{}, ctx.Err()
	}
}

func (c *childProc) runPhase(ctx context.Context, ph Phase) (*phaseStats, error) {
	if err := json.NewEncoder(c.stdin).Encode(ph); err != nil {
		return nil, fmt.Errorf("bench: load process %d: %w", c.cmd.Process.Pid, err)
	}
	m, err := c.next(ctx)
	if err == nil && m.Stats == nil {
		err = errors.New(m.Error)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: load process %d: %w", c.cmd.Process.Pid, err)
	}
	return m.Stats, nil
}

func (c *childProc) counts() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *childProc) close() error {
	c.stdin.Close() // EOF: the child closes its connections and exits
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
	}
	return c.cmd.Wait()
}

// Worker is the body of `mpim bench worker`: it reads a plan from in,
// connects its clients, then runs each phase it reads, writing progress
// every second and the phase's stats to out. It returns at EOF.
func Worker(ctx context.Context, in io.Reader, out io.Writer) error {
	raiseFDLimit()
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(out)
	var mu sync.Mutex
	emit := func(m childMsg) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(m)
	}
	var plan workerPlan
	if err := dec.Decode(&plan); err != nil {
		return fmt.Errorf("bench worker: read plan: %w", err)
	}
	w := &worker{plan: plan}
	if err := w.connect(ctx); err != nil {
		emit(childMsg{Error: err.Error()})
		return err
	}
	defer w.close()
	emit(childMsg{Ready: true})
	for {
		var ph Phase
		if err := dec.Decode(&ph); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("bench worker: read phase: %w", err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					c := w.prog.snapshot()
					emit(childMsg{Progress: &c})
				case <-stop:
					return
				}
			}
		})
		st := w.run(ctx, ph)
		close(stop)
		wg.Wait()
		emit(childMsg{Stats: st})
	}
}
