package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Host describes the machine at measurement time: another engineer's tests
// may share these cores, so every result carries the load average.
type Host struct {
	CPUs int `json:"cpus"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute load averages, read
	// when the run started and when it ended.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
	// FDLimit is RLIMIT_NOFILE after raising the soft limit to the hard
	// one, the limit every load process and lab member runs with.
	FDLimit uint64 `json:"fd_limit"`
	Go      string `json:"go"`
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// raiseFDLimit raises RLIMIT_NOFILE's soft limit to the hard limit and
// returns the limit now in force. Child processes (lab members, load
// processes) inherit it.
func raiseFDLimit() uint64 {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	return r.Cur
}

func newHost() Host {
	return Host{CPUs: runtime.NumCPU(), LoadStart: loadAvg(), FDLimit: raiseFDLimit(), Go: runtime.Version()}
}

// rssKiB is a process's resident set size from /proc (0 if unreadable).
func rssKiB(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
