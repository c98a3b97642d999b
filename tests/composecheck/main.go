// composecheck loads a compose project the way `docker compose config` does, with
// compose-go (the library Docker Compose itself uses): .env interpolation, validation
// against the Compose Specification schema, and the consistency checks (unknown
// services in depends_on, undefined volumes, ...). It prints the resolved project as
// JSON for the Python tests to cross-check, or one error line and exit status 1.
// Services of the named profiles (comma-separated) are loaded too.
//
//	go run ./tests/composecheck <project-dir> [profile,...]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: composecheck <project-dir> [profile,...]")
		os.Exit(2)
	}
	dir := os.Args[1]
	var profiles []string
	if len(os.Args) == 3 && os.Args[2] != "" {
		profiles = strings.Split(os.Args[2], ",")
	}
	options, err := cli.NewProjectOptions(
		nil,
		cli.WithWorkingDirectory(dir),
		cli.WithDefaultConfigPath,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithProfiles(profiles),
	)
	if err == nil {
		var project any
		project, err = options.LoadProject(context.Background())
		if err == nil {
			encoder := json.NewEncoder(os.Stdout)
			encoder.SetIndent("", "  ")
			err = encoder.Encode(project)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "composecheck: %v\n", err)
		os.Exit(1)
	}
}
