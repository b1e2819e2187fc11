package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// snapshotMagic starts every snapshot stream, with a version byte.
var snapshotMagic = []byte("MPIMSNAP\x01")

// Snapshot writes the whole state in tx to w as a deterministic stream:
// the same state always gives the same bytes.
func Snapshot(tx Tx, w io.Writer) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.Write(snapshotMagic); err != nil {
		return err
	}
	var werr error
	put := func(b []byte) {
		var n [binary.MaxVarintLen64]byte
		if werr == nil {
			_, werr = bw.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
		}
		if werr == nil {
			_, werr = bw.Write(b)
		}
	}
	for i, name := range Buckets {
		err := tx.Scan(name, nil, nil, false, func(k, v []byte) bool {
			bw.WriteByte(byte(i + 1))
			put(k)
			put(v)
			return werr == nil
		})
		if err != nil {
			return err
		}
		if werr != nil {
			return werr
		}
	}
	if err := bw.WriteByte(0); err != nil {
		return err
	}
	return bw.Flush()
}

// Restore reads a stream written by Snapshot into tx, which must be empty.
func Restore(tx Tx, r io.Reader) error {
	br := bufio.NewReader(r)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != string(snapshotMagic) {
		return errors.New("fsm: restore: not a snapshot stream (bad header)")
	}
	get := func() ([]byte, error) {
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, err
		}
		if n > 1<<30 {
			return nil, fmt.Errorf("fsm: restore: record of %d bytes", n)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(br, b)
		return b, err
	}
	for {
		tag, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("fsm: restore: truncated stream: %w", err)
		}
		if tag == 0 {
			return nil
		}
		if int(tag) > len(Buckets) {
			return fmt.Errorf("fsm: restore: unknown bucket tag %d", tag)
		}
		k, err := get()
		if err != nil {
			return fmt.Errorf("fsm: restore: %w", err)
		}
		v, err := get()
		if err != nil {
			return fmt.Errorf("fsm: restore: %w", err)
		}
		if err := tx.Put(Buckets[tag-1], k, v); err != nil {
			return err
		}
	}
}
