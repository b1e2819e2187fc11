package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	reg      *prometheus.Registry
	conns    prometheus.Gauge
	requests *prometheus.CounterVec
	pushes   *prometheus.CounterVec
	dropped  prometheus.Counter
	// ephemeralDropped counts typing, receipt and presence pushes not
	// queued for a client whose queue was half full.
	ephemeralDropped prometheus.Counter
	// refused counts connections and logins the guard refused, by reason.
	refused *prometheus.CounterVec
	// requestSeconds is each request from its frame read to its reply
	// queued (send→ack for sends), by op and outcome; pushAge a message
	// push's age when it reaches this gateway (from the node's stamp).
	requestSeconds *prometheus.HistogramVec
	pushAge        *prometheus.HistogramVec
	degraded       prometheus.Gauge
	gapFills       prometheus.Counter
	duplicates     prometheus.Counter
	nodeHealthy    *prometheus.GaugeVec
}

func newMetrics(id string) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l := prometheus.Labels{"gateway": id}
	m := &metrics{
		reg: reg,
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mpim_gateway_connections",
			Help: "Open client WebSocket connections.", ConstLabels: l}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpim_gateway_requests_total",
			Help: "Client requests by op and result code (ok or an error code).", ConstLabels: l}, []string{"op", "code"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpim_gateway_pushes_total",
			Help: "Pushes received from nodes, by path (redis or stream).", ConstLabels: l}, []string{"path"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_gateway_slow_clients_dropped_total",
			Help: "Clients dropped because their send queue was full.", ConstLabels: l}),
		ephemeralDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_gateway_ephemeral_pushes_dropped_total",
			Help: "Typing, receipt and presence pushes dropped for a client whose send queue was half full (the client stays).", ConstLabels: l}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpim_gateway_refused_total",
			Help: "Connections and logins refused by the gateway's limits, by reason (max_conns, max_conns_per_ip, login_throttled, login_timeout, typing).", ConstLabels: l}, []string{"reason"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mpim_gateway_request_duration_seconds",
			Help: "Client requests from the frame read to the reply queued (send: send→ack), by op and outcome: ok, not_applied, unknown, refused.", ConstLabels: l,
			Buckets: latencyBuckets}, []string{"op", "outcome"}),
		pushAge: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mpim_gateway_push_age_seconds",
			Help: "A message push's age when it reaches this gateway, from the node's timestamp (in AP it includes the push hold-back), by path (redis or stream).", ConstLabels: l,
			Buckets: latencyBuckets}, []string{"path"}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mpim_redis_degraded",
			Help: "1 while this gateway's Redis subscription is broken (pushes come on the node stream).", ConstLabels: l}),
		gapFills: prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_gateway_gap_fills_total",
			Help: "Times a gap in a conversation's pushed seqs was pulled from a node.", ConstLabels: l}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_gateway_duplicate_pushes_total",
			Help: "Message pushes dropped because the device already had them.", ConstLabels: l}),
		nodeHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mpim_gateway_node_healthy",
			Help: "1 while the node at addr passes health checks (failover skips it otherwise).", ConstLabels: l}, []string{"addr"}),
	}
	reg.MustRegister(m.nodeHealthy, m.conns, m.requests, m.pushes, m.dropped, m.degraded, m.gapFills, m.duplicates, m.ephemeralDropped, m.refused, m.requestSeconds, m.pushAge)
	return m
}

// latencyBuckets span 0.1 ms to 10 s, about three per decade.
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0001, 10, 16)
