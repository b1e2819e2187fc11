package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"mpim/client"
)

func clientCmd() *cobra.Command {
	opt := client.SessionOptions{}
	var password, retry, color string
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Chat from the terminal (reconnects and fails over by itself)",
		Long: "Chat from the terminal: lines are sent to the current conversation, " +
			"commands start with / (/help lists them). Give several --gateway flags for failover.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(opt.Gateways) == 0 || opt.User == "" {
				return usageError{errors.New("client needs --gateway ws://HOST:PORT/ws and --user NAME")}
			}
			pw, err := clientPassword(password)
			if err != nil {
				return err
			}
			opt.Password = pw
			opt.Logger = clientLogger(opt.User)
			on, err := onOff("--retry", retry)
			if err != nil {
				return err
			}
			opt.NoRetry = !on
			t := client.NewTerm(opt, os.Stdout)
			switch color {
			case "auto":
				t.Color = client.IsTerminal(os.Stdout) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
			case "on", "off":
				t.Color = color == "on"
			default:
				return usageError{fmt.Errorf("--color %q: use auto, on or off", color)}
			}
			return t.Run(cmd.Context(), os.Stdin)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opt.Gateways, "gateway", nil, "gateway URL ws://HOST:PORT/ws; repeat for failover, tried in order")
	f.StringVar(&opt.User, "user", "", "user name")
	f.StringVar(&password, "password", "", "password (default $MPIM_PASSWORD, else asked on the terminal)")
	f.StringVar(&opt.Device, "device", "", "device name (default: the gateway's \"default\")")
	f.BoolVar(&opt.Register, "register", false, "create the account first (an existing one is fine)")
	f.StringVar(&retry, "retry", "on", "retry refused and unknown sends with the same cmid (on), or show each refusal as final (off; /retry in the client)")
	f.StringVar(&color, "color", "auto", "colour the sends' fates: auto (when stdout is a terminal and NO_COLOR is unset), on or off")
	return cmd
}

// clientPassword takes the password from the flag, then $MPIM_PASSWORD, then
// a prompt on the terminal.
func clientPassword(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if pw := os.Getenv("MPIM_PASSWORD"); pw != "" {
		return pw, nil
	}
	if !client.IsTerminal(os.Stdin) {
		return "", usageError{errors.New("no password: pass --password or set MPIM_PASSWORD (stdin is not a terminal to ask on)")}
	}
	fmt.Fprint(os.Stderr, "password: ")
	pw, err := client.ReadPassword(os.Stdin)
	fmt.Fprintln(os.Stderr)
	return pw, err
}

// clientLogger logs to stderr at the level in $MPIM_LOG, by default only
// errors: the terminal already shows connection changes.
func clientLogger(user string) *slog.Logger {
	level := slog.LevelError
	if v := os.Getenv("MPIM_LOG"); v != "" {
		_ = level.UnmarshalText([]byte(v))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("client", user)
}
