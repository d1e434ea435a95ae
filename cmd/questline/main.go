// Command questline is the single binary of questline: one subcommand per
// role (SPEC §8). Every role scales out by running more processes of it
// against the same Kafka and ClickHouse.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand (SPEC §8); each is implemented in the
// file of its name.
var commands = map[string]command{
	"run":        {"every role in one process: ingest, API, processors, sink", runAll},
	"ingest":     {"HTTP edge ingest: POST /v1/events into Kafka", runIngest},
	"api":        {"the quest/drop API (SPEC §3): quests, drops, claims on -http-addr", runAPI},
	"process":    {"the window processors: Kafka -> metrics -> ClickHouse", runProcess},
	"sink":       {"raw events and dead letters: Kafka -> ClickHouse", runSink},
	"loadgen":    {"synthetic traffic with ground truth", runLoadgen},
	"migrate":    {"create or upgrade the ClickHouse schema", runMigrate},
	"dashboards": {"write the Grafana dashboards' JSON (provisioning files are in dashboards/provisioning)", runDashboards},
	"decode":     {"print Kafka records (kcat -f '%R%s') as JSON lines", runDecode},
}

// longRunning are the roles that run until stopped: a stop while one
// starts is a clean exit.
var longRunning = map[string]bool{"run": true, "ingest": true, "api": true, "process": true, "sink": true, "loadgen": true}

// errUsage marks an error whose message is a usage problem (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "questline: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h: the flag set printed the command's usage
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) && longRunning[args[0]] {
			// SIGTERM or Ctrl-C while a role is starting (topics still
			// being created, say): a stop, not a failure. Not for a
			// one-shot command: a migrate cut short is a failure.
			return 0
		}
		fmt.Fprintf(stderr, "questline %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: questline <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nEvery flag can also be set by an environment variable: -http-addr is QUESTLINE_HTTP_ADDR.\nRun 'questline <command> -h' for a command's flags.")
}
