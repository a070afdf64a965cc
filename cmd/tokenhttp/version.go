package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

const versionHelp = `Usage: tokenhttp version

Print the module version, the Go version and the source revision this
binary was built from (from its build information).

Examples:
  tokenhttp version
  tokenhttp --version
`

func runVersion(_ context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	pos, help, err := parseArgs(fs, args)
	switch {
	case help:
		printHelp(e.stdout, versionHelp, fs)
		return exitOK
	case err != nil:
		return flagError(e, "version", err)
	case len(pos) > 0:
		return flagError(e, "version", usagef("unexpected argument %q", pos[0]))
	}
	fmt.Fprint(e.stdout, versionText(debug.ReadBuildInfo()))
	return exitOK
}

// versionText describes a build.
func versionText(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return fmt.Sprintf("tokenhttp (no build information)\n%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	s := fmt.Sprintf("tokenhttp %s\nmodule %s\n%s %s/%s\n", version, bi.Main.Path, bi.GoVersion, runtime.GOOS, runtime.GOARCH)
	settings := map[string]string{}
	for _, kv := range bi.Settings {
		settings[kv.Key] = kv.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		s += "revision " + rev
		if t := settings["vcs.time"]; t != "" {
			s += " (" + t + ")"
		}
		if settings["vcs.modified"] == "true" {
			s += ", with local changes"
		}
		s += "\n"
	}
	return s
}
