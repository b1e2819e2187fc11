package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"mpim/chaos/fault"
)

// faultRequest is the body of POST /api/faults.
type faultRequest struct {
	// Fault is one fault in the vocabulary's spelling, e.g.
	// "partition n1 g1 / n2 n3 g2 g3 redis".
	Fault string `json:"fault"`
}

// faultReply answers POST /api/faults.
type faultReply struct {
	Applied string      `json:"applied"`
	Fault   fault.Fault `json:"parsed"`
	Faults  []string    `json:"faults"`
}

func (l *Lab) routeFaults(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]string{"faults": l.Faults()})
	})
	mux.HandleFunc("POST /api/faults", l.handleFault)
	mux.HandleFunc("DELETE /api/faults", func(w http.ResponseWriter, r *http.Request) {
		l.applyHTTP(w, r, "heal")
	})
	mux.HandleFunc("GET /api/links", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, l.Links())
	})
	mux.HandleFunc("GET /api/shards", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, l.Shards(r.Context()))
	})
	mux.HandleFunc("GET /api/replicas", l.handleReplicas)
	mux.HandleFunc("GET /api/panels", l.panelCredentials)
	mux.HandleFunc("GET /api/prometheus", l.servePrometheus)
}

func (l *Lab) handleFault(w http.ResponseWriter, r *http.Request) {
	var req faultRequest
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err := json.Unmarshal(body, &req); err != nil || req.Fault == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `send {"fault": "<verb> <args>"}, e.g. {"fault": "partition n1 / n2"}`})
		return
	}
	l.applyHTTP(w, r, req.Fault)
}

func (l *Lab) applyHTTP(w http.ResponseWriter, r *http.Request, spelled string) {
	// A client hanging up must not abort a restart half-way.
	f, err := l.ApplyString(context.WithoutCancel(r.Context()), spelled)
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, fault.ErrSyntax):
			code = http.StatusBadRequest
		case errors.Is(err, ErrUnsupported):
			code = http.StatusNotImplemented
		default:
			writeError(w, err)
			return
		}
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, faultReply{Applied: f.String(), Fault: f, Faults: l.Faults()})
}

// ConvReplica is one conversation on one node's replica.
type ConvReplica struct {
	Count  uint64 `json:"count"`
	Digest string `json:"digest"`
}

// Replica is one node's view of every conversation, or why it could not
// be read.
type Replica struct {
	Convs map[string]ConvReplica `json:"convs,omitempty"`
	Error string                 `json:"error,omitempty"`
}

// Replicas reads every node's per-conversation digests (message count and
// a hash of the ids in order) directly from the node, not through the
// fault layer: the lab's own view, which consistency tests and checkers
// compare across replicas.
func (l *Lab) Replicas(ctx context.Context) map[string]Replica {
	return l.ReplicasBefore(ctx, time.Time{})
}

// ReplicasBefore is Replicas over the messages stamped before t only (all
// of them when t is zero): replicas that hold the same messages written
// before a heal agree on it while the workload goes on.
func (l *Lab) ReplicasBefore(ctx context.Context, t time.Time) map[string]Replica {
	return eachNode(l, func(m MemberState) Replica { return ReadReplicaBefore(ctx, m.HTTP, t) })
}

// eachNode runs read for every node member concurrently.
func eachNode[T any](l *Lab, read func(MemberState) T) map[string]T {
	out := map[string]T{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range l.Members() {
		if m.Kind != KindNode {
			continue
		}
		wg.Go(func() {
			v := read(m)
			mu.Lock()
			out[m.Name] = v
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// getNodeJSON GETs a node's admin URL and decodes its JSON answer; the
// error says "unreachable" or "bad answer".
func getNodeJSON(ctx context.Context, url string, timeout time.Duration, v any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unreachable: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("bad answer: %v", err)
	}
	return nil
}

// ReadReplica reads the per-conversation digests of the node whose admin
// HTTP base URL (http://HOST:PORT/) is base.
func ReadReplica(ctx context.Context, base string) Replica {
	return ReadReplicaBefore(ctx, base, time.Time{})
}

// ReadReplicaBefore is ReadReplica over the messages stamped before t
// (all when t is zero).
func ReadReplicaBefore(ctx context.Context, base string, t time.Time) Replica {
	var body struct {
		Convs []struct {
			Conv   string `json:"conv"`
			Count  uint64 `json:"count"`
			Digest string `json:"digest"`
		} `json:"convs"`
	}
	url := base + "admin/digests"
	if !t.IsZero() {
		url += "?before=" + strconv.FormatInt(t.UnixMilli(), 10)
	}
	if err := getNodeJSON(ctx, url, 2*time.Second, &body); err != nil {
		return Replica{Error: err.Error()}
	}
	r := Replica{Convs: map[string]ConvReplica{}}
	for _, c := range body.Convs {
		r.Convs[c.Conv] = ConvReplica{Count: c.Count, Digest: c.Digest}
	}
	return r
}
