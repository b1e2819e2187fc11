package client

import (
	"context"
	"errors"
	"fmt"
)

// This file is the delivery half of Session: what it does with a live
// connection. Catch-up syncs and pushes meet here, and deliver is the one
// place that decides whether OnMessage sees a message.

// serve catches up on conn and then delivers its pushes until it ends.
func (s *Session) serve(ctx context.Context, conn *Conn) error {
	var dropped uint64
	if err := s.catchUp(ctx, conn); err != nil {
		return err
	}
	if err := s.recoverDropped(ctx, conn, &dropped); err != nil {
		return err
	}
	s.flushAcks(ctx, conn)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p, ok := <-conn.Pushes():
			if !ok {
				return conn.Err()
			}
			if err := s.handle(ctx, conn, p); err != nil {
				return err
			}
			if err := s.recoverDropped(ctx, conn, &dropped); err != nil {
				return err
			}
			if len(conn.Pushes()) == 0 {
				s.flushAcks(ctx, conn)
			}
		}
	}
}

// recoverDropped catches up while conn has dropped pushes since *dropped:
// they may have been messages. Checking after every push and catch-up is
// enough, because a push is dropped only when Pushes is full, and then serve
// has a push to read and checks again.
func (s *Session) recoverDropped(ctx context.Context, conn *Conn, dropped *uint64) error {
	for n := conn.Overflows(); n != *dropped; n = conn.Overflows() {
		s.log.Warn("pushes dropped; catching up", "dropped", n-*dropped)
		*dropped = n
		if err := s.catchUp(ctx, conn); err != nil {
			return err
		}
	}
	return nil
}

// syncResult is what a catch-up sync pulled: messages, the cursor to
// continue from, and the error that cut it short, if any.
type syncResult struct {
	msgs   []Message
	cursor string
	err    error
}

// catchUp syncs from the cursor while holding the pushes that arrive, then
// delivers the synced messages and the held pushes, skipping seen ids.
// Holding matters: a push delivered first would hide the gap before it.
func (s *Session) catchUp(ctx context.Context, conn *Conn) error {
	after := make(map[string]uint64, len(s.after))
	for conv, seq := range s.after {
		after[conv] = seq
	}
	ch := make(chan syncResult, 1)
	cursor := s.cursor
	go func() { ch <- s.syncAll(ctx, conn, cursor, after) }()
	var held []Push
	pushes := conn.Pushes()
	for {
		select {
		case p, ok := <-pushes:
			if !ok {
				pushes = nil // the sync fails soon too; wait for it
				continue
			}
			held = append(held, p)
		case r := <-ch:
			s.cursor = r.cursor
			for _, m := range r.msgs {
				s.deliver(m)
			}
			errs := []error{r.err}
			for _, p := range held {
				errs = append(errs, s.handle(ctx, conn, p))
			}
			return errors.Join(errs...)
		}
	}
}

// syncAll pages through sync from cursor, or from the after map when there
// is no cursor or the gateway refuses it. It touches no session state: it
// runs beside the goroutine that holds the pushes.
func (s *Session) syncAll(ctx context.Context, conn *Conn, cursor string, after map[string]uint64) syncResult {
	res := syncResult{cursor: cursor}
	for {
		args := SyncArgs{Cursor: res.cursor}
		if res.cursor == "" {
			args.After = after
		}
		cctx, cancel := context.WithTimeout(ctx, s.opt.CallTimeout)
		r, err := conn.Sync(cctx, args)
		cancel()
		if err != nil {
			if res.cursor != "" && ErrorCode(err) == CodeBadRequest {
				s.log.Warn("gateway refused the sync cursor; syncing by seq", "err", err)
				res.cursor = ""
				continue
			}
			res.err = fmt.Errorf("client: catch-up sync: %w", err)
			return res
		}
		res.msgs = append(res.msgs, r.Messages...)
		for _, m := range r.Messages {
			after[m.Conv] = max(after[m.Conv], m.Seq)
		}
		if r.Cursor != "" {
			res.cursor = r.Cursor
		}
		if !r.More || len(r.Messages) == 0 {
			return res
		}
	}
}

// refetch re-reads conv from fromSeq after a `resync` push and delivers the
// messages not seen yet; positions of seen ones changed, not their ids.
func (s *Session) refetch(ctx context.Context, conn *Conn, conv string, fromSeq uint64) error {
	after := uint64(0)
	if fromSeq > 0 {
		after = fromSeq - 1
	}
	for {
		cctx, cancel := context.WithTimeout(ctx, s.opt.CallTimeout)
		r, err := conn.History(cctx, HistoryArgs{Conv: conv, After: after, Limit: 1000})
		cancel()
		if err != nil {
			return fmt.Errorf("client: refetch %s from #%d: %w", conv, fromSeq, err)
		}
		for _, m := range r.Messages {
			s.deliver(m)
			after = max(after, m.Seq)
		}
		if !r.More || len(r.Messages) == 0 {
			return nil
		}
	}
}

// handle delivers one push. It returns an error only when the connection
// must end: a `kicked` push or a failed refetch.
func (s *Session) handle(ctx context.Context, conn *Conn, p Push) error {
	if p.Kind == PushMessage {
		m, err := p.Message()
		if err != nil {
			s.log.Warn("bad message push", "err", err)
			return nil
		}
		s.deliver(m)
		return nil
	}
	if s.opt.OnPush != nil {
		s.opt.OnPush(p)
	}
	switch p.Kind {
	case PushKicked:
		f, _ := p.Fields()
		if f.Text != "" {
			return fmt.Errorf("%w: %s (%s)", ErrKicked, f.Reason, f.Text)
		}
		return fmt.Errorf("%w: %s", ErrKicked, f.Reason)
	case PushResync:
		f, err := p.Fields()
		if err != nil {
			return err
		}
		return s.refetch(ctx, conn, f.Conv, f.FromSeq)
	}
	return nil
}

// deliver hands m to OnMessage unless its id was delivered before or
// Session.Send sent it.
func (s *Session) deliver(m Message) {
	s.mu.Lock()
	_, dup := s.seen[m.ID]
	if m.From == s.opt.User {
		_, own := s.own[m.Cmid]
		dup = dup || own
	}
	s.seen[m.ID] = struct{}{}
	s.mu.Unlock()
	s.after[m.Conv] = max(s.after[m.Conv], m.Seq)
	if dup {
		return
	}
	if s.opt.Ack {
		s.ackDue[m.Conv] = max(s.ackDue[m.Conv], m.Seq)
	}
	if s.opt.OnMessage != nil {
		s.opt.OnMessage(m)
	}
}

// flushAcks sends the receipts owed since the last flush.
func (s *Session) flushAcks(ctx context.Context, conn *Conn) {
	for conv, seq := range s.ackDue {
		cctx, cancel := context.WithTimeout(ctx, s.opt.CallTimeout)
		if err := conn.Ack(cctx, conv, seq); err != nil {
			s.log.Debug("ack failed", "conv", conv, "seq", seq, "err", err)
		}
		cancel()
	}
	clear(s.ackDue)
}
