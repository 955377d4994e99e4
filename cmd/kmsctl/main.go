// Command kmsctl is the command-line client of the key service (and of AWS
// KMS): envelope encryption of files and streams in the AWS Encryption SDK
// message format (kmsctl encrypt / decrypt, see kms/envelope), and every KMS
// API operation in the style of `aws kms` (kmsctl kms create-key, ...).
//
// Endpoint, region and credentials are found as AWS tools find them
// (aws-sdk-go-v2/config): AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL,
// AWS_REGION, AWS_PROFILE, the shared config and credentials files, the
// AWS_ACCESS_KEY_ID family of variables; --endpoint-url, --region and
// --profile override them.
//
// Commands are registered from each file's init (see registry.go), so
// groups such as "admin" and "audit" are added in their own files.
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

// Env is what a command runs with.
type Env struct {
	Globals
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// StderrIsTerminal decides whether progress is shown by default.
	StderrIsTerminal bool
}

// exitInterrupted is the conventional status after SIGINT.
const exitInterrupted = 130

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), endingSignals()...)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, isTerminal(os.Stderr))
	stop()
	os.Exit(code)
}

// endingSignals are the signals that end a run through its cleanup, which
// removes the temporary output (possibly plaintext not yet authenticated)
// instead of leaving it behind. SIGHUP only when not ignored: under nohup
// a closed terminal must not end the run. SIGQUIT is left to Go, whose
// goroutine dump is what a user sending it wants.
func endingSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// usageError is a command-line mistake: exit status 2 with a hint.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) int {
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, StderrIsTerminal: tty}
	// Global flags may come first.
	gfs := flag.NewFlagSet("kmsctl", flag.ContinueOnError)
	gfs.SetOutput(io.Discard)
	env.Globals.add(gfs)
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, "")
			return 0
		}
		fmt.Fprintf(stderr, "kmsctl: %v\n", err)
		return 2
	}
	args = gfs.Args()
	if len(args) == 0 || args[0] == "help" {
		usage(stdout, "")
		return 0
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		if _, isGroup := groupSummaries[args[0]]; isGroup {
			if len(args) == 1 || args[1] == "help" || args[1] == "-h" || args[1] == "--help" {
				usage(stdout, args[0])
				return 0
			}
			fmt.Fprintf(stderr, "kmsctl: unknown command %q in group %s (kmsctl %s help)\n", args[1], args[0], args[0])
			return 2
		}
		fmt.Fprintf(stderr, "kmsctl: unknown command %q (kmsctl help)\n", args[0])
		return 2
	}
	fs := flag.NewFlagSet("kmsctl "+cmd.Path, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env.Globals.add(fs)
	if cmd.Flags != nil {
		cmd.Flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: kmsctl %s %s\n\n%s\n\nFlags:\n", cmd.Path, cmd.Usage, cmd.Summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := env.Globals.check(); err != nil {
		fmt.Fprintf(stderr, "kmsctl: %v\n", err)
		return 2
	}
	err := cmd.Run(ctx, env, fs, fs.Args())
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "kmsctl %s: %v\n", cmd.Path, err)
		return 2
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "kmsctl %s: interrupted\n", cmd.Path)
		return exitInterrupted
	default:
		fmt.Fprintf(stderr, "kmsctl %s: %v\n", cmd.Path, err)
		return 1
	}
}
