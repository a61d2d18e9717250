package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Recovery says that OpenStoreRecovering found the store file damaged and
// started a fresh store: at Path once the damaged file is moved aside, or,
// when it could not be moved, in a temporary directory (TempDir), whose
// contents a restart does not keep.
type Recovery struct {
	Path    string // the store file
	MovedTo string // where the damaged file is kept; "" when it stayed at Path
	Problem string // what was wrong with it
	// TempDir holds the fresh store when the damaged file could not be
	// moved (MoveError says why); "" otherwise.
	TempDir   string
	MoveError string
}

func (r *Recovery) String() string {
	if r.TempDir != "" {
		return fmt.Sprintf("store: damaged file %s (%s) could not be moved aside (%s); started fresh in %s, lost on restart",
			r.Path, r.Problem, r.MoveError, r.TempDir)
	}
	return fmt.Sprintf("store: damaged file moved to %s (%s); started fresh", r.MovedTo, r.Problem)
}

// OpenStoreRecovering opens the store at path like OpenStore; when the file
// is damaged, it moves the file aside (MoveAside, never deleting it) and
// starts a fresh store at path, saying so in the Recovery. When the file
// cannot be moved, or no fresh store can be made beside it, the fresh
// store goes in a new temporary directory instead, so vitals keep running
// until the operator looks. Other errors (another edgevitals holds the
// file, a newer edgevitals wrote it, no permission to read it) are
// returned as they are: moving the file would not help.
func OpenStoreRecovering(path string, now time.Time) (*Store, *Recovery, error) {
	st, err := OpenStore(path)
	var de *DamagedError
	if !errors.As(err, &de) {
		return st, nil, err
	}
	if held, herr := heldByAnother(path); herr != nil || held {
		if herr != nil {
			return nil, nil, fmt.Errorf("%w (checking whether another process holds it: %w)", err, herr)
		}
		return nil, nil, fmt.Errorf("open store %s: another edgevitals holds it", path)
	}
	rec := &Recovery{Path: path, Problem: de.Problem}
	moved, merr := MoveAside(path, now)
	if merr == nil {
		rec.MovedTo = moved
		if st, err = OpenStore(path); err == nil {
			return st, rec, nil
		}
		merr = fmt.Errorf("open a fresh store at %s: %w", path, err)
	}
	rec.MoveError = merr.Error()
	if rec.TempDir, err = os.MkdirTemp("", "edgevitals-store-"); err != nil {
		return nil, nil, fmt.Errorf("%w; %w; and no temporary store: %w", de, merr, err)
	}
	if st, err = OpenStore(filepath.Join(rec.TempDir, filepath.Base(path))); err != nil {
		return nil, nil, fmt.Errorf("%w; %w; and no temporary store: %w", de, merr, err)
	}
	return st, rec, nil
}

// MoveAside renames the file at path to path.damaged-<UTC time>, with a
// counter when that name is taken, and returns the new name. It never
// deletes or overwrites a file.
func MoveAside(path string, now time.Time) (string, error) {
	base := path + ".damaged-" + now.UTC().Format("20060102T150405Z")
	for i := range 100 {
		to := base
		if i > 0 {
			to = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := os.Lstat(to); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(path, to); err != nil {
			return "", fmt.Errorf("move damaged store file aside: %w", err)
		}
		return to, nil
	}
	return "", fmt.Errorf("move damaged store file aside: %s and 99 more names are taken", base)
}
