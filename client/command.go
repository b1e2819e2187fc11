package client

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Limits of the protocol that the terminal checks before sending, so that a
// pasted novel gets a helpful message instead of a closed connection.
const (
	maxTextBytes     = 4096
	maxNicknameBytes = 64
	maxHistoryLimit  = 1000
	defaultHistory   = 20
)

// nameRE is the protocol's rule for user and group names.
var nameRE = regexp.MustCompile(`^[a-z0-9_.-]{1,32}$`)

// Command is one line of terminal input. Name is the command without its
// slash ("to", "group", ...), or "" for a chat message, whose text is in
// Text; /nick keeps its nickname in Text too. A blank line is the zero
// Command.
type Command struct {
	Name string
	Args []string
	Text string
	N    int // the count of /history
	// Read is /history's read mode: "" (the default, linearizable),
	// "linearizable" or "local".
	Read string
	// On is /retry's setting.
	On bool
}

// commandSpec describes one command: its arguments, for validation and help.
type commandSpec struct {
	usage    string
	help     string
	min, max int  // number of arguments; max -1 means any
	names    bool // the arguments are user or group names
}

var commands = map[string]commandSpec{
	"to":      {usage: "/to USER", help: "talk to USER directly", min: 1, max: 1, names: true},
	"group":   {usage: "/group NAME", help: "talk in group NAME, creating it if needed", min: 1, max: 1, names: true},
	"join":    {usage: "/join NAME", help: "join group NAME", min: 1, max: 1, names: true},
	"leave":   {usage: "/leave NAME", help: "leave group NAME", min: 1, max: 1, names: true},
	"members": {usage: "/members [NAME]", help: "list the members of a group (default: the current one)", min: 0, max: 1, names: true},
	"history": {usage: "/history [N] [linearizable|local]", help: fmt.Sprintf("show the last N messages here (default %d); local reads this node's copy, which may be stale on a cut-off side", defaultHistory), min: 0, max: 2},
	"status":  {usage: "/status", help: "show the mode, gateway and node, this conversation's shard and leader, the connection", min: 0, max: 0},
	"retry":   {usage: "/retry on|off", help: "retry refused and unknown sends with the same cmid (on, the default) or show each refusal as final", min: 1, max: 1},
	"who":     {usage: "/who USER...", help: "show whether users are online, and follow them", min: 1, max: -1, names: true},
	"info":    {usage: "/info USER", help: "show a user's profile", min: 1, max: 1, names: true},
	"nick":    {usage: "/nick NAME", help: "set your nickname (empty clears it)", min: 0, max: -1},
	"help":    {usage: "/help", help: "show this help", min: 0, max: 0},
	"quit":    {usage: "/quit", help: "leave the client", min: 0, max: 0},
}

// commandOrder is the order of the help text.
var commandOrder = []string{"to", "group", "join", "leave", "members", "history", "status", "retry", "who", "info", "nick", "help", "quit"}

// HelpText returns the help shown by /help.
func HelpText() string {
	var b strings.Builder
	for _, name := range commandOrder {
		c := commands[name]
		fmt.Fprintf(&b, "  %-16s %s\n", c.usage, c.help)
	}
	b.WriteString("  any other line is sent to the current conversation (start it with // to send a leading /)\n")
	return b.String()
}

// ParseCommand parses one line of terminal input. Its errors say what was
// wrong and how to write the command.
func ParseCommand(line string) (Command, error) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" {
		return Command{}, nil
	}
	if !strings.HasPrefix(line, "/") || strings.HasPrefix(line, "//") {
		text := strings.TrimPrefix(line, "/")
		if len(text) > maxTextBytes {
			return Command{}, fmt.Errorf("message is %d bytes; the limit is %d", len(text), maxTextBytes)
		}
		return Command{Text: text}, nil
	}
	fields := strings.Fields(line[1:])
	if len(fields) == 0 {
		return Command{}, fmt.Errorf("empty command; type /help for the list")
	}
	name, args := strings.ToLower(fields[0]), fields[1:]
	spec, ok := commands[name]
	if !ok {
		return Command{}, fmt.Errorf("unknown command /%s; type /help for the list", name)
	}
	if len(args) < spec.min || (spec.max >= 0 && len(args) > spec.max) {
		return Command{}, fmt.Errorf("usage: %s", spec.usage)
	}
	cmd := Command{Name: name, Args: args}
	if spec.names {
		for _, a := range args {
			if !nameRE.MatchString(a) {
				return Command{}, fmt.Errorf("bad name %q: names are 1 to 32 of a-z 0-9 _ . -", a)
			}
		}
	}
	switch name {
	case "history":
		cmd.N = defaultHistory
		for _, a := range args {
			switch a = strings.ToLower(a); a {
			case "linearizable", "local":
				if cmd.Read != "" {
					return Command{}, fmt.Errorf("usage: %s", spec.usage)
				}
				cmd.Read = a
				continue
			}
			n, err := strconv.Atoi(a)
			if err != nil || n < 1 || n > maxHistoryLimit {
				return Command{}, fmt.Errorf("usage: %s, with N from 1 to %d", spec.usage, maxHistoryLimit)
			}
			cmd.N = n
		}
	case "retry":
		switch strings.ToLower(args[0]) {
		case "on":
			cmd.On = true
		case "off":
		default:
			return Command{}, fmt.Errorf("usage: %s", spec.usage)
		}
	case "nick":
		cmd.Text = strings.Join(args, " ")
		if len(cmd.Text) > maxNicknameBytes {
			return Command{}, fmt.Errorf("nickname is %d bytes; the limit is %d", len(cmd.Text), maxNicknameBytes)
		}
	}
	return cmd, nil
}
