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

	"github.com/edgevitals/edgevitals/config"
)

func init() {
	commands["serve"] = command{run: runServe, usage: "serve [-config FILE]      run the proxy, the admin listener and the sampler"}
	commands["check"] = command{run: runCheck, usage: "check -config FILE       validate a config file"}
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "edgevitals.toml", "config `FILE`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	if !cfg.AdminOnLoopback() && cfg.Server.AdminToken.Reveal() == "" {
		fmt.Fprintf(stderr, "%s: server.admin_token: required when server.admin_listen (%s) is not on loopback; set it or %s\n",
			*path, cfg.Server.AdminListen, config.TokenEnv)
		return 1
	}
	log := processLogger(cfg.Log, stderr)
	a, err := newApp(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "edgevitals: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup, usr1 := make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(hup)
	defer signal.Stop(usr1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				// reload logs a refused file itself, and the running
				// config stays: the proxy serves either way.
				_ = a.reload(*path)
			case <-usr1:
				a.reopenAccessLog()
			}
		}
	}()
	if err := a.run(ctx); err != nil {
		fmt.Fprintf(stderr, "edgevitals: %v\n", err)
		return 1
	}
	return 0
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config `FILE` to validate")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "usage: edgevitals check -config FILE")
		return 2
	}
	if _, err := config.Load(*path); err != nil {
		printConfigErrors(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

// printConfigErrors prints one line per problem, FILE:LINE: key: what is wrong.
func printConfigErrors(w io.Writer, err error) {
	var ce *config.Errors
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Fprintln(w, p.String())
		}
		return
	}
	fmt.Fprintln(w, err)
}
