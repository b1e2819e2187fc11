package ap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"mpim/fsm"
	"mpim/internal/binenc"
)

// Entry is one write as the AP mode replicates it: the command with every
// value its origin chose (ids, the message's order key, the user's uid),
// numbered densely per origin, with the origin's vector when it was made
// (its causal dependencies).
type Entry struct {
	Origin string            `json:"origin"`
	OSeq   uint64            `json:"oseq"`
	HLC    uint64            `json:"hlc"`
	Deps   map[string]uint64 `json:"deps,omitempty"`
	Cmd    fsm.Command       `json:"cmd"`
}

// entryFormat is the first byte of an encoded entry.
const entryFormat = 0x02

// EncodeEntry is an entry's binary form, the same in the log, on Redis
// and in anti-entropy pulls: the format byte, origin, oseq, clock, the
// dependencies in origin order, then the command as an fsm batch of one.
func EncodeEntry(e Entry) ([]byte, error) {
	cmd, err := fsm.EncodeBatch([]fsm.Command{e.Cmd})
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 32+len(e.Origin)+12*len(e.Deps)+len(cmd))
	b = append(b, entryFormat)
	b = binenc.AppendString(b, e.Origin)
	b = binenc.AppendUvarint(b, e.OSeq)
	b = binenc.AppendUvarint(b, e.HLC)
	origins := make([]string, 0, len(e.Deps))
	for o := range e.Deps {
		origins = append(origins, o)
	}
	sort.Strings(origins)
	b = binenc.AppendUvarint(b, uint64(len(origins)))
	for _, o := range origins {
		b = binenc.AppendString(b, o)
		b = binenc.AppendUvarint(b, e.Deps[o])
	}
	return binenc.AppendBytes(b, cmd), nil
}

// DecodeEntry is the inverse of EncodeEntry.
func DecodeEntry(b []byte) (Entry, error) {
	if len(b) == 0 || b[0] != entryFormat {
		return Entry{}, fmt.Errorf("ap: decode entry: not an entry (format byte %q)", b[:min(len(b), 1)])
	}
	r := binenc.NewReader(b[1:])
	e := Entry{Origin: r.String(), OSeq: r.Uvarint(), HLC: r.Uvarint()}
	n := r.Uvarint()
	if n > uint64(r.Len()) {
		return Entry{}, fmt.Errorf("ap: decode entry: %d dependencies in %d bytes", n, r.Len())
	}
	if n > 0 {
		e.Deps = make(map[string]uint64, n)
		for range n {
			o := r.String()
			e.Deps[o] = r.Uvarint()
		}
	}
	cmd := r.Bytes()
	if r.Err() != nil || r.Len() != 0 {
		return Entry{}, fmt.Errorf("ap: decode entry: malformed (%v, %d bytes left)", r.Err(), r.Len())
	}
	cmds, err := fsm.DecodeBatch(cmd)
	if err != nil {
		return Entry{}, fmt.Errorf("ap: decode entry %s/%d: %w", e.Origin, e.OSeq, err)
	}
	if len(cmds) != 1 {
		return Entry{}, fmt.Errorf("ap: decode entry %s/%d: %d commands, want 1", e.Origin, e.OSeq, len(cmds))
	}
	e.Cmd = cmds[0]
	return e, nil
}

// record is where one entry sits in the log file, with what the status
// needs without reading it.
type record struct {
	off  int64
	size uint32
	hlc  uint64
	send bool
}

// log is a node's durable copy of every entry it holds, in the order it
// applied them (a causal order): an append-only file of length- and
// CRC-framed encoded entries, and an in-memory index of each origin's
// entries by oseq. It is the state's source at a restart, the source of
// anti-entropy pulls and of publishing (the outbox is a position in it).
// Appends come from the replicator's one engine goroutine; reads from
// anywhere.
type log struct {
	f  *os.File
	mu sync.RWMutex // guards size and index
	// size is the file's length: where the next record goes.
	size  int64
	index map[string][]record // origin -> records, oseq 1 first
}

// frameHeader is a record's frame: its length and its CRC-32C.
const frameHeader = 8

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// openLog opens the log in dir and calls replay for every entry it holds,
// in order. A record cut short by a crash (or whose checksum fails) ends
// the log: it and whatever follows are cut off, so that appends continue
// from the last whole record.
func openLog(dir string, replay func(Entry) error) (*log, error) {
	if _, err := os.Stat(filepath.Join(dir, "ap.db")); err == nil {
		return nil, fmt.Errorf("ap: %s holds data from an older mpim (ap.db); start this node on a fresh --data directory", dir)
	}
	f, err := os.OpenFile(filepath.Join(dir, "ap.log"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ap: open log: %w", err)
	}
	l := &log{f: f, index: map[string][]record{}}
	rd := bufio.NewReaderSize(f, 1<<20)
	var head [frameHeader]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(rd, head[:]); err != nil {
			break // the end, or a header cut short
		}
		n := binary.BigEndian.Uint32(head[:4])
		if n > maxRecord {
			break
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(rd, buf); err != nil || crc32.Checksum(buf, crcTable) != binary.BigEndian.Uint32(head[4:]) {
			break
		}
		e, err := DecodeEntry(buf)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("ap: log record at %d: %w", l.size, err)
		}
		if held := uint64(len(l.index[e.Origin])); e.OSeq <= held {
			f.Close()
			return nil, fmt.Errorf("ap: log record at %d: %s/%d again (the log holds %d of %s's entries)", l.size, e.Origin, e.OSeq, held, e.Origin)
		}
		if err := replay(e); err != nil {
			f.Close()
			return nil, err
		}
		l.add(e, l.size, n)
		l.size += frameHeader + int64(n)
	}
	if err := f.Truncate(l.size); err != nil {
		f.Close()
		return nil, fmt.Errorf("ap: cut the log's torn tail: %w", err)
	}
	return l, nil
}

// maxRecord bounds one record: far above any entry the protocol's limits
// allow, it tells a corrupt length from a real one.
const maxRecord = 16 << 20

// appendEntries writes encoded entries (in order, each after its origin's
// last) as one write, and with sync waits until they are on disk.
func (l *log) appendEntries(entries []Entry, encoded [][]byte, sync bool) error {
	var total int
	for _, b := range encoded {
		total += frameHeader + len(b)
	}
	out := make([]byte, 0, total)
	for _, b := range encoded {
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = binary.BigEndian.AppendUint32(out, crc32.Checksum(b, crcTable))
		out = append(out, b...)
	}
	l.mu.RLock()
	at := l.size
	l.mu.RUnlock()
	if _, err := l.f.WriteAt(out, at); err != nil {
		return fmt.Errorf("ap: log write: %w", err)
	}
	if sync {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("ap: log fsync: %w", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range entries {
		l.add(e, at, uint32(len(encoded[i])))
		at += frameHeader + int64(len(encoded[i]))
	}
	l.size = at
	return nil
}

// add indexes entry e, stored at off. An origin's entries come densely,
// each its origin's next, except with repair off, where a missed entry
// leaves a hole (a record of size 0) that nothing fills. Caller holds mu
// (or owns the log, while it opens).
func (l *log) add(e Entry, off int64, size uint32) {
	recs := l.index[e.Origin]
	for uint64(len(recs))+1 < e.OSeq {
		recs = append(recs, record{})
	}
	l.index[e.Origin] = append(recs, record{off: off, size: size, hlc: e.HLC, send: e.Cmd.Send != nil})
}

// held is how many of origin's entries the log holds (its vector entry).
func (l *log) held(origin string) uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return uint64(len(l.index[origin]))
}

// readRaw returns origin's encoded entries after oseq after, in order: at
// most limit of them and, past the first, at most maxBytes in all.
func (l *log) readRaw(origin string, after uint64, limit, maxBytes int) ([][]byte, error) {
	l.mu.RLock()
	recs := l.index[origin]
	if after >= uint64(len(recs)) {
		l.mu.RUnlock()
		return nil, nil
	}
	recs = recs[after:min(uint64(len(recs)), after+uint64(limit))]
	l.mu.RUnlock()
	var out [][]byte
	bytes := 0
	for _, rec := range recs {
		if rec.size == 0 {
			break // a hole (repair off): what follows it is served by no pull
		}
		if len(out) > 0 && bytes+int(rec.size) > maxBytes {
			break
		}
		b := make([]byte, frameHeader+int(rec.size))
		if _, err := l.f.ReadAt(b, rec.off); err != nil {
			return out, fmt.Errorf("ap: log read %s/%d: %w", origin, after+uint64(len(out))+1, err)
		}
		out = append(out, b[frameHeader:])
		bytes += int(rec.size)
	}
	return out, nil
}

// read returns origin's entries after oseq after, decoded (see readRaw).
func (l *log) read(origin string, after uint64, limit, maxBytes int) ([]Entry, error) {
	raw, err := l.readRaw(origin, after, limit, maxBytes)
	out := make([]Entry, 0, len(raw))
	for _, b := range raw {
		e, derr := DecodeEntry(b)
		if derr != nil {
			return out, derr
		}
		out = append(out, e)
	}
	return out, err
}

// countAbove counts the message entries whose clock is above hlc, reading
// each origin's index from its newest back (an origin's entries are in
// clock order) and at most limit per origin.
func (l *log) countAbove(hlc uint64, limit int) (n int, capped bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, recs := range l.index {
		for i, read := len(recs)-1, 0; i >= 0 && recs[i].hlc > hlc; i, read = i-1, read+1 {
			if read == limit {
				capped = true
				break
			}
			if recs[i].send {
				n++
			}
		}
	}
	return n, capped
}

// vector is, per origin, how many entries the log holds.
func (l *log) vector() map[string]uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[string]uint64, len(l.index))
	for o, recs := range l.index {
		out[o] = uint64(len(recs))
	}
	return out
}

func (l *log) close() error { return l.f.Close() }

// errStopping answers work that arrives while the replicator stops.
var errStopping = errors.New("stopping")
