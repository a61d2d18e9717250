//go:build !unix

package store

// heldByAnother cannot tell without flock; bbolt on these systems locks
// with LockFileEx, which makes the rename of a held file fail instead.
func heldByAnother(string) (bool, error) { return false, nil }
