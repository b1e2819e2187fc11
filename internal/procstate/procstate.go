// Package procstate is what the lab and the host agent both ask of a
// member process they started: does its health check answer, and has the
// kernel stopped (or continued) it yet.
package procstate

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"time"
)

// client checks /healthz without keeping idle connections (and their
// goroutines) around.
var client = &http.Client{
	Timeout:   time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// Healthy reports whether GET url answers 200 within a second.
func Healthy(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitStopped polls /proc/PID/stat until the process is stopped (state
// T), or with stopped false no longer stopped, the process is gone, or a
// second has passed: so that "paused" holds by the time a pause returns.
func WaitStopped(pid int, stopped bool) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] == 'T') == stopped {
			return
		}
	}
}

// ErrExited: the process ended before it was ready.
var ErrExited = errors.New("procstate: exited before it was ready")

// WaitReady waits for a member to be ready: first for ready (a channel
// closed or sent on when the member printed its ready line; nil: no line
// awaited), then until check answers true, polled every 20 ms. It returns
// ErrExited when done is closed first (or by the time ctx ends), and
// ctx's error when ctx ends.
func WaitReady[T any](ctx context.Context, ready <-chan T, done <-chan struct{}, check func(context.Context) bool) error {
	ended := func() error {
		select {
		case <-done:
			return ErrExited
		default:
			return ctx.Err()
		}
	}
	if ready != nil {
		select {
		case <-ready:
		case <-done:
			return ErrExited
		case <-ctx.Done():
			return ended()
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !check(ctx) {
		select {
		case <-done:
			return ErrExited
		case <-ctx.Done():
			return ended()
		case <-tick.C:
		}
	}
	return nil
}
