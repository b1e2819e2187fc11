package node

import (
	"path"
	"strconv"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gmprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"

	"mpim/internal/rpcerr"
	"mpim/node/ap"
	"mpim/node/cp"
)

// latencyBuckets span 0.1 ms to 10 s, about three per decade: a local
// fsync, a commit across three nodes, a stall behind a cut.
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0001, 10, 16)

// observations are the node's latency histograms and event counters
// (docs/observability.md lists every series).
type observations struct {
	ops       *prometheus.HistogramVec // op, outcome
	forward   *prometheus.HistogramVec // outcome
	cpQueue   *prometheus.HistogramVec // shard
	cpCommit  *prometheus.HistogramVec // shard
	cpEntries *prometheus.HistogramVec // shard: proposals per entry
	cpRefused *prometheus.CounterVec   // shard, outcome
	cpLeader  *prometheus.CounterVec   // shard, change (gained, lost)
	apRound   *prometheus.HistogramVec // kind (local: with a fsync; received)
	apPublish *prometheus.HistogramVec // outcome
	apSync    *prometheus.HistogramVec // peer, outcome
	apPulled  *prometheus.CounterVec   // peer
	resyncs   prometheus.Counter
}

func newObservations(reg prometheus.Registerer, node string) *observations {
	l := prometheus.Labels{"node": node}
	h := func(name, help string, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: l, Buckets: latencyBuckets}, labels)
		reg.MustRegister(v)
		return v
	}
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: l}, labels)
		reg.MustRegister(v)
		return v
	}
	o := &observations{
		ops:       h("mpim_node_op_duration_seconds", "Requests served, received to answered, by op and outcome: ok, not_applied (definitely not: unavailable), unknown (timeout), refused (any other error).", "op", "outcome"),
		forward:   h("mpim_node_forward_duration_seconds", "Writes forwarded to a shard's leader, by outcome.", "outcome"),
		cpQueue:   h("mpim_cp_queue_duration_seconds", "A proposal's wait for the batcher (behind the entry in flight), by shard.", "shard"),
		cpCommit:  h("mpim_cp_commit_duration_seconds", "One log entry from the batcher's Apply to its commit and apply on this leader (propose to commit), by shard.", "shard"),
		cpRefused: c("mpim_cp_refused_total", "Proposals this replica answered not_applied (no leader, no quorum) or unknown, by shard.", "shard", "outcome"),
		cpLeader:  c("mpim_cp_leadership_changes_total", "Times this replica gained or lost a shard's lead.", "shard", "change"),
		apRound:   h("mpim_ap_log_write_duration_seconds", "One AP engine round's log write: with its fsync when it held a local write (kind local), without when it held received entries only (kind received).", "kind"),
		apPublish: h("mpim_ap_publish_duration_seconds", "One pipelined publish of this node's entries on Redis, by outcome.", "outcome"),
		apSync:    h("mpim_ap_antientropy_duration_seconds", "One anti-entropy exchange with a peer (vectors, then any pulls), by peer and outcome.", "peer", "outcome"),
		apPulled:  c("mpim_ap_pulled_entries_total", "Entries anti-entropy pulled from each peer (what Redis did not bring).", "peer"),
	}
	entries := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mpim_cp_entry_proposals", ConstLabels: l,
		Help: "Proposals per log entry (group commit), by shard.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}, []string{"shard"})
	reg.MustRegister(entries)
	o.cpEntries = entries
	o.resyncs = prometheus.NewCounter(prometheus.CounterOpts{Name: "mpim_ap_resyncs_total", ConstLabels: l,
		Help: "Messages that sorted in before ones already placed on this replica (each sends a resync to the attached gateways)."})
	reg.MustRegister(o.resyncs)
	return o
}

// outcomeOf names an error the way the histograms do.
func outcomeOf(err error) string {
	if err == nil {
		return "ok"
	}
	code, _, terr := rpcerr.Decode(err)
	switch {
	case terr != nil || code == rpcerr.Timeout:
		return "unknown"
	case code == rpcerr.Unavailable:
		return "not_applied"
	}
	return "refused"
}

// observeOp records one served request.
func (o *observations) observeOp(method string, d time.Duration, err error) {
	o.ops.WithLabelValues(path.Base(method), outcomeOf(err)).Observe(d.Seconds())
}

// cpObserver turns a shard's measurements into series.
func (o *observations) cpObserver() *cp.Observer {
	shard := strconv.Itoa
	return &cp.Observer{
		Queued: func(s int, d time.Duration) { o.cpQueue.WithLabelValues(shard(s)).Observe(d.Seconds()) },
		Committed: func(s int, d time.Duration, n int) {
			o.cpCommit.WithLabelValues(shard(s)).Observe(d.Seconds())
			o.cpEntries.WithLabelValues(shard(s)).Observe(float64(n))
		},
		Refused: func(s, n int, unknown bool) {
			o.cpRefused.WithLabelValues(shard(s), map[bool]string{false: "not_applied", true: "unknown"}[unknown]).Add(float64(n))
		},
		Leadership: func(s int, leader bool) {
			o.cpLeader.WithLabelValues(shard(s), map[bool]string{true: "gained", false: "lost"}[leader]).Inc()
		},
	}
}

// apObserver turns the replicator's measurements into series.
func (o *observations) apObserver() *ap.Observer {
	ok := map[bool]string{false: "ok", true: "failed"}
	return &ap.Observer{
		Round: func(locals, _ int, d time.Duration) {
			kind := "received"
			if locals > 0 {
				kind = "local"
			}
			o.apRound.WithLabelValues(kind).Observe(d.Seconds())
		},
		Published: func(_ int, d time.Duration, failed bool) {
			o.apPublish.WithLabelValues(ok[failed]).Observe(d.Seconds())
		},
		Synced: func(peer string, d time.Duration, pulled int, failed bool) {
			o.apSync.WithLabelValues(peer, ok[failed]).Observe(d.Seconds())
			if pulled > 0 {
				o.apPulled.WithLabelValues(peer).Add(float64(pulled))
			}
		},
	}
}

// watchAP exports the replicator's state as gauges read at each scrape:
// replication lag per peer, outbox, entries waiting for dependencies,
// tentative messages, forged messages dropped.
func (m *metrics) watchAP(r *ap.Replicator, node string) {
	l := prometheus.Labels{"node": node}
	status := r.Status
	gauge := func(name, help string, v func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: l}, v))
	}
	gauge("mpim_ap_outbox_entries", "This node's entries not yet published (the outbox is the log after the last published one).",
		func() float64 { return float64(r.Stats().Outbox) })
	gauge("mpim_ap_pending_entries", "Received entries waiting for what they depend on.", func() float64 { return float64(r.Stats().Pending) })
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mpim_ap_forged_total", ConstLabels: l,
		Help: "Messages on the replication channels not signed by a member (dropped)."}, func() float64 { return float64(r.Stats().Forged) }))
	m.reg.MustRegister(&lagCollector{status: status, desc: prometheus.NewDesc("mpim_ap_replication_lag_seconds",
		"How far the last clock heard from each peer (with everything before it) trails this node's: it grows while a peer is cut off and falls after heal.",
		[]string{"peer"}, l)})
}

// lagCollector reads the replication lag per peer at each scrape.
type lagCollector struct {
	status func() ap.Status
	desc   *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	for peer, ms := range c.status().LagMS {
		// A peer this node holds nothing of yet has no clock to trail
		// (the status then reports the whole clock): no sample.
		if ms > time.Now().UnixMilli()/2 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(ms)/1000, peer)
	}
}

// exportRaftMetrics sends what hashicorp/raft measures itself (commit
// time, fsm apply, leader contact, elections, log and snapshot timings)
// through go-metrics' Prometheus sink into reg, rather than measuring it
// again. go-metrics is process-wide: only a process that runs one node
// (mpim node) turns this on.
func exportRaftMetrics(reg prometheus.Registerer) error {
	sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: reg, Expiration: time.Minute})
	if err != nil {
		return err
	}
	conf := gometrics.DefaultConfig("mpim")
	conf.EnableHostname, conf.EnableRuntimeMetrics, conf.EnableServiceLabel = false, false, false
	_, err = gometrics.NewGlobal(conf, sink)
	return err
}
