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
	"time"
)

// commandTimeout bounds one terminal command, retries of a send included,
// and openTimeout the first login; later reconnections never give up.
const (
	commandTimeout = 30 * time.Second
	openTimeout    = 30 * time.Second
)

// Term is the line-oriented chat client behind `mpim client`: it reads
// commands and messages from an io.Reader, runs them on a Session, and
// writes what happens to an io.Writer. Lines starting with "*" are events,
// lines starting with "!" are errors, and messages print as
// "[conv #seq] from: text".
type Term struct {
	opt SessionOptions

	mu  sync.Mutex // guards out: the session goroutine prints too
	out io.Writer

	// The current conversation: a user (to) or a group. Only the command
	// loop touches them.
	to, group string
}

// NewTerm returns a terminal client for the account in opt. Run replaces
// opt's callbacks with its own printers and turns on delivery receipts.
func NewTerm(opt SessionOptions, out io.Writer) *Term {
	return &Term{opt: opt, out: out}
}

// Run opens the session and runs commands read from in until /quit, the end
// of in, or ctx ends (all three return nil), or the session stops (its
// error). A read of in that is blocked when Run returns ends when in
// delivers a line or is closed.
func (t *Term) Run(ctx context.Context, in io.Reader) error {
	opt := t.opt
	opt.OnMessage = t.showMessage
	opt.OnPush = t.showPush
	opt.OnState = func(st string) { t.printf("* %s", st) }
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
			t.send(ctx, s, cmd.Text)
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
		h, err := c.History(ctx, HistoryArgs{Conv: conv, Limit: cmd.N})
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

// send sends text to the current conversation; Session.Send retries it
// with one cmid while the outcome is unknown.
func (t *Term) send(ctx context.Context, s *Session, text string) {
	if t.to == "" && t.group == "" {
		t.printf("! no conversation yet; use /to USER or /group NAME first")
		return
	}
	r, err := s.Send(ctx, SendArgs{To: t.to, Group: t.group, Text: text, Cmid: NewCmid()})
	if err != nil {
		switch ErrorCode(err) {
		case "", CodeTimeout:
			t.printf("! not confirmed, it may or may not have been sent: %v", err)
		default:
			t.printf("! not sent: %v", err)
		}
		return
	}
	t.showMessage(Message{Conv: r.Conv, Seq: r.Seq, ID: r.ID, From: t.opt.User, Text: text, Ts: r.Ts})
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
	t.printf("[%s #%d] %s: %s%s", m.Conv, m.Seq, m.From, m.Text, suffix)
}

func (t *Term) showPush(p Push) {
	f, err := p.Fields()
	if err != nil {
		t.printf("! %v", err)
		return
	}
	switch p.Kind {
	case PushDelivered:
		t.printf("* %s received %s #%d", f.User, f.Conv, f.Seq)
	case PushRead:
		t.printf("* %s read %s up to #%d", f.User, f.Conv, f.Seq)
	case PushTyping:
		t.printf("* %s is typing in %s", f.User, f.Conv)
	case PushPresence:
		t.showPresence(f.User, PresenceState{Online: f.Online, Gateway: f.Gateway})
	case PushResync:
		t.printf("* %s changed order from #%d; /history shows it again", f.Conv, f.FromSeq)
	case PushKicked:
		t.printf("* kicked by the gateway: %s %s", f.Reason, f.Text)
	default:
		t.printf("* %s push: %s", p.Kind, p.Raw)
	}
}

func (t *Term) showPresence(user string, p PresenceState) {
	if p.Online {
		t.printf("* %s is online (gateway %s)", user, p.Gateway)
		return
	}
	t.printf("* %s is offline", user)
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
