package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mpim/chaos/fault"
	"mpim/lab"
)

func faultCmd() *cobra.Command {
	var labURL string
	cmd := &cobra.Command{
		Use:   "fault [--lab URL] <verb> [args...]",
		Short: "Apply a fault to a running lab: partition, oneway, delay, loss, kill, restart, pause, resume, heal (or list)",
		Long: `Apply one fault to a running lab through its HTTP API, in the lab's fault vocabulary:

  mpim fault partition n1 g1 / n2 n3 g2 g3 redis
  mpim fault partition isolate:leader
  mpim fault oneway n1 / n2
  mpim fault delay n1 n2 ms=40 jitter=20
  mpim fault kill leader        (also restart, pause, resume)
  mpim fault heal
  mpim fault list               (the network faults in force)

The lab is --lab URL, else $MPIM_LAB, else the lab most recently started on this machine.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spelled := strings.Join(args, " ")
			if args[0] != "list" {
				// A misspelt fault is named before the lab is looked for.
				if _, err := fault.Parse(spelled); err != nil {
					return usageError{err}
				}
			}
			base, err := findLab(labURL)
			if err != nil {
				return usageError{err}
			}
			client := &http.Client{Timeout: 60 * time.Second}
			if args[0] == "list" {
				resp, err := client.Get(base + "api/faults")
				if err != nil {
					return fmt.Errorf("lab at %s: %w", base, err)
				}
				return printReply(resp)
			}
			body, _ := json.Marshal(map[string]string{"fault": spelled})
			resp, err := client.Post(base+"api/faults", "application/json", bytes.NewReader(body))
			if err != nil {
				return fmt.Errorf("lab at %s: %w (is it still running?)", base, err)
			}
			return printReply(resp)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&labURL, "lab", "", "the lab's dashboard URL (default $MPIM_LAB, else the most recent lab)")
	return cmd
}

// findLab resolves the lab to talk to.
func findLab(flag string) (string, error) {
	u := flag
	if u == "" {
		u = os.Getenv("MPIM_LAB")
	}
	if u == "" {
		rec, err := lab.ReadState("")
		if err != nil {
			return "", fmt.Errorf("no lab given and none found: %w; start one with `mpim lab up` or pass --lab URL", err)
		}
		u = rec.URL
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u, nil
}

func printReply(resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("lab answered %s: %s", resp.Status, b)
	}
	var r struct {
		Applied string   `json:"applied"`
		Faults  []string `json:"faults"`
	}
	json.Unmarshal(b, &r)
	if r.Applied != "" {
		fmt.Println("applied:", r.Applied)
	}
	if len(r.Faults) == 0 {
		fmt.Println("network faults in force: none")
	} else {
		fmt.Println("network faults in force:")
		for _, f := range r.Faults {
			fmt.Println("  " + f)
		}
	}
	return nil
}
