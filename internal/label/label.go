// Package label is the rule for the names edgevitals turns into metric
// label values and store keys: site names, conversion goals, page groups.
// The config and the field collector both check names by it.
package label

import "regexp"

// pattern is what such a name looks like: lowercase letters, digits, - and
// _, starting with a letter or digit.
var pattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Pattern is the rule as text, for error messages.
const Pattern = `^[a-z0-9][a-z0-9_-]*$`

// MaxBytes bounds a goal or page group name a beacon may carry.
const MaxBytes = 64

// Match reports whether s follows Pattern, whatever its length.
func Match(s string) bool { return pattern.MatchString(s) }

// Valid reports whether s follows Pattern and is at most MaxBytes long.
func Valid(s string) bool { return len(s) <= MaxBytes && Match(s) }
