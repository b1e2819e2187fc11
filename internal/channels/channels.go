// Package channels names the Redis pub/sub channels that nodes and
// gateways share, so that neither links the other's code for a string.
package channels

const (
	// Presence carries presence changes to every gateway.
	Presence = "mpim:presence"
	// APLog carries AP mode's replicated log entries between nodes.
	APLog = "mpim:ap:log"
	// APHeartbeat carries AP mode's heartbeats (each node's clock and
	// log position) between nodes.
	APHeartbeat = "mpim:ap:hb"
)

// Gateway is the channel gateway id listens on for pushes routed to it.
func Gateway(id string) string { return gatewayPrefix + id }

const gatewayPrefix = "mpim:gw:"
