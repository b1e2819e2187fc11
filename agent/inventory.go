package agent

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Inventory is a hosts.yaml: the hosts of a cluster, where its members
// run, and the credentials every agent and member shares.
type Inventory struct {
	Hosts []Host `yaml:"hosts"`
	// Place maps a member (n1, g1, redis) to a host's name; members it
	// leaves out are placed by Placement's default.
	Place map[string]string `yaml:"place"`
	// Credentials is the directory of the cluster's mutual TLS
	// credentials (made by `mpim agent init`), relative to the file.
	Credentials string `yaml:"credentials"`
}

// Host is one machine with an agent.
type Host struct {
	Name string `yaml:"name"`
	// Agent is the agent's HOST:PORT, as the control machine reaches it.
	Agent string `yaml:"agent"`
	// Address is the address the host's members listen on and the other
	// hosts reach them at (a name or an IPv4 address).
	Address string `yaml:"address"`
}

var hostName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

// LoadInventory reads and checks a hosts.yaml; Credentials comes back
// absolute.
func LoadInventory(path string) (*Inventory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	var inv Inventory
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("hosts: %s: %w", path, err)
	}
	if inv.Credentials == "" {
		return nil, fmt.Errorf("hosts: %s: credentials: the directory made by `mpim agent init DIR` is required", path)
	}
	if !filepath.IsAbs(inv.Credentials) {
		inv.Credentials = filepath.Join(filepath.Dir(path), inv.Credentials)
	}
	if err := inv.Validate(); err != nil {
		return nil, fmt.Errorf("hosts: %s: %w", path, err)
	}
	return &inv, nil
}

// Validate checks names, addresses and placement.
func (inv *Inventory) Validate() error {
	if len(inv.Hosts) == 0 {
		return fmt.Errorf("no hosts")
	}
	seen := map[string]bool{}
	for i, h := range inv.Hosts {
		switch {
		case !hostName.MatchString(h.Name):
			return fmt.Errorf("host %d: name %q: lower-case letters, digits and dashes", i+1, h.Name)
		case seen[h.Name]:
			return fmt.Errorf("host %q twice", h.Name)
		case h.Address == "":
			return fmt.Errorf("host %s: address is required (where its members listen)", h.Name)
		}
		if _, _, err := net.SplitHostPort(h.Agent); err != nil {
			return fmt.Errorf("host %s: agent %q: use HOST:PORT (%v)", h.Name, h.Agent, err)
		}
		seen[h.Name] = true
	}
	for m, h := range inv.Place {
		if !seen[h] {
			return fmt.Errorf("place: %s on %q, which is not a host", m, h)
		}
	}
	return nil
}

// Host returns the host called name.
func (inv *Inventory) Host(name string) (Host, bool) {
	i := slices.IndexFunc(inv.Hosts, func(h Host) bool { return h.Name == name })
	if i < 0 {
		return Host{}, false
	}
	return inv.Hosts[i], true
}

// Placement places every member of a cluster of nodes nodes and gateways
// gateways: what Place says, else round-robin in inventory order — node
// nI and gateway gI on the I-th host (so a gateway shares a host with the
// node it talks to first), and redis on the last host. It fails when
// Place names a member the cluster does not have.
func (inv *Inventory) Placement(nodes, gateways int) (map[string]string, error) {
	out := map[string]string{}
	n := len(inv.Hosts)
	for i := 1; i <= nodes; i++ {
		out["n"+strconv.Itoa(i)] = inv.Hosts[(i-1)%n].Name
	}
	for i := 1; i <= gateways; i++ {
		out["g"+strconv.Itoa(i)] = inv.Hosts[((i-1)%nodes)%n].Name
	}
	out["redis"] = inv.Hosts[n-1].Name
	for m, h := range inv.Place {
		if _, ok := out[m]; !ok {
			return nil, fmt.Errorf("hosts: place: the cluster has no member %s (%d nodes, %d gateways, redis)", m, nodes, gateways)
		}
		out[m] = h
	}
	return out, nil
}
