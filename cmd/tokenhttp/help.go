package main

import (
	"context"
	"fmt"
	"strings"
)

// usage is the top-level help: the commands and the exit codes.
func usage() string {
	var b strings.Builder
	b.WriteString("tokenhttp: OAuth2 tokens from real-world token endpoints.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  tokenhttp %-9s %s\n", c.name, c.summary)
	}
	b.WriteString(`
Try it without a provider:
  tokenhttp emulate            # prints a ready "tokenhttp call" line for each emulator

`)
	b.WriteString(exitTable)
	b.WriteString("\nRun 'tokenhttp help <command>' for its flags and examples.\n")
	return b.String()
}

const helpHelp = `Usage: tokenhttp help [command]

Show the commands, or one command's flags and examples.

Examples:
  tokenhttp help
  tokenhttp help call
  tokenhttp call --help
`

func runHelp(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stdout, usage())
		return exitOK
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(e.stdout, helpHelp)
		return exitOK
	}
	c, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(e.stderr, "tokenhttp: unknown command %q\n\n%s", args[0], usage())
		return exitUsage
	}
	if c.name == "help" {
		fmt.Fprint(e.stdout, helpHelp)
		return exitOK
	}
	return c.run(ctx, []string{"--help"}, e)
}
