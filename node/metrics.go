package node

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the node's Prometheus series, on a registry of its own.
type metrics struct {
	reg         *prometheus.Registry
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	degraded    prometheus.Gauge
	pushes      *prometheus.CounterVec
	ops         *prometheus.CounterVec
}

func newMetrics(id string) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) prometheus.Collector { reg.MustRegister(c); return c }
	labels := prometheus.Labels{"node": id}
	return &metrics{
		reg: reg,
		cacheHits: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_cache_hits_total",
			Help: "User-info lookups served from the Redis cache.", ConstLabels: labels})).(prometheus.Counter),
		cacheMisses: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_cache_misses_total",
			Help: "User-info lookups that missed the cache and read the store.", ConstLabels: labels})).(prometheus.Counter),
		degraded: f(prometheus.NewGauge(prometheus.GaugeOpts{Name: "mpim_redis_degraded",
			Help: "1 while this node cannot use Redis (cache bypassed, pushes on the fallback path).", ConstLabels: labels})).(prometheus.Gauge),
		pushes: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpim_pushes_total",
			Help: "Pushes handed to gateways, by path (redis or stream).", ConstLabels: labels}, []string{"path"})).(*prometheus.CounterVec),
		ops: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpim_node_ops_total",
			Help: "Requests served, by op and result code.", ConstLabels: labels}, []string{"op", "code"})).(*prometheus.CounterVec),
	}
}

// watchShards exports each shard's applied index.
func (m *metrics) watchShards(shards []*shard) {
	for _, s := range shards {
		s := s
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mpim_shard_applied_index", Help: "Last log index applied by the shard's state machine.",
			ConstLabels: prometheus.Labels{"shard": strconv.Itoa(s.id)},
		}, func() float64 { return float64(s.applied.Load()) }))
	}
}
