package lab

import (
	"fmt"
	"strings"
	"time"
)

// Profile is how a sample's browser is emulated, after Lighthouse's defaults.
type Profile struct {
	Name              string
	Width, Height     int64   // CSS pixels of the viewport
	DeviceScaleFactor float64 // device pixels per CSS pixel
	Mobile            bool    // mobile viewport behaviour (meta viewport, overlay scrollbars)
	Touch             bool    // touch events enabled
	CPUSlowdown       float64 // 1 = no slowdown
	UserAgent         string  // empty keeps Chromium's own
	// Network throttles the network when not nil. It is off in the built-in
	// profiles: DevTools throttling does not show in TTFB and its latency is
	// a floor, not an addition, so it hides the difference between an edge
	// hit and a miss. Use it to see what a slow phone network does to LCP.
	Network *Network
}

// Network is an emulated network, applied by Chromium to every request.
type Network struct {
	Latency       time.Duration // minimum time from request to response headers
	DownloadBytes int64         // bytes per second; 0 = unlimited
	UploadBytes   int64         // bytes per second; 0 = unlimited
}

// Slow4G is Lighthouse's mobile network: ~150 ms round trip, 1.6 Mbit/s
// down, 750 kbit/s up.
var Slow4G = Network{Latency: 150 * time.Millisecond, DownloadBytes: 16 * 1024 * 1024 / 80, UploadBytes: 750 * 1024 / 8}

// Mobile is Lighthouse's mobile profile (a mid-range phone, CPU 4x slower)
// without network throttling; see Profile.Network.
var Mobile = Profile{
	Name: "mobile", Width: 412, Height: 823, DeviceScaleFactor: 1.75,
	Mobile: true, Touch: true, CPUSlowdown: 4,
	UserAgent: "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
}

// Desktop is Lighthouse's desktop profile: a 1350x940 window, no throttling.
var Desktop = Profile{Name: "desktop", Width: 1350, Height: 940, DeviceScaleFactor: 1, CPUSlowdown: 1}

// ProfileNames are the names ProfileByName accepts.
var ProfileNames = []string{"mobile", "desktop"}

// ProfileByName returns the built-in profile with that name.
func ProfileByName(name string) (Profile, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "mobile":
		return Mobile, nil
	case "desktop":
		return Desktop, nil
	}
	return Profile{}, fmt.Errorf("unknown profile %q: want one of %s", name, strings.Join(ProfileNames, ", "))
}

// WithNetwork returns a copy of p that throttles the network as n does.
func (p Profile) WithNetwork(n Network) Profile {
	p.Network = &n
	return p
}
