//go:build race

package proxy

// raceEnabled: the race detector is on, and with it memory figures that
// are not the edge's own.
const raceEnabled = true
