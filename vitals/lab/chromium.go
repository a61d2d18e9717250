package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrNoChromium means no usable Chromium was found. Its text is the one line
// a user needs to fix it.
var ErrNoChromium = errors.New("no Chromium for the lab sampler: set vitals.chromium to its path, or install it with `apt-get install -y chromium`")

// chromiumNames are looked up in PATH, in this order, when no path is configured.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless-shell"}

// FindChromium returns the Chromium to run: configured (a path or a name in
// PATH) when set, else the first known name in PATH. Its error wraps
// ErrNoChromium and reads as one line.
func FindChromium(configured string) (string, error) {
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", fmt.Errorf("%w (vitals.chromium = %q: %v)", ErrNoChromium, configured, err)
		}
		return absolute(p), nil
	}
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return absolute(p), nil
		}
	}
	return "", ErrNoChromium
}

func absolute(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		if _, err := os.Stat(a); err == nil {
			return a
		}
	}
	return p
}
