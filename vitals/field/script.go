package field

import (
	_ "embed"
	"errors"
	"strconv"
	"strings"

	"github.com/edgevitals/edgevitals/vitals/lab"
)

//go:embed rum.js
var rumJS string

// samplePlaceholder is where rum.js takes the sample rate.
const samplePlaceholder = `'__SAMPLE_RATE__'`

// Script returns /__edgevitals/rum.js: measure.js and the field reporter,
// with comments stripped and the sample rate baked in (under 6 KB). It is
// the same for every page, so it can be cached for long. The caller must
// not modify the returned bytes.
func (c *Collector) Script() []byte {
	return c.script
}

func buildScript(rate float64) ([]byte, error) {
	if strings.Count(rumJS, samplePlaceholder) != 1 {
		return nil, errors.New("rum.js: the sample rate placeholder must appear once")
	}
	rum := strings.Replace(rumJS, samplePlaceholder, strconv.FormatFloat(rate, 'g', -1, 64), 1)
	return []byte(compactJS(lab.Script) + compactJS(rum)), nil
}

// compactJS strips comments, indentation and the spaces next to
// punctuation from the edgevitals scripts, and joins lines where no
// automatic semicolon can be at stake (after { ; , and before } ) ] .). It
// knows string literals but not regular expression literals or template
// strings, which those scripts therefore do not use.
func compactJS(src string) string {
	var lines []string
	var line []byte
	endLine := func() {
		if len(line) > 0 {
			lines = append(lines, string(line))
		}
		line = line[:0]
	}
	for i := 0; i < len(src); i++ {
		switch ch := src[i]; {
		case ch == '\'' || ch == '"':
			j := i + 1
			for j < len(src) && src[j] != ch && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j, len(src)-1)
			line = append(line, src[i:j+1]...)
			i = j
		case ch == '/' && i+1 < len(src) && src[i+1] == '/':
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
		case ch == '\n':
			endLine()
		case ch == ' ' || ch == '\t' || ch == '\r' || ch == '/' && i+1 < len(src) && src[i+1] == '*':
			// A run of spaces and block comments is one space, or none.
			j, newline := i, false
			for j < len(src) {
				if c := src[j]; c == ' ' || c == '\t' || c == '\r' {
					j++
					continue
				}
				if src[j] != '/' || j+1 >= len(src) || src[j+1] != '*' {
					break
				}
				end := strings.Index(src[j+2:], "*/")
				if end < 0 {
					j = len(src)
					break
				}
				newline = newline || strings.Contains(src[j+2:j+2+end], "\n")
				j += end + 4
			}
			i = j - 1
			if newline {
				endLine() // a comment over lines ends a line for semicolon insertion
				continue
			}
			if len(line) == 0 || j >= len(src) || src[j] == '\n' || src[j] == '/' && j+1 < len(src) && src[j+1] == '/' {
				continue
			}
			prev, next := line[len(line)-1], src[j]
			if (isPunct(prev) || isPunct(next)) && !(prev == next && (prev == '+' || prev == '-')) {
				continue
			}
			line = append(line, ' ')
		default:
			line = append(line, ch)
		}
	}
	endLine()
	var b strings.Builder
	b.Grow(len(src))
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if i > 0 && b.Len() > 0 {
			last := b.String()[b.Len()-1]
			if !strings.ContainsRune("{;,", rune(last)) && !strings.ContainsRune("})].", rune(l[0])) {
				b.WriteByte('\n')
			}
		}
		b.WriteString(l)
	}
	b.WriteByte('\n')
	return b.String()
}

// isPunct reports whether a space next to c can go: c is an operator or
// bracket, never part of a name, number or keyword.
func isPunct(c byte) bool {
	return strings.IndexByte("{}()[];,=:?<>&|!+-*%.", c) >= 0
}
