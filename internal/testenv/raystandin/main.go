package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the CLI: it returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: ray [OPTIONS] COMMAND [ARGS]...\n\nCommands:\n  start  Start Ray processes manually on the local machine.\n  stop   Stop Ray processes manually on the local machine.")
		return 2
	}
	switch args[0] {
	case "--version":
		fmt.Fprintf(stdout, "ray, version %s\n", rayVersion())
		return 0
	case "start":
		opts, err := parseStart(args[1:])
		if err != nil {
			return printUsageError(stderr, err)
		}
		logger := slog.New(slog.NewTextHandler(stderr, nil))
		if err := start(ctx, opts, logger, stdout); err != nil {
			fmt.Fprintf(stderr, "ray start failed: %v\n", err)
			return 1
		}
		return 0
	case "stop":
		n, err := stopCommand(args[1:])
		if err != nil {
			return printUsageError(stderr, err)
		}
		if n == 0 {
			fmt.Fprintln(stdout, "Did not find any active Ray processes.")
		} else {
			fmt.Fprintf(stdout, "Stopped all %d Ray processes.\n", n)
		}
		return 0
	}
	return printUsageError(stderr, &usageError{cmd: "ray", msg: fmt.Sprintf("No such command '%s'.", args[0])})
}

// printUsageError prints a command-line error the way click does and returns its exit code.
func printUsageError(stderr io.Writer, err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Usage: %s [OPTIONS]\nTry '%s --help' for help.\n\nError: %s\n", ue.cmd, ue.cmd, ue.msg)
		return 2
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	return 1
}
