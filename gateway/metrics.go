package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	reg         *prometheus.Registry
	conns       prometheus.Gauge
	requests    *prometheus.CounterVec
	pushes      *prometheus.CounterVec
	dropped     prometheus.Counter
	degraded    prometheus.Gauge
	gapFills    prometheus.Counter
	duplicates  prometheus.Counter
	nodeHealthy *prometheus.GaugeVec
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
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mpim_redis_degraded",
			Help: "1 while this gateway's Redis subscription is broken (pushes come on the node stream).", ConstLabels: l}),
		gapFills: prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_gateway_gap_fills_total",
			Help: "Times a gap in a conversation's pushed seqs was pulled from a node.", ConstLabels: l}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_gateway_duplicate_pushes_total",
			Help: "Message pushes dropped because the device already had them.", ConstLabels: l}),
		nodeHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mpim_gateway_node_healthy",
			Help: "1 while the node at addr passes health checks (failover skips it otherwise).", ConstLabels: l}, []string{"addr"}),
	}
	reg.MustRegister(m.nodeHealthy, m.conns, m.requests, m.pushes, m.dropped, m.degraded, m.gapFills, m.duplicates)
	return m
}
