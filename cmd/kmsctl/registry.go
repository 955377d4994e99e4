package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Command is one kmsctl command. Path is its name as typed: one word for a
// top-level command ("encrypt"), two for a command in a group
// ("kms create-key", "admin ...", "audit ..."). Each group lives in its own
// file, which registers its commands from an init function:
//
//	func init() { register(&Command{Path: "audit tail", Summary: "...", Run: auditTail}) }
//
// so a new group touches no existing file.
type Command struct {
	Path    string
	Summary string
	// Usage is shown after "kmsctl <path>" in help (e.g. "[flags] FILE...").
	Usage string
	// Flags adds the command's flags to fs; nil for none. The global
	// flags (endpoint, region, profile, output) are added by the runner.
	Flags func(fs *flag.FlagSet)
	// Run executes the command with the parsed flags and the remaining
	// arguments.
	Run func(ctx context.Context, e *Env, fs *flag.FlagSet, args []string) error
}

// groupSummaries describe command groups in the top-level help.
var groupSummaries = map[string]string{}

var commands = map[string]*Command{}

// register adds a command; a duplicate path is a programming error.
func register(c *Command) {
	if _, dup := commands[c.Path]; dup {
		panic("kmsctl: command registered twice: " + c.Path)
	}
	commands[c.Path] = c
}

// registerGroup names a group for the help text.
func registerGroup(name, summary string) { groupSummaries[name] = summary }

// lookup finds the command named by the leading words of args and returns
// it with the rest; nil if there is none.
func lookup(args []string) (*Command, []string) {
	if len(args) >= 2 {
		if c, ok := commands[args[0]+" "+args[1]]; ok {
			return c, args[2:]
		}
	}
	if len(args) >= 1 {
		if c, ok := commands[args[0]]; ok {
			return c, args[1:]
		}
	}
	return nil, args
}

// usage prints the commands, or those of one group.
func usage(w io.Writer, group string) {
	var paths []string
	for p := range commands {
		if group == "" || strings.HasPrefix(p, group+" ") {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	if group == "" {
		fmt.Fprintln(w, "usage: kmsctl [global flags] COMMAND [flags] [args]")
		fmt.Fprintln(w, "\nCommands:")
		for _, p := range paths {
			if !strings.Contains(p, " ") {
				fmt.Fprintf(w, "  %-28s %s\n", p, commands[p].Summary)
			}
		}
		var groups []string
		for g := range groupSummaries {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		fmt.Fprintln(w, "\nCommand groups (kmsctl GROUP help):")
		for _, g := range groups {
			fmt.Fprintf(w, "  %-28s %s\n", g, groupSummaries[g])
		}
	} else {
		fmt.Fprintf(w, "usage: kmsctl %s COMMAND [flags]\n\nCommands:\n", group)
		for _, p := range paths {
			fmt.Fprintf(w, "  %-40s %s\n", strings.TrimPrefix(p, group+" "), commands[p].Summary)
		}
	}
	fmt.Fprintln(w, "\nGlobal flags (before or after the command):")
	fs := flag.NewFlagSet("global", flag.ContinueOnError)
	(&Globals{}).add(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
}
