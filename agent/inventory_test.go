package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeInventory(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hosts.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const threeHosts = `hosts:
  - {name: a, agent: "10.0.0.1:7400", address: 10.0.0.1}
  - {name: b, agent: "10.0.0.2:7400", address: 10.0.0.2}
  - {name: c, agent: "10.0.0.3:7400", address: 10.0.0.3}
credentials: ./creds
`

func TestInventoryDefaultPlacement(t *testing.T) {
	p := writeInventory(t, threeHosts)
	inv, err := LoadInventory(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(p), "creds"); inv.Credentials != want {
		t.Errorf("credentials %s, want %s (relative to the file)", inv.Credentials, want)
	}
	place, err := inv.Placement(5, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"n1": "a", "n2": "b", "n3": "c", "n4": "a", "n5": "b", "g1": "a", "g2": "b", "g3": "c", "redis": "c"}
	for m, h := range want {
		if place[m] != h {
			t.Errorf("%s on %q, want %q (placement %v)", m, place[m], h, place)
		}
	}
	inv.Place = map[string]string{"redis": "a", "g1": "b"}
	place, _ = inv.Placement(3, 3)
	if place["redis"] != "a" || place["g1"] != "b" || place["n1"] != "a" {
		t.Errorf("place: overrides: %v", place)
	}
	inv.Place = map[string]string{"n9": "a"}
	if _, err := inv.Placement(3, 3); err == nil || !strings.Contains(err.Error(), "n9") {
		t.Errorf("placing a member the cluster lacks: %v", err)
	}
}

func TestInventoryRefusesMistakes(t *testing.T) {
	for name, c := range map[string]struct{ body, want string }{
		"unknown key":       {threeHosts + "colour: blue\n", "colour"},
		"no credentials":    {strings.Replace(threeHosts, "credentials: ./creds\n", "", 1), "credentials"},
		"host twice":        {strings.Replace(threeHosts, "credentials:", "  - {name: a, agent: \"x:1\", address: x}\ncredentials:", 1), "twice"},
		"bad agent address": {strings.Replace(threeHosts, `"10.0.0.1:7400"`, `"10.0.0.1"`, 1), "HOST:PORT"},
		"no address":        {strings.Replace(threeHosts, ", address: 10.0.0.2", "", 1), "address is required"},
		"bad name":          {strings.Replace(threeHosts, "name: c", "name: C/1", 1), "name"},
		"place on nothing":  {threeHosts + "place: {n1: z}\n", "not a host"},
		"no hosts":          {"credentials: ./c\n", "no hosts"},
	} {
		_, err := LoadInventory(writeInventory(t, c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}
