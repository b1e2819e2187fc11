package node

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	pb "mpim/proto/mpimpb"
)

// metrics are the node's Prometheus series, on a registry of its own.
type metrics struct {
	reg         *prometheus.Registry
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	degraded    prometheus.Gauge
	pushes      *prometheus.CounterVec
	ops         *prometheus.CounterVec
	obs         *observations
}

func newMetrics(id string) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) prometheus.Collector { reg.MustRegister(c); return c }
	labels := prometheus.Labels{"node": id}
	return &metrics{
		obs: newObservations(reg, id),
		reg: reg,
		cacheHits: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_cache_hits_total",
			Help: "User-info lookups served from the Redis cache.", ConstLabels: labels})).(prometheus.Counter),
		cacheMisses: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_cache_misses_total",
			Help: "User-info lookups that missed the cache and read the store.", ConstLabels: labels})).(prometheus.Counter),
		degraded: f(prometheus.NewGauge(prometheus.GaugeOpts{Name: "mpim_redis_degraded",
			Help: "1 while this node cannot use Redis (cache bypassed, pushes on the fallback path).", ConstLabels: labels})).(prometheus.Gauge),
		pushes: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpim_pushes_total",
			Help: "Pushes handed to gateways, by path: redis, stream, retried (routed again: after Redis recovered, or while a recipient had no route yet), retry_dropped (dropped from a full retry queue).", ConstLabels: labels}, []string{"path"})).(*prometheus.CounterVec),
		ops: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpim_node_ops_total",
			Help: "Requests served, by op and result code.", ConstLabels: labels}, []string{"op", "code"})).(*prometheus.CounterVec),
	}
}

// watchShards exports each shard's applied index.
// watchShards exports each replica's Raft view: applied and commit index,
// term, and whether this replica leads.
func (m *metrics) watchShards(shards []replica) {
	for i, s := range shards {
		labels := prometheus.Labels{"shard": strconv.Itoa(i)}
		gauge := func(name, help string, v func(*pb.ShardStatus) float64) {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels},
				func() float64 { return v(s.status()) }))
		}
		gauge("mpim_shard_applied_index", "Last log index applied by this replica's state machine.",
			func(st *pb.ShardStatus) float64 { return float64(st.AppliedIndex) })
		gauge("mpim_shard_commit_index", "Commit index this replica knows.",
			func(st *pb.ShardStatus) float64 { return float64(st.CommitIndex) })
		gauge("mpim_shard_term", "Raft term of this replica.",
			func(st *pb.ShardStatus) float64 { return float64(st.Term) })
		gauge("mpim_shard_is_leader", "1 while this replica leads the shard.",
			func(st *pb.ShardStatus) float64 {
				if st.State == "Leader" {
					return 1
				}
				return 0
			})
	}
}
