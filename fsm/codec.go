package fsm

import (
	"encoding/json"
	"fmt"

	"mpim/internal/binenc"
)

// A log entry is a batch of commands. Its encoding: the format byte, the
// number of commands, then each command as a tag and its fields. Sends,
// nearly every command of a busy log, have their own compact layout; any
// other command is carried as its JSON. Entries written before this
// encoding are JSON arrays (they start with '['): DecodeBatch still reads
// them, so a log written by an older node replays.
const batchFormat = 0x01

// Command tags.
const (
	tagJSON = 0 // any command, as JSON
	tagSend = 1 // a Send alone: appendSend's layout
)

// EncodeBatch serializes commands as one log entry.
func EncodeBatch(cmds []Command) ([]byte, error) {
	b := make([]byte, 0, 8+128*len(cmds))
	b = append(b, batchFormat)
	b = binenc.AppendUvarint(b, uint64(len(cmds)))
	for i := range cmds {
		c := &cmds[i]
		if c.Send != nil && *c == (Command{Send: c.Send}) {
			b = appendSend(append(b, tagSend), c.Send)
			continue
		}
		j, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("fsm: encode batch: %w", err)
		}
		b = binenc.AppendBytes(append(b, tagJSON), j)
	}
	return b, nil
}

// DecodeBatch is the inverse of EncodeBatch.
func DecodeBatch(b []byte) ([]Command, error) {
	if len(b) > 0 && b[0] == '[' {
		var cmds []Command
		if err := json.Unmarshal(b, &cmds); err != nil {
			return nil, fmt.Errorf("fsm: decode batch: %w", err)
		}
		return cmds, nil
	}
	if len(b) == 0 || b[0] != batchFormat {
		return nil, fmt.Errorf("fsm: decode batch: not a log entry (format byte %q)", b[:min(len(b), 1)])
	}
	r := binenc.NewReader(b[1:])
	n := r.Uvarint()
	if n > uint64(r.Len()) { // every command takes at least its tag
		return nil, fmt.Errorf("fsm: decode batch: %d commands in %d bytes", n, r.Len())
	}
	cmds := make([]Command, n)
	for i := range cmds {
		switch tag := r.Byte(); tag {
		case tagSend:
			cmds[i].Send = readSend(r)
		case tagJSON:
			if err := json.Unmarshal(r.Bytes(), &cmds[i]); err != nil && r.Err() == nil {
				return nil, fmt.Errorf("fsm: decode batch: command %d: %w", i, err)
			}
		default:
			if r.Err() == nil {
				return nil, fmt.Errorf("fsm: decode batch: command %d has unknown tag %d", i, tag)
			}
		}
	}
	if r.Err() != nil || r.Len() != 0 {
		return nil, fmt.Errorf("fsm: decode batch: malformed entry (%v, %d bytes left)", r.Err(), r.Len())
	}
	return cmds, nil
}

// appendSend appends every field of s; TestSendCodecFields fails when a
// field is added to Send and not here.
func appendSend(b []byte, s *Send) []byte {
	b = binenc.AppendString(b, s.Conv)
	b = binenc.AppendUvarint(b, s.FromUID)
	b = binenc.AppendString(b, s.From)
	b = binenc.AppendUvarint(b, s.To)
	b = binenc.AppendString(b, s.Text)
	b = binenc.AppendString(b, s.Cmid)
	b = binenc.AppendString(b, s.ID)
	b = binenc.AppendVarint(b, s.Ts)
	b = binenc.AppendString(b, s.Origin)
	b = binenc.AppendBytes(b, s.Order)
	return binenc.AppendUvarint(b, s.OSeq)
}

func readSend(r *binenc.Reader) *Send {
	return &Send{Conv: r.String(), FromUID: r.Uvarint(), From: r.String(), To: r.Uvarint(), Text: r.String(),
		Cmid: r.String(), ID: r.String(), Ts: r.Varint(), Origin: r.String(), Order: r.Bytes(), OSeq: r.Uvarint()}
}
