// Package procstate is what the lab and the host agent both ask of a
// member process they started: does its health check answer, and has the
// kernel stopped (or continued) it yet.
package procstate

import (
	"bytes"
	"context"
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
