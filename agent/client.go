package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mpim/chaos/hostnet"
	"mpim/internal/clustertls"
)

// Client calls one agent.
type Client struct {
	// Host is the host's name in the inventory; Addr the agent's
	// HOST:PORT.
	Host, Addr string
	http       *http.Client
}

// NewClient returns a client of the agent at addr, presenting creds.
func NewClient(host, addr string, creds *clustertls.Credentials) *Client {
	tr := &http.Transport{TLSClientConfig: creds.Client(), MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second, ResponseHeaderTimeout: 60 * time.Second}
	return &Client{Host: host, Addr: addr, http: &http.Client{Transport: tr}}
}

// do sends one request and decodes the answer into out (if not nil). An
// error reaching the agent wraps ErrUnreachable; an error it answered
// wraps the matching sentinel.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+c.Addr+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		if strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:") {
			return fmt.Errorf("%w: agent %s (%s): the TLS handshake failed, so the agent and this machine do not hold one cluster's credentials: %v", ErrUnreachable, c.Host, c.Addr, err)
		}
		return fmt.Errorf("%w: agent %s (%s): %v", ErrUnreachable, c.Host, c.Addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%w: agent %s (%s): %v", ErrUnreachable, c.Host, c.Addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorReply
		_ = json.Unmarshal(b, &e)
		sentinel := map[int]error{http.StatusNotFound: ErrUnknownMember, http.StatusConflict: ErrNotRunning,
			http.StatusBadRequest: ErrRefused, http.StatusServiceUnavailable: ErrNotReady, http.StatusGone: ErrExitedEarly}[resp.StatusCode]
		if sentinel == nil {
			return fmt.Errorf("agent %s: %s: %s", c.Host, resp.Status, e.Error)
		}
		return fmt.Errorf("%w (agent %s: %s)", sentinel, c.Host, e.Error)
	}
	if out == nil {
		return nil
	}
	if s, ok := out.(*string); ok {
		*s = string(b)
		return nil
	}
	return json.Unmarshal(b, out)
}

// Info asks the agent what it is.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var i Info
	return i, c.do(ctx, http.MethodGet, "/v1/info", nil, &i)
}

// Members lists the agent's members.
func (c *Client) Members(ctx context.Context) ([]State, error) {
	var s []State
	return s, c.do(ctx, http.MethodGet, "/v1/members", nil, &s)
}

// Start starts member name and returns its pid once it is ready.
func (c *Client) Start(ctx context.Context, name string, req StartRequest) (int, error) {
	var r StartReply
	err := c.do(ctx, http.MethodPost, "/v1/members/"+url.PathEscape(name)+"/start", req, &r)
	return r.PID, err
}

// Act kills, stops, pauses or resumes member name.
func (c *Client) Act(ctx context.Context, name, action string) error {
	return c.do(ctx, http.MethodPost, "/v1/members/"+url.PathEscape(name)+"/"+action, struct{}{}, nil)
}

// Wait returns when process pid of member name has ended (with how), or
// after about ten seconds with Exited false.
func (c *Client) Wait(ctx context.Context, name string, pid int) (WaitReply, error) {
	var r WaitReply
	err := c.do(ctx, http.MethodGet, "/v1/members/"+url.PathEscape(name)+"/wait?pid="+strconv.Itoa(pid), nil, &r)
	return r, err
}

// Log is the tail of member name's log.
func (c *Client) Log(ctx context.Context, name string, lines int) (string, error) {
	var s string
	err := c.do(ctx, http.MethodGet, "/v1/members/"+url.PathEscape(name)+"/log?lines="+strconv.Itoa(lines), nil, &s)
	return s, err
}

// SetRules replaces the host's fault rules.
func (c *Client) SetRules(ctx context.Context, rules []hostnet.Rule) error {
	if rules == nil {
		rules = []hostnet.Rule{}
	}
	return c.do(ctx, http.MethodPut, "/v1/rules", RulesRequest{Rules: rules}, nil)
}

// IsUnreachable reports whether err means the agent could not be reached.
func IsUnreachable(err error) bool { return errors.Is(err, ErrUnreachable) }
