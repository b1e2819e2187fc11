package fsm

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata transcripts with the actual output")

// TestTranscripts runs every testdata/*.txt transcript, in the spirit of
// etcd-io/raft's datadriven tests. A transcript is a sequence of blocks
// separated by blank lines; '#' lines are comments. A block is one command,
// a line "----", and the expected output:
//
//	send conv=g:team from=1 cmid=c1 text=hello
//	----
//	ok conv=g:team seq=1 id=m1 members=[1 2]
//
// Arguments are key=value without spaces. Each state-changing command is
// its own log entry at the next index (index=N overrides). Commands:
//
//	register name= [uid=]            nick uid= name=
//	group name= creator= [members=1,2]
//	join group= uid=                 leave group= uid=
//	send conv= from= [to=] cmid= [id=] [text=]   (id defaults to m1, m2, ...)
//	ack uid= [device=] conv= (seq=|id=)          read uid= conv= (seq=|id=)
//	messages conv= [after=] [before=] [limit=]   members conv=
//	convs uid=   cursors uid= conv= [device=]   digest conv=   user uid=   applied
//
// Run `go test ./fsm/ -run TestTranscripts -update` to rewrite the expected
// output after a deliberate change, and review the diff.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts under testdata (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTranscript(t, f) })
	}
}

type block struct {
	comments []string
	cmd      string
	want     string
	line     int
}

func parseTranscript(t *testing.T, path string) []block {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	var cur block
	state := 0 // 0: before command, 1: expecting ----, 2: in output
	var want []string
	flush := func() {
		cur.want = strings.Join(want, "\n")
		out = append(out, cur)
		cur, want, state = block{}, nil, 0
	}
	for i, l := range strings.Split(string(raw), "\n") {
		switch {
		case state == 2 && l == "":
			flush()
		case state == 2:
			want = append(want, l)
		case state == 1 && l == "----":
			state = 2
		case state == 1:
			t.Fatalf("%s:%d: want ---- after the command, got %q", path, i+1, l)
		case strings.HasPrefix(l, "#") || (l == "" && len(cur.comments) > 0):
			cur.comments = append(cur.comments, l)
		case l == "":
		default:
			cur.cmd, cur.line, state = l, i+1, 1
		}
	}
	if state == 2 {
		flush()
	} else if state == 1 {
		t.Fatalf("%s: last command %q has no ---- line", path, cur.cmd)
	}
	return out
}

func runTranscript(t *testing.T, path string) {
	blocks := parseTranscript(t, path)
	h := newHarness(t, Config{DedupWindow: 3})
	sends := 0
	var rewritten strings.Builder
	for _, b := range blocks {
		got := runCommand(t, h, &sends, path, b)
		if *update {
			for _, c := range b.comments {
				rewritten.WriteString(c + "\n")
			}
			fmt.Fprintf(&rewritten, "%s\n----\n%s\n\n", b.cmd, got)
			continue
		}
		if got != b.want {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, b.line, b.cmd, got, b.want)
		}
	}
	if *update {
		out := strings.TrimRight(rewritten.String(), "\n") + "\n"
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runCommand executes one transcript command and renders its outcome.
func runCommand(t *testing.T, h *harness, sends *int, path string, b block) string {
	t.Helper()
	fields := strings.Fields(b.cmd)
	args := map[string]string{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("%s:%d: argument %q is not key=value", path, b.line, f)
		}
		args[k] = v
	}
	num := func(k string) uint64 {
		if args[k] == "" {
			return 0
		}
		n, err := strconv.ParseUint(args[k], 10, 64)
		if err != nil {
			t.Fatalf("%s:%d: %s=%q is not a number", path, b.line, k, args[k])
		}
		return n
	}
	var cmd Command
	switch fields[0] {
	case "register":
		cmd = Command{Register: &Register{Name: args["name"], PwHash: []byte("pw"), UID: num("uid")}}
	case "nick":
		cmd = nick(num("uid"), args["name"])
	case "group":
		var members []uint64
		for _, s := range strings.FieldsFunc(args["members"], func(r rune) bool { return r == ',' }) {
			n, _ := strconv.ParseUint(s, 10, 64)
			members = append(members, n)
		}
		cmd = mkGroup(args["name"], num("creator"), members...)
	case "join":
		cmd = joinGroup(args["group"], num("uid"))
	case "leave":
		cmd = leaveGroup(args["group"], num("uid"))
	case "send":
		*sends++
		id := args["id"]
		if id == "" {
			id = fmt.Sprintf("m%d", *sends)
		}
		from, _ := UserByUID(h.kv, num("from"))
		cmd = Command{Send: &Send{Conv: args["conv"], FromUID: num("from"), From: from.Name, To: num("to"),
			Text: args["text"], Cmid: args["cmid"], ID: id}}
	case "ack":
		cmd = Command{Ack: &Cursor{UID: num("uid"), Device: args["device"], Conv: args["conv"], Seq: num("seq"), ID: args["id"]}}
	case "read":
		cmd = Command{Read: &Cursor{UID: num("uid"), Conv: args["conv"], Seq: num("seq"), ID: args["id"]}}
	default:
		return runQuery(t, h, fields[0], args, num, path, b.line)
	}
	index := h.index + 1
	if args["index"] != "" {
		index = num("index")
	}
	rs, err := h.m.Apply(h.kv, index, []Command{cmd})
	if err != nil {
		if !errors.Is(err, ErrApplied) {
			t.Fatalf("%s:%d: storage error %v", path, b.line, err)
		}
		return "apply error: " + err.Error()
	}
	h.index = max(h.index, index)
	return renderResult(rs[0])
}

func renderResult(r Result) string {
	if r.Err != nil {
		return "error: " + r.Err.Error()
	}
	out := []string{"ok"}
	if r.UID != 0 {
		out = append(out, fmt.Sprintf("uid=%d", r.UID))
	}
	if r.Conv != "" {
		out = append(out, "conv="+r.Conv)
	}
	if r.Seq != 0 {
		out = append(out, fmt.Sprintf("seq=%d", r.Seq), "id="+r.ID)
	}
	if r.Dup {
		out = append(out, "dup")
	}
	if r.Conv != "" {
		out = append(out, fmt.Sprintf("members=%v", r.Members))
	}
	return strings.Join(out, " ")
}

func runQuery(t *testing.T, h *harness, verb string, args map[string]string, num func(string) uint64, path string, line int) string {
	t.Helper()
	conv := args["conv"]
	switch verb {
	case "messages":
		limit := 100
		if args["limit"] != "" {
			limit = int(num("limit"))
		}
		msgs, more := Messages(h.kv, conv, num("after"), num("before"), limit)
		var out []string
		for _, m := range msgs {
			out = append(out, fmt.Sprintf("seq=%d id=%s from=%s cmid=%s text=%s", m.Seq, m.ID, m.From, m.Cmid, m.Text))
		}
		return strings.Join(append(out, fmt.Sprintf("more=%v", more)), "\n")
	case "members":
		return fmt.Sprintf("%v", Members(h.kv, conv))
	case "convs":
		return fmt.Sprintf("%v", UserConvs(h.kv, num("uid")))
	case "cursors":
		return fmt.Sprintf("delivered=%d read=%d", Delivered(h.kv, num("uid"), args["device"], conv), ReadCursor(h.kv, num("uid"), conv))
	case "digest":
		n, d := Digest(h.kv, conv)
		return fmt.Sprintf("count=%d digest=%s", n, d)
	case "user":
		u, ok := UserByUID(h.kv, num("uid"))
		if !ok {
			return "no such user"
		}
		return fmt.Sprintf("uid=%d name=%s nick=%s", u.UID, u.Name, u.Nickname)
	case "applied":
		return fmt.Sprintf("%d", Applied(h.kv))
	}
	t.Fatalf("%s:%d: unknown command %q", path, line, verb)
	return ""
}
