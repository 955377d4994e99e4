package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// cellFlags are the flags shared by every measuring command.
type cellFlags struct {
	concurrency intList
	duration    time.Duration
	warmup      time.Duration
	record      string
	label       string
}

func (f *cellFlags) register(fs *flag.FlagSet, label string) {
	f.concurrency = intList{1, 16, 64}
	fs.Var(&f.concurrency, "concurrency", "comma-separated `list` of worker counts, one cell each")
	fs.DurationVar(&f.duration, "duration", 5*time.Second, "measured `time` per cell")
	fs.DurationVar(&f.warmup, "warmup", time.Second, "unmeasured `time` before each cell (connections, session pool, caches)")
	fs.StringVar(&f.record, "record", "", "append tab-separated results to this `file` (read by scripts/bench)")
	fs.StringVar(&f.label, "label", label, "`name` of this run in the -record file")
}

func (f *cellFlags) validate() error {
	if f.duration <= 0 {
		return fmt.Errorf("-duration must be positive")
	}
	if f.warmup < 0 {
		return fmt.Errorf("-warmup must not be negative")
	}
	return nil
}

// newFlagSet makes a subcommand's flag set whose -help shows summary first.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kmsbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: kmsbench %s [flags]\n\n%s\n\nflags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and refuses positional arguments, which are always
// a mistake here (a PIN typed on the command line, for instance).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

// intList is a flag holding comma-separated positive integers.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	var out intList
	for part := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > 4096 {
			return fmt.Errorf("%q: want positive integers up to 4096", part)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

// stringList is a flag holding comma-separated names.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	var out stringList
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	if len(out) == 0 {
		return fmt.Errorf("empty list")
	}
	*l = out
	return nil
}
