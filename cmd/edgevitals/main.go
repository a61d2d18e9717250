// Command edgevitals is the edge for CMS sites: a caching reverse proxy that
// counts every request by cache outcome, measures Core Web Vitals and
// reports what each release changed. See README.md and DESIGN.md.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

// command is one subcommand. run returns the exit code: 0 success, 1 a
// problem the user can fix, 2 usage.
type command struct {
	run   func(args []string, stdout, stderr io.Writer) int
	usage string
}

// commands are registered by the file of each subcommand.
var commands = map[string]command{}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "version" || args[0] == "-version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "edgevitals", version)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "edgevitals: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: edgevitals COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  edgevitals %s\n", commands[n].usage)
	}
	fmt.Fprintln(w, "\nRun 'edgevitals COMMAND -h' for a command's flags.")
}
