//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// heldByAnother reports whether another process holds the bbolt lock of
// the file at path (bbolt takes an exclusive flock while it has it open).
func heldByAnother(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close() // closing drops the lock taken below
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, fmt.Errorf("lock %s: %w", path, err)
	}
	return false, nil
}
