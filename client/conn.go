// Package client speaks the MPIM client wire protocol (version 1, the
// protocol spec) over a WebSocket. Conn is one connection: it matches replies to
// calls by id and hands pushes and unmatched frames to channels. Session
// sits on top of Conn and survives broken connections: it reconnects,
// resumes with its token and catches up with sync, delivering every message
// exactly once. Term is the line-oriented chat client behind `mpim client`.
//
// The end-to-end tests, the chaos workload and the benchmarks use this
// package too, so it reports outcomes the way a history checker needs them:
// a reply with ok:false is an *Error (the write did not happen, except for
// code "timeout", whose outcome is unknown), and every other failure of a
// call (lost connection, expired context) means the outcome is unknown.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Errors returned by Conn and Session. Calls that fail on the transport wrap
// ErrConnectionLost or ErrClosed; errors.As with *websocket.CloseError finds
// the close frame when the gateway sent one.
var (
	// ErrClosed reports use of a connection or session after Close.
	ErrClosed = errors.New("client: closed")
	// ErrConnectionLost reports that the connection ended without Close being
	// called: the gateway closed it, died, or the network broke. The outcome of
	// calls still waiting for a reply is unknown.
	ErrConnectionLost = errors.New("client: connection lost")
	// ErrKicked reports that the gateway sent a `kicked` push; the session
	// stops instead of reconnecting, or the two devices would evict each other
	// forever. The wrapped text names the reason.
	ErrKicked = errors.New("client: kicked by the gateway")
)

// Default values for the zero fields of Options.
const (
	DefaultPushBuffer   = 4096
	DefaultWriteTimeout = 10 * time.Second
	unmatchedBuffer     = 256
)

// Options configures Dial. The zero value is usable.
type Options struct {
	// Origin, when set, is sent as the Origin header, as a browser would.
	Origin string
	// Header holds extra handshake headers.
	Header http.Header
	// PushBuffer is the capacity of the Pushes channel (default 4096). The
	// reader never blocks on a full channel: it drops the push and counts it in
	// Overflows, so a slow consumer costs pushes, never the connection.
	PushBuffer int
	// Dialer dials the WebSocket; nil means websocket.DefaultDialer.
	Dialer *websocket.Dialer
	// WriteTimeout bounds each frame write (default 10s); a write that takes
	// longer ends the connection.
	WriteTimeout time.Duration
}

// Conn is one WebSocket connection to a gateway. Its methods are safe for
// concurrent use. A single reader goroutine, stopped by Close, routes every
// incoming frame: replies to their waiting Call, pushes to Pushes, the rest
// to Unmatched.
type Conn struct {
	ws           *websocket.Conn
	writeTimeout time.Duration

	writeMu sync.Mutex // serialises frame writes (gorilla allows one writer)

	mu        sync.Mutex
	pending   map[string]chan frame
	err       error
	closeCode int

	nextID    atomic.Uint64
	overflows atomic.Uint64

	pushes    chan Push
	unmatched chan []byte
	done      chan struct{} // closed once err is set and pending calls are failed
	readDone  chan struct{} // closed when the reader goroutine has returned
	closeOnce sync.Once
}

// frame is an incoming reply as the reader saw it.
type frame struct {
	raw []byte
	ok  bool
	err *Error
}

// envelope holds the fields the reader needs to route a frame.
type envelope struct {
	ID    json.RawMessage `json:"id"`
	Push  *string         `json:"push"`
	OK    *bool           `json:"ok"`
	Error *Error          `json:"error"`
}

// Dial opens a WebSocket to url (ws://HOST:PORT/ws) and starts its reader.
// The context bounds the handshake only.
func Dial(ctx context.Context, url string, opt Options) (*Conn, error) {
	dialer := opt.Dialer
	if dialer == nil {
		dialer = websocket.DefaultDialer
	}
	header := http.Header{}
	for k, v := range opt.Header {
		header[k] = append([]string(nil), v...)
	}
	if opt.Origin != "" {
		header.Set("Origin", opt.Origin)
	}
	ws, resp, err := dialer.DialContext(ctx, url, header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("client: dial %s: %w (HTTP %s)", url, err, resp.Status)
		}
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	if opt.PushBuffer <= 0 {
		opt.PushBuffer = DefaultPushBuffer
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = DefaultWriteTimeout
	}
	c := &Conn{
		ws:           ws,
		writeTimeout: opt.WriteTimeout,
		pending:      make(map[string]chan frame),
		pushes:       make(chan Push, opt.PushBuffer),
		unmatched:    make(chan []byte, unmatchedBuffer),
		done:         make(chan struct{}),
		readDone:     make(chan struct{}),
	}
	go c.read()
	return c, nil
}

// Call sends {"id": <unique>, "op": op, ...fields} and waits for the reply
// with that id; ctx bounds the wait (Options.WriteTimeout bounds the write). A reply with ok:false is
// returned as an *Error. Any other error (lost connection, expired context)
// leaves the outcome unknown: the gateway may or may not have applied it.
// A reply that arrives after ctx ended is discarded.
func (c *Conn) Call(ctx context.Context, op string, fields map[string]any) (Reply, error) {
	f, err := c.call(ctx, op, fields)
	if err != nil {
		return nil, err
	}
	var r Reply
	if err := json.Unmarshal(f.raw, &r); err != nil {
		return nil, fmt.Errorf("client: %s: decode reply: %w", op, err)
	}
	return r, nil
}

// do is Call decoding a success reply straight into out (which may be nil).
func (c *Conn) do(ctx context.Context, op string, fields map[string]any, out any) error {
	f, err := c.call(ctx, op, fields)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(f.raw, out); err != nil {
		return fmt.Errorf("client: %s: decode reply: %w", op, err)
	}
	return nil
}

func (c *Conn) call(ctx context.Context, op string, fields map[string]any) (frame, error) {
	id := strconv.FormatUint(c.nextID.Add(1), 10)
	req := make(map[string]any, len(fields)+2)
	for k, v := range fields {
		req[k] = v
	}
	req["id"] = id
	req["op"] = op
	data, err := json.Marshal(req)
	if err != nil {
		return frame{}, fmt.Errorf("client: %s: encode request: %w", op, err)
	}
	// The reply channel has room for one frame so the reader never blocks on
	// a caller that gave up; such an entry is removed when its reply arrives.
	ch := make(chan frame, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return frame{}, fmt.Errorf("client: %s: %w", op, err)
	}
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.write(ctx, data); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return frame{}, fmt.Errorf("client: %s: %w", op, err)
	}
	select {
	case f := <-ch:
		if f.ok {
			return f, nil
		}
		if f.err == nil {
			return frame{}, fmt.Errorf("client: %s: reply has neither \"ok\": true nor an error: %.200s", op, f.raw)
		}
		return frame{}, f.err
	case <-ctx.Done():
		return frame{}, fmt.Errorf("client: %s: no reply: %w", op, ctx.Err())
	case <-c.done:
		return frame{}, fmt.Errorf("client: %s: no reply: %w", op, c.Err())
	}
}

// SendRaw writes data as one text frame, as is. Tests use it to send
// malformed input; replies to it arrive on Unmatched.
func (c *Conn) SendRaw(ctx context.Context, data []byte) error {
	if err := c.write(ctx, data); err != nil {
		return fmt.Errorf("client: send raw frame: %w", err)
	}
	return nil
}

// write sends one text frame. The deadline is WriteTimeout, not ctx's: a
// write that times out leaves a gorilla connection unusable, so a short
// context must never cut one off. A failed write ends the connection, which
// makes a Session reconnect instead of writing into a dead socket.
func (c *Conn) write(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	err := c.ws.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	if err == nil {
		err = c.ws.WriteMessage(websocket.TextMessage, data)
	}
	if err == nil {
		return nil
	}
	select {
	case <-c.done:
		// The connection ended while this frame was being written (Close
		// sent its close frame first): why it ended is the answer.
		return c.Err()
	default:
	}
	err = fmt.Errorf("%w: write: %w", ErrConnectionLost, err)
	// ErrCloseSent means the reader is handling the gateway's close frame
	// and will record its code; any other failure is the cause.
	if !errors.Is(err, websocket.ErrCloseSent) {
		c.fail(err, 0)
		_ = c.ws.Close()
	}
	return err
}

// Pushes returns the channel of pushes. It is closed after the connection
// ends, once the pushes received before are read.
func (c *Conn) Pushes() <-chan Push { return c.pushes }

// Unmatched returns the channel of incoming frames that are neither a push
// nor the reply to a waiting Call, such as the error reply (with "id": null)
// to a malformed frame. It holds 256 frames; more are dropped. It is closed
// after the connection ends.
func (c *Conn) Unmatched() <-chan []byte { return c.unmatched }

// Overflows returns how many pushes were dropped because Pushes was full.
// A Session answers a growing count with a catch-up sync.
func (c *Conn) Overflows() uint64 { return c.overflows.Load() }

// Done returns a channel closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is open, ErrClosed after Close, and
// otherwise an error wrapping ErrConnectionLost and the read error (a
// *websocket.CloseError when the gateway sent a close frame).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// CloseCode returns the WebSocket close code the connection ended with: the
// gateway's code (e.g. 1009 for a frame over 64 KiB), 1006 when the
// connection dropped without a close frame, 1000 after Close, and 0 while it
// is open or when it ended on another error.
func (c *Conn) CloseCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

// Close sends a normal close frame, closes the socket and waits for the
// reader goroutine to stop. Calls still waiting fail with ErrClosed.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.fail(ErrClosed, websocket.CloseNormalClosure)
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = c.ws.Close()
	})
	<-c.readDone
	return nil
}

// fail records why the connection ended, once, and wakes every waiting call.
func (c *Conn) fail(err error, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err, c.closeCode = err, code
	close(c.done)
}

// read is the reader goroutine: it routes frames until the socket fails,
// then closes Pushes and Unmatched.
func (c *Conn) read() {
	defer close(c.readDone)
	defer close(c.unmatched)
	defer close(c.pushes)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			code := 0
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = ce.Code
			}
			c.fail(fmt.Errorf("%w: %w", ErrConnectionLost, err), code)
			_ = c.ws.Close()
			return
		}
		c.route(data)
	}
}

func (c *Conn) route(data []byte) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		c.unmatch(data)
		return
	}
	if env.Push != nil {
		select {
		case c.pushes <- Push{Kind: *env.Push, Raw: data}:
		default:
			c.overflows.Add(1)
		}
		return
	}
	var id string
	if json.Unmarshal(env.ID, &id) != nil {
		c.unmatch(data)
		return
	}
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if !ok {
		c.unmatch(data)
		return
	}
	ch <- frame{raw: data, ok: env.OK != nil && *env.OK, err: env.Error}
}

func (c *Conn) unmatch(data []byte) {
	select {
	case c.unmatched <- data:
	default:
	}
}
