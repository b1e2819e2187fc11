package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// cfConn is one client of Centrifugo's bidirectional JSON protocol over a
// raw WebSocket, as light as the bench's own clients (conn.go): on two
// cores the load generator competes with the server for CPU, and
// Centrifugo's Go SDK alone burns a core at this load. It connects
// anonymously (the server runs with client.insecure), subscribes to its own
// channel and publishes into another client's.
//
// The protocol, as centrifugal/protocol v0.19 and centrifuge's WebSocket
// transport implement it: every command is a JSON object with a numeric id
// ({"id":1,"connect":{}}); the server answers with {"id":1,...} or
// {"id":1,"error":{"code":…,"message":…}}, sends publications as
// {"push":{"channel":…,"pub":{"data":…}}} and pings as an empty object {},
// which the client must answer with {} (a client that does not is
// disconnected after the pong timeout). The server joins several replies
// into one frame, one per line.
type cfConn struct {
	ws      *websocket.Conn
	channel string // the channel this client subscribes to

	wmu    sync.Mutex // gorilla allows one writer: publishes and ping answers
	nextID atomic.Uint32

	// replies carries the replies to this client's commands; a reply
	// nobody waits for any more is dropped.
	replies chan cfReply
	// delivered carries the sequence numbers of the publications that
	// reached this client's channel for the first time; its publisher
	// reads them.
	delivered chan uint64

	// seen is the set of sequence numbers delivered so far; only the
	// reader touches it.
	seen []uint64
	// dupes counts publications delivered a second time; stray counts
	// pushes on another channel or without a sequence number; pings
	// counts the server's pings answered.
	dupes, stray, pings atomic.Uint64

	done chan struct{} // closed when the reader has ended
	err  error         // why the reader ended; read after done
}

// cfReply is the server's answer to one command.
type cfReply struct {
	id  uint32
	err *cfError
}

// cfError is an error reply.
type cfError struct {
	Code    uint32 `json:"code"`
	Message string `json:"message"`
}

func (e *cfError) Error() string { return fmt.Sprintf("centrifugo error %d: %s", e.Code, e.Message) }

// errCFLost is a Centrifugo connection that ended while a client waited.
var errCFLost = errors.New("bench: centrifugo connection lost")

// cfPong is the answer to a server ping, and the ping itself.
var cfPong = []byte("{}")

// cfFrame is one server message, for encoding/json: the slow path.
type cfFrame struct {
	ID    uint32   `json:"id"`
	Error *cfError `json:"error"`
	Push  *struct {
		Channel string `json:"channel"`
		Pub     *struct {
			Data json.RawMessage `json:"data"`
		} `json:"pub"`
	} `json:"push"`
}

// cfLine is what the client reads from one line: a ping, a reply, or a
// push of a publication (its channel and the sequence number in its data).
type cfLine struct {
	ping    bool
	id      uint32
	err     *cfError
	push    bool
	channel string
	seq     uint64 // 0: the push carried no sequence number
}

// cfPayload is the size of one publication's data, as in the issue's
// measurement of Centrifugo (200 B).
const cfPayload = 200

// cfData appends a publication's data of exactly cfPayload bytes carrying
// seq: {"s":SEQ,"p":"xxx…"}.
func cfData(b []byte, seq uint64) []byte {
	b = append(b, `{"s":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"p":"`...)
	for n := cfPayload - len(b) - 2; n > 0; n-- {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// parseCFLine reads one line of a server frame. Pushes of the bench's own
// publications, in the field order Centrifugo writes them, are read by
// hand (about 15k a second arrive); anything else goes through
// encoding/json.
func parseCFLine(line []byte) (cfLine, error) {
	line = bytes.TrimSpace(line)
	if bytes.Equal(line, cfPong) {
		return cfLine{ping: true}, nil
	}
	if l, ok := scanCFPush(line); ok {
		return l, nil
	}
	var f cfFrame
	if err := json.Unmarshal(line, &f); err != nil {
		return cfLine{}, fmt.Errorf("bench: centrifugo sent %.80q: %w", line, err)
	}
	if f.Push == nil {
		return cfLine{id: f.ID, err: f.Error}, nil
	}
	l := cfLine{push: true, channel: f.Push.Channel}
	if f.Push.Pub != nil {
		var d struct {
			S uint64 `json:"s"`
		}
		if json.Unmarshal(f.Push.Pub.Data, &d) == nil {
			l.seq = d.S
		}
	}
	return l, nil
}

// scanCFPush reads {"push":{"channel":"C","pub":{"data":{"s":N,… and
// reports false for any other shape (channel names with escapes included).
func scanCFPush(line []byte) (cfLine, bool) {
	const head, mid = `{"push":{"channel":"`, `","pub":{"data":{"s":`
	rest, ok := bytes.CutPrefix(line, []byte(head))
	if !ok {
		return cfLine{}, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return cfLine{}, false
	}
	channel := string(rest[:end])
	rest, ok = bytes.CutPrefix(rest[end:], []byte(mid))
	if !ok {
		return cfLine{}, false
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n == len(rest) || rest[n] != ',' && rest[n] != '}' {
		return cfLine{}, false
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return cfLine{}, false
	}
	return cfLine{push: true, channel: channel, seq: seq}, true
}

// dialCF connects a client to url, sends connect and subscribes to
// channel, waiting for both replies.
func dialCF(ctx context.Context, url, channel string) (*cfConn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	ws, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: dial centrifugo %s: %w", url, err)
	}
	c := &cfConn{ws: ws, channel: channel, replies: make(chan cfReply, 8), delivered: make(chan uint64, 8), done: make(chan struct{})}
	go c.read()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, cmd := range []string{`"connect":{}`, `"subscribe":{"channel":` + strconv.Quote(channel) + `}`} {
		if err := c.call(ctx, cmd); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// call sends {"id":N,CMD} and waits for its reply.
func (c *cfConn) call(ctx context.Context, cmd string) error {
	id := c.nextID.Add(1)
	if err := c.write(fmt.Appendf(nil, `{"id":%d,%s}`, id, cmd)); err != nil {
		return err
	}
	for {
		select {
		case r := <-c.replies:
			if r.id != id {
				continue
			}
			if r.err != nil {
				return fmt.Errorf("bench: centrifugo {%s}: %w", cmd, r.err)
			}
			return nil
		case <-c.done:
			return fmt.Errorf("bench: centrifugo {%s}: %w: %v", cmd, errCFLost, c.err)
		case <-ctx.Done():
			return fmt.Errorf("bench: centrifugo {%s}: no reply: %w", cmd, ctx.Err())
		}
	}
}

func (c *cfConn) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		c.ws.Close() // the reader ends, and with it every wait
		return fmt.Errorf("bench: write to centrifugo: %w", err)
	}
	return nil
}

// read handles every server frame until the connection ends.
func (c *cfConn) read() {
	defer close(c.done)
	for {
		_, frame, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		for len(frame) > 0 {
			var line []byte
			line, frame, _ = bytes.Cut(frame, []byte{'\n'})
			if err := c.handle(line); err != nil {
				c.err = err
				c.ws.Close()
				return
			}
		}
	}
}

// handle acts on one line: answers a ping, hands a reply to the waiting
// command, checks a publication against the sequence numbers seen.
func (c *cfConn) handle(line []byte) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	l, err := parseCFLine(line)
	switch {
	case err != nil:
		return err
	case l.ping:
		c.pings.Add(1)
		return c.write(cfPong)
	case !l.push:
		select {
		case c.replies <- cfReply{id: l.id, err: l.err}:
		default: // nobody waits for it any more
		}
	case l.channel != c.channel || l.seq == 0:
		c.stray.Add(1)
	case c.markSeen(l.seq):
		c.dupes.Add(1)
	default:
		select {
		case c.delivered <- l.seq:
		default: // its publisher gave up on it
		}
	}
	return nil
}

// markSeen records seq and reports whether it had been seen before.
func (c *cfConn) markSeen(seq uint64) bool {
	w, bit := seq/64, uint64(1)<<(seq%64)
	for uint64(len(c.seen)) <= w {
		c.seen = append(c.seen, 0)
	}
	had := c.seen[w]&bit != 0
	c.seen[w] |= bit
	return had
}

// publish sends one publication carrying seq into to's channel and waits
// for both the reply and its delivery to to, at most timeout. It returns
// the time from the write to the delivery.
func (c *cfConn) publish(ctx context.Context, to *cfConn, seq uint64, buf []byte, timeout time.Duration) (time.Duration, error) {
	id := c.nextID.Add(1)
	buf = fmt.Appendf(buf[:0], `{"id":%d,"publish":{"channel":%q,"data":`, id, to.channel)
	buf = append(cfData(buf, seq), "}}"...)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	start := time.Now()
	if err := c.write(buf); err != nil {
		return 0, err
	}
	var latency time.Duration
	replied, delivered := false, false
	for !replied || !delivered {
		select {
		case r := <-c.replies:
			if r.id != id {
				continue // the reply to an earlier publish that timed out
			}
			if r.err != nil {
				return 0, fmt.Errorf("bench: publish %d into %s: %w", seq, to.channel, r.err)
			}
			replied = true
		case s := <-to.delivered:
			if s != seq {
				continue // a late delivery of an earlier publish that timed out
			}
			latency, delivered = time.Since(start), true
		case <-timer.C:
			return 0, fmt.Errorf("bench: publish %d into %s: replied %v, delivered %v after %v", seq, to.channel, replied, delivered, timeout)
		case <-c.done:
			return 0, fmt.Errorf("bench: publish %d: %w: %v", seq, errCFLost, c.err)
		case <-to.done:
			return 0, fmt.Errorf("bench: publish %d: subscriber of %s: %w: %v", seq, to.channel, errCFLost, to.err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return latency, nil
}

// close ends the connection and waits for its reader.
func (c *cfConn) close() {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.ws.Close()
	<-c.done
}
