package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// StateFileName is the name of the file recording the lab most recently
// started on this machine.
const StateFileName = "mpim-lab.json"

// Record is what the state file holds about a running lab, so that
// `mpim fault` without --lab finds it.
type Record struct {
	// URL is the dashboard and HTTP API, http://HOST:PORT/.
	URL     string    `json:"url"`
	PID     int       `json:"pid"`
	Data    string    `json:"data"`
	Started time.Time `json:"started"`
}

// DefaultStateFile returns $XDG_RUNTIME_DIR/mpim-lab.json, or
// os.TempDir()/mpim-lab.json when XDG_RUNTIME_DIR is unset.
func DefaultStateFile() string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, StateFileName)
}

// ReadState returns the lab recorded in the state file at path ("" means
// DefaultStateFile()). It returns an error wrapping ErrNoLab when there is
// no file or the lab that wrote it is no longer running.
func ReadState(path string) (Record, error) {
	if path == "" {
		path = DefaultStateFile()
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, fmt.Errorf("%w (no %s)", ErrNoLab, path)
	}
	if err != nil {
		return Record{}, fmt.Errorf("lab: read %s: %w", path, err)
	}
	var s Record
	if err := json.Unmarshal(b, &s); err != nil {
		return Record{}, fmt.Errorf("lab: %s is not a lab state file: %w (delete it)", path, err)
	}
	if !alive(s.PID) {
		return s, fmt.Errorf("%w (the lab recorded in %s, pid %d, has exited)", ErrNoLab, path, s.PID)
	}
	return s, nil
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// writeState records this lab in the state file, atomically.
func (l *Lab) writeState() error {
	if l.stateFile == "-" {
		return nil
	}
	b, err := json.MarshalIndent(Record{URL: l.dashboard, PID: os.Getpid(), Data: l.data, Started: l.started}, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.stateFile + ".tmp" + fmt.Sprint(os.Getpid())
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, l.stateFile)
}

// removeState deletes the state file if it still describes this lab (a
// newer lab may have replaced it).
func (l *Lab) removeState() {
	if l.stateFile == "-" || l.stateFile == "" {
		return
	}
	b, err := os.ReadFile(l.stateFile)
	if err != nil {
		return
	}
	var s Record
	if json.Unmarshal(b, &s) == nil && s.PID == os.Getpid() && s.URL == l.dashboard {
		_ = os.Remove(l.stateFile)
	}
}
