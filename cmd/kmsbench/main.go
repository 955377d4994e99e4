// Command kmsbench measures kmsd: HTTP load through the official AWS SDK for
// Go v2 against a running server, the raw PKCS#11 AES-GCM rate of the HSM
// in-process, bulk key creation, and server start-up time.
//
// Every measurement is a fixed-duration, closed-loop run (each worker sends
// its next request when the previous one answered), so results depend on the
// machine; compare numbers taken in one run on one machine only.
// scripts/bench runs the whole set and writes var/bench/report.txt.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: its name, a one-line summary for the usage
// text, and its entry point, which parses its own flags from args.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"load", "drive a running kmsd through the AWS SDK: req/s, p50/p99, errors, server CPU per 1k requests", runLoad},
	{"raw", "in-process AES-GCM encrypt (32 B) on the PKCS#11 token, the ceiling for HTTP rates", runRaw},
	{"asym", "Sign (P-256, RSA-2048 PSS), Verify, GenerateMac: raw in-process HSM rate and kmsd rate in one run", runAsym},
	{"mkkeys", "create keys through the API with many workers (fill a token for -keys runs)", runMkkeys},
	{"wait-ready", "measure kmsd start-up: wait for its -addr-file, then for the first successful request", runWaitReady},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmsbench:", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return flag.ErrHelp
		}
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kmsbench COMMAND [flags]   (kmsbench COMMAND -help lists the flags)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "kmsbench only talks to loopback endpoints (127.0.0.1, ::1, localhost).")
	fmt.Fprintln(w, "scripts/bench sets up a separate token under var/bench and runs everything in one go.")
}
