package lab

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// PrometheusConfig is a Prometheus configuration that scrapes every node
// and gateway of the lab (their /metrics, every 5 s), each target labelled
// with its member name and kind — what deploy/grafana's dashboard reads.
func (l *Lab) PrometheusConfig() string {
	var b strings.Builder
	b.WriteString("# Prometheus scrape configuration for this mpim lab (GET /api/prometheus; mpim lab prometheus).\n")
	b.WriteString("# Run: prometheus --config.file=THIS_FILE, then import deploy/grafana/mpim.json into Grafana.\n")
	b.WriteString("global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\nscrape_configs:\n")
	for _, kind := range []Kind{KindNode, KindGateway} {
		fmt.Fprintf(&b, "  - job_name: mpim-%s\n    static_configs:\n", kind)
		for _, m := range l.Members() {
			if m.Kind != kind || m.HTTP == "" {
				continue
			}
			u, err := url.Parse(m.HTTP)
			if err != nil {
				continue
			}
			fmt.Fprintf(&b, "      - targets: [%q]\n        labels: {member: %q, kind: %q}\n", u.Host, m.Name, string(kind))
		}
	}
	return b.String()
}

func (l *Lab) servePrometheus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/yaml; charset=utf-8")
	fmt.Fprint(w, l.PrometheusConfig())
}
