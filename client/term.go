package client

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// commandTimeout bounds one terminal command, retries of a send included,
// and openTimeout the first login; later reconnections never give up.
// pendingSends bounds the messages typed and not yet sent.
const (
	commandTimeout = 30 * time.Second
	openTimeout    = 30 * time.Second
	pendingSends   = 64
)

// Term is the line-oriented chat client behind `mpim client`: it reads
// commands and messages from an io.Reader, runs them on a Session, and
// writes what happens to an io.Writer. Lines starting with "*" are events,
// lines starting with "!" are errors, and messages print as
// "[conv #seq] from: text".
type Term struct {
	opt SessionOptions
	// Color marks fates and events with ANSI colours (a terminal).
	Color bool

	mu  sync.Mutex // guards out and the fields after it: the session goroutine prints too
	out io.Writer
	// state is the session's last state change; resync the last resync
	// push, and when.
	state, resync string

	// The current conversation: a user (to) or a group. Only the command
	// loop touches them.
	to, group string
	// once is /retry off: the sender reads it after each failed attempt,
	// so it applies to a send already waiting to be retried too.
	once atomic.Bool
	// sends holds the messages typed, in order, for the sender goroutine:
	// while one is refused and retried, the command loop stays free for
	// /status, /history or /retry off.
	sends chan pendingSend
	// unsent counts the messages queued or being sent.
	unsent atomic.Int32
}

// pendingSend is a message typed, for the sender: its conversation as it
// was when typed.
type pendingSend struct{ to, group, text string }

// NewTerm returns a terminal client for the account in opt. Run replaces
// opt's callbacks with its own printers and turns on delivery receipts.
// opt.NoRetry sets /retry off from the start.
func NewTerm(opt SessionOptions, out io.Writer) *Term {
	t := &Term{opt: opt, out: out, sends: make(chan pendingSend, pendingSends)}
	t.once.Store(opt.NoRetry)
	return t
}

// Run opens the session and runs commands read from in until /quit, the end
// of in, or ctx ends (all three return nil), or the session stops (its
// error). A read of in that is blocked when Run returns ends when in
// delivers a line or is closed.
func (t *Term) Run(ctx context.Context, in io.Reader) error {
	opt := t.opt
	opt.OnMessage = t.showMessage
	opt.OnPush = t.showPush
	opt.OnState = func(st string) {
		t.mu.Lock()
		t.state = st
		t.mu.Unlock()
		t.printf("* %s", st)
	}
	opt.NoRetry = false // per send, from /retry
	opt.Ack = true
	t.printf("* connecting as %s to %s", opt.User, strings.Join(opt.Gateways, ", "))
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	s, err := OpenSession(octx, opt)
	cancel()
	if err != nil {
		return err
	}
	defer s.Close()
	a := s.Auth()
	t.printf("* logged in as %s (uid %d), mode %s, gateway %s, node %s; /help lists the commands",
		opt.User, a.UID, a.Mode, a.Gateway, a.Node)

	// The sender sends the messages typed one after another, in the order
	// typed; at the end it finishes what was typed (each within
	// commandTimeout) unless ctx ends first.
	senderDone := make(chan struct{})
	go func() { defer close(senderDone); t.sender(ctx, s) }()
	defer func() {
		if n := t.unsent.Load(); n > 0 && ctx.Err() == nil {
			t.printf("* waiting for %d message(s) still being sent (each gives up after %v; interrupt to abandon them)", n, commandTimeout)
		}
		close(t.sends)
		<-senderDone
	}()

	lines := make(chan string)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-stop:
				return
			}
		}
		readErr <- sc.Err()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.Done():
			return s.Err()
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					return fmt.Errorf("client: read input: %w", err)
				}
				return nil
			}
			if t.runLine(ctx, s, line) {
				return nil
			}
		}
	}
}

// runLine runs one line of input on s and reports whether it was /quit.
func (t *Term) runLine(ctx context.Context, s *Session, line string) (quit bool) {
	cmd, err := ParseCommand(line)
	if err != nil {
		t.printf("! %v", err)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	switch cmd.Name {
	case "":
		if cmd.Text != "" {
			t.queue(cmd.Text)
		}
		return false
	case "quit":
		return true
	case "help":
		t.printf("%s", HelpText())
		return false
	case "to":
		t.to, t.group = cmd.Args[0], ""
		t.printf("* talking to %s (%s)", t.to, DMConv(t.opt.User, t.to))
		return false
	case "retry":
		t.once.Store(!cmd.On)
		if !cmd.On {
			t.printf("* retry off: a refused or unknown send is shown as final (a send waiting to be retried too, at its next answer)")
		} else {
			t.printf("* retry on: refused and unknown sends are retried with the same cmid")
		}
		return false
	case "status":
		t.status(ctx, s)
		return false
	}
	c, err := s.Conn(ctx)
	if err != nil {
		t.printf("! %v", err)
		return false
	}
	if err := t.exec(ctx, c, cmd); err != nil {
		t.printf("! /%s: %v", cmd.Name, err)
	}
	return false
}

// exec runs the commands that are one or two calls on the connection.
func (t *Term) exec(ctx context.Context, c *Conn, cmd Command) error {
	switch cmd.Name {
	case "group":
		g := cmd.Args[0]
		_, err := c.GroupCreate(ctx, g, nil)
		if ErrorCode(err) == CodeConflict {
			err = c.GroupJoin(ctx, g)
			if ErrorCode(err) == CodeConflict { // already a member
				err = nil
			}
		}
		if err != nil {
			return err
		}
		t.to, t.group = "", g
		t.printf("* talking in group %s (%s)", g, GroupConv(g))
	case "join":
		if err := c.GroupJoin(ctx, cmd.Args[0]); err != nil {
			return err
		}
		t.printf("* joined %s; /group %s to talk there", cmd.Args[0], cmd.Args[0])
	case "leave":
		if err := c.GroupLeave(ctx, cmd.Args[0]); err != nil {
			return err
		}
		if t.group == cmd.Args[0] {
			t.group = ""
		}
		t.printf("* left %s", cmd.Args[0])
	case "members":
		g := t.group
		if len(cmd.Args) == 1 {
			g = cmd.Args[0]
		}
		if g == "" {
			return fmt.Errorf("not in a group; name one: /members NAME")
		}
		m, err := c.GroupMembers(ctx, g)
		if err != nil {
			return err
		}
		t.printf("* %s: %v", g, m)
	case "history":
		conv := t.conv()
		if conv == "" {
			return fmt.Errorf("no conversation yet; use /to USER or /group NAME first")
		}
		h, err := c.History(ctx, HistoryArgs{Conv: conv, Limit: cmd.N, Read: cmd.Read})
		if err != nil {
			return err
		}
		slices.SortFunc(h.Messages, func(a, b Message) int { return cmp.Compare(a.Seq, b.Seq) })
		for _, m := range h.Messages {
			t.showMessage(m)
		}
		t.printf("* %d messages of %s (%s read)", len(h.Messages), conv, h.Consistency)
	case "who":
		p, err := c.Presence(ctx, cmd.Args)
		if err != nil {
			return err
		}
		for _, u := range cmd.Args {
			t.showPresence(u, p[u])
		}
	case "info":
		u, err := c.UserInfo(ctx, cmd.Args[0])
		if err != nil {
			return err
		}
		created := "unknown"
		if u.Created > 0 {
			created = time.UnixMilli(u.Created).Format(time.DateTime)
		}
		t.printf("* %s: uid %d, nickname %q, since %s", u.User, u.UID, u.Nickname, created)
	case "nick":
		if err := c.UserUpdate(ctx, cmd.Text); err != nil {
			return err
		}
		t.printf("* nickname set to %q", cmd.Text)
	}
	return nil
}

// queue hands text, for the current conversation, to the sender.
func (t *Term) queue(text string) {
	if t.to == "" && t.group == "" {
		t.printf("! no conversation yet; use /to USER or /group NAME first")
		return
	}
	t.unsent.Add(1)
	select {
	case t.sends <- pendingSend{to: t.to, group: t.group, text: text}:
	default:
		t.unsent.Add(-1)
		t.printf("! %d messages are still waiting to be sent; this one was not queued: type it again later", pendingSends)
	}
}

// sender sends the queued messages in order until the queue is closed.
func (t *Term) sender(ctx context.Context, s *Session) {
	for p := range t.sends {
		if ctx.Err() == nil { // else stopping: drop what is left
			t.send(ctx, s, p)
		}
		t.unsent.Add(-1)
	}
}

// send sends one message and prints each change of its fate as it
// happens: Session.Send retries it with one cmid while it is refused for
// now or its outcome unknown (unless /retry off).
func (t *Term) send(ctx context.Context, s *Session, p pendingSend) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	mode := s.Auth().Mode
	r, err := s.Send(ctx, SendArgs{To: p.to, Group: p.group, Text: p.text, Cmid: NewCmid(), Once: t.once.Load(),
		Retry:   func() bool { return !t.once.Load() },
		OnEvent: func(e SendEvent) { t.showFate(e, mode, s.Auth().Node) }})
	if err != nil {
		if ctx.Err() != nil {
			t.printf("! gave up after %v: %s", commandTimeout, strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		return
	}
	t.showMessage(Message{Conv: r.Conv, Seq: r.Seq, ID: r.ID, From: t.opt.User, Text: p.text, Ts: r.Ts})
}

// ANSI colours of the fates.
const (
	colorReset  = "\x1b[0m"
	colorGreen  = "\x1b[32m"
	colorRed    = "\x1b[31m"
	colorYellow = "\x1b[33m"
	colorDim    = "\x1b[2m"
)

// paint wraps s in colour when the terminal has it.
func (t *Term) paint(color, s string) string {
	if !t.Color {
		return s
	}
	return color + s + colorReset
}

// why explains a refusal or an unknown outcome in a few words.
func why(code, mode string) string {
	switch code {
	case CodeUnavailable:
		if mode == "cp" {
			return "unavailable (no quorum on this side, or no leader yet)"
		}
		return "unavailable"
	case CodeTimeout:
		return "unknown (timeout)"
	case CodeRateLimited:
		return "rate_limited (too many requests)"
	case "":
		return "unknown (the connection broke before the reply)"
	}
	return code
}

// showFate prints one change of a send's fate.
func (t *Term) showFate(e SendEvent, mode, node string) {
	switch e.Kind {
	case SendAttempt:
		if e.Attempt == 1 {
			t.printf("%s", t.paint(colorDim, "… sending as cmid "+e.Cmid))
		}
	case SendRefused, SendUnknown:
		what := "refused: " + why(e.Code, mode)
		color := colorRed
		if e.Kind == SendUnknown {
			what, color = why(e.Code, mode), colorYellow
		}
		switch {
		case e.Retry > 0 && e.Kind == SendUnknown:
			what += fmt.Sprintf(" — retrying with the same cmid %s in %v, so it cannot be applied twice (attempt %d)", e.Cmid, e.Retry.Round(time.Millisecond), e.Attempt+1)
		case e.Retry > 0:
			what += fmt.Sprintf(" — not applied; retrying as cmid %s in %v, attempt %d", e.Cmid, e.Retry.Round(time.Millisecond), e.Attempt+1)
		case e.Kind == SendUnknown:
			what += " — final: it may or may not have been applied (a retry with cmid " + e.Cmid + " would be safe)"
		default:
			what += " — final: not applied"
		}
		t.printf("%s", t.paint(color, "✗ "+what))
	case SendAccepted:
		r := e.Result
		what := fmt.Sprintf("✓ accepted %s #%d", r.Conv, r.Seq)
		if r.Dup {
			what += " (a retry: the first attempt had been applied)"
		}
		if mode == "ap" {
			what += " locally on " + node + ": tentative until every node has been heard from"
		}
		t.printf("%s", t.paint(colorGreen, what))
	}
}

// status prints where this client's requests go and, for the current
// conversation, its shard and leader as the node sees it.
func (t *Term) status(ctx context.Context, s *Session) {
	t.mu.Lock()
	state, resync := t.state, t.resync
	t.mu.Unlock()
	if resync == "" {
		resync = "none"
	}
	c, err := s.Conn(ctx)
	if err != nil {
		t.printf("* connection: %s; no gateway reachable: %v", state, err)
		return
	}
	st, err := c.Status(ctx, t.conv())
	if err != nil {
		t.printf("! /status: %v", err)
		return
	}
	retry := "on"
	if t.once.Load() {
		retry = "off"
	}
	t.printf("* mode %s; gateway %s -> node %s (Redis %s); connection: %s; retry %s; last resync: %s",
		st.Mode, st.Gateway, st.Node, map[bool]string{true: "up", false: "unreachable"}[st.RedisOK], state, retry, resync)
	if st.Shard != nil {
		leader := st.Leader
		if leader == "" {
			leader = "none known"
		}
		if st.Mode == "ap" {
			t.printf("* %s is in shard %d of %d; AP has no leader: every node accepts writes", st.Conv, *st.Shard, st.Shards)
		} else {
			t.printf("* %s is in shard %d of %d; its leader as %s sees it: %s (%s here, term %d)", st.Conv, *st.Shard, st.Shards, st.Node, leader, st.State, st.Term)
		}
	}
}

// conv returns the id of the current conversation, "" when there is none.
func (t *Term) conv() string {
	switch {
	case t.to != "":
		return DMConv(t.opt.User, t.to)
	case t.group != "":
		return GroupConv(t.group)
	}
	return ""
}

func (t *Term) showMessage(m Message) {
	suffix := ""
	if m.Tentative != nil && *m.Tentative {
		suffix = " (tentative)"
	}
	t.printf("[%s #%d] %s: %s%s", Sanitize(m.Conv), m.Seq, Sanitize(m.From), Sanitize(m.Text), suffix)
}

// Sanitize makes text from other users safe to print on a terminal: every
// control character (escape sequences start with one), DEL, the C1 range
// and the bidirectional overrides that reorder what is shown become U+FFFD.
func Sanitize(s string) string {
	unsafe := func(r rune) bool {
		return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
	}
	if !strings.ContainsFunc(s, unsafe) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unsafe(r) {
			return '\ufffd'
		}
		return r
	}, s)
}

func (t *Term) showPush(p Push) {
	f, err := p.Fields()
	if err != nil {
		t.printf("! %v", err)
		return
	}
	switch p.Kind {
	case PushDelivered:
		t.printf("* delivered: %s received %s #%d", Sanitize(f.User), Sanitize(f.Conv), f.Seq)
	case PushRead:
		t.printf("* read: %s read %s up to #%d", Sanitize(f.User), Sanitize(f.Conv), f.Seq)
	case PushTyping:
		t.printf("* %s is typing in %s", Sanitize(f.User), Sanitize(f.Conv))
	case PushPresence:
		t.showPresence(f.User, PresenceState{Online: f.Online, Gateway: f.Gateway})
	case PushResync:
		t.mu.Lock()
		t.resync = fmt.Sprintf("%s from #%d at %s", Sanitize(f.Conv), f.FromSeq, time.Now().Format(time.TimeOnly))
		t.mu.Unlock()
		t.printf("%s", t.paint(colorYellow, fmt.Sprintf("* resync: %s changed order from #%d (messages from the other side of a partition sorted in); /history shows it again", Sanitize(f.Conv), f.FromSeq)))
	case PushKicked:
		t.printf("* kicked by the gateway: %s %s", Sanitize(f.Reason), Sanitize(f.Text))
	default:
		t.printf("* %s push: %s", Sanitize(p.Kind), Sanitize(string(p.Raw)))
	}
}

func (t *Term) showPresence(user string, p PresenceState) {
	if p.Online {
		t.printf("* %s is online (gateway %s)", Sanitize(user), Sanitize(p.Gateway))
		return
	}
	t.printf("* %s is offline", Sanitize(user))
}

func (t *Term) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := fmt.Sprintf(format, args...)
	if len(s) == 0 || s[len(s)-1] != '\n' {
		s += "\n"
	}
	_, _ = io.WriteString(t.out, s)
}
