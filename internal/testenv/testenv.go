// Package testenv decides what a test does when the host lacks something it
// needs (network namespaces, a browser): on a developer's machine it skips,
// saying why; where the environment promises the capability — CI, whose
// .ci/run installs it and sets MPIM_REQUIRE_<NAME>=1 — the same absence is
// a failure, so that a run which silently tested nothing is never green.
package testenv

import (
	"os"
	"testing"
)

// Capabilities named by MPIM_REQUIRE_<NAME>.
const (
	// NetNS is the netns fault backend: root, ip netns and nftables.
	NetNS = "NETNS"
	// Browser is a headless Chromium for the dashboard's browser tests.
	Browser = "BROWSER"
)

// Required reports whether the environment promises capability name.
func Required(name string) bool { return os.Getenv("MPIM_REQUIRE_"+name) == "1" }

// Need stops the test when missing is not nil: a failure when the
// environment requires capability name, a skip otherwise.
func Need(t testing.TB, name string, missing error) {
	t.Helper()
	if missing == nil {
		return
	}
	if Required(name) {
		t.Fatalf("MPIM_REQUIRE_%s=1 but this host lacks it: %v", name, missing)
		return
	}
	t.Skipf("skipped: this host lacks %s (%v); set MPIM_REQUIRE_%s=1 to make this a failure", name, missing, name)
}
