package config

import (
	"strconv"
	"strings"
)

// keyLines maps every key of a TOML document to the line it is written on, so that problems
// found after decoding can point at the file. Keys are written the way problems name them:
// "server.listen", "site[1].origins", "site[1].origins[0]", "vitals.page[0]".
//
// The TOML library keeps key positions to itself, so this is a small scanner of its own. It
// runs only on documents the library has already parsed, and on anything else it gives up
// quietly: a missing line only makes a message less precise.
func keyLines(src string) map[string]int {
	s := &lineScanner{src: src, line: 1, lines: map[string]int{}, arrays: map[string]int{}}
	s.document()
	return s.lines
}

type lineScanner struct {
	src    string
	i      int
	line   int
	lines  map[string]int // key path -> line
	arrays map[string]int // array-of-tables path -> elements so far
}

func (s *lineScanner) peek(off int) byte {
	if s.i+off < len(s.src) {
		return s.src[s.i+off]
	}
	return 0
}

func (s *lineScanner) record(path string) {
	if _, ok := s.lines[path]; !ok && path != "" {
		s.lines[path] = s.line
	}
}

func (s *lineScanner) document() {
	table := ""
	for s.i < len(s.src) {
		start := s.i
		s.space(true)
		switch c := s.peek(0); {
		case c == 0:
			return
		case c == '[' && s.peek(1) == '[':
			s.i += 2
			parts := s.key()
			s.i = min(s.i+2, len(s.src))
			table = s.resolve(parts[:len(parts)-1])
			table = join(table, parts[len(parts)-1])
			s.record(table) // the array itself is where its first element starts
			n := s.arrays[table]
			s.arrays[table] = n + 1
			table += "[" + strconv.Itoa(n) + "]"
			s.record(table)
		case c == '[':
			s.i++
			parts := s.key()
			s.i = min(s.i+1, len(s.src))
			table = s.resolve(parts)
			s.record(table)
		default:
			s.keyValue(table)
		}
		if s.i == start {
			s.i++ // not TOML after all; move on rather than loop
		}
	}
}

// resolve turns a table header's dotted parts into a path, naming the last element of any
// array of tables on the way, as TOML does.
func (s *lineScanner) resolve(parts []string) string {
	path := ""
	for _, p := range parts {
		path = join(path, p)
		if n := s.arrays[path]; n > 0 {
			path += "[" + strconv.Itoa(n-1) + "]"
		}
	}
	return path
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// space skips blanks and comments, and newlines too when nl is set.
func (s *lineScanner) space(nl bool) {
	for s.i < len(s.src) {
		switch s.src[s.i] {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			if !nl {
				return
			}
			s.line++
			s.i++
		case '#':
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

// key reads a dotted key: bare or quoted parts separated by dots.
func (s *lineScanner) key() []string {
	var parts []string
	for {
		s.space(false)
		switch c := s.peek(0); c {
		case '"', '\'':
			start := s.i
			s.str()
			parts = append(parts, unquote(s.src[start:s.i]))
		default:
			start := s.i
			for s.i < len(s.src) && isBare(s.src[s.i]) {
				s.i++
			}
			parts = append(parts, s.src[start:s.i])
		}
		s.space(false)
		if s.peek(0) != '.' {
			return parts
		}
		s.i++
	}
}

func isBare(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func unquote(q string) string {
	if strings.HasPrefix(q, "'") {
		return strings.Trim(q, "'")
	}
	if u, err := strconv.Unquote(q); err == nil {
		return u
	}
	return strings.Trim(q, `"`)
}

// keyValue records the key of a key = value pair under table and skips its value, as a
// document and an inline table both hold them.
func (s *lineScanner) keyValue(table string) {
	path := join(table, strings.Join(s.key(), "."))
	s.record(path)
	s.space(false)
	if s.peek(0) == '=' {
		s.i++
		s.value(path)
	}
}

// value skips one value, recording the elements of arrays and the keys of inline tables.
func (s *lineScanner) value(path string) {
	s.space(false)
	switch s.peek(0) {
	case '"', '\'':
		s.str()
	case '[':
		s.i++
		for n := 0; ; n++ {
			s.space(true)
			if c := s.peek(0); c == ']' || c == 0 {
				s.i++
				return
			}
			elem := path + "[" + strconv.Itoa(n) + "]"
			s.record(elem)
			start := s.i
			s.value(elem)
			s.space(true)
			if s.peek(0) == ',' {
				s.i++
			} else if s.i == start {
				s.i++
			}
		}
	case '{':
		s.i++
		for {
			s.space(true)
			if c := s.peek(0); c == '}' || c == 0 {
				s.i++
				return
			}
			start := s.i
			s.keyValue(path)
			s.space(true)
			if s.peek(0) == ',' {
				s.i++
			} else if s.i == start {
				s.i++
			}
		}
	default: // numbers, booleans, dates: up to the next delimiter
		for s.i < len(s.src) && !strings.ContainsRune(",]}#\n", rune(s.src[s.i])) {
			s.i++
		}
	}
}

// str skips a basic, literal or multi-line string, counting the lines inside it.
func (s *lineScanner) str() {
	q := s.src[s.i]
	delim := string(q)
	if s.peek(1) == q && s.peek(2) == q {
		delim = strings.Repeat(delim, 3)
	}
	s.i += len(delim)
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == '\\' && q == '"':
			if s.peek(1) == '\n' {
				s.line++
			}
			s.i = min(s.i+2, len(s.src)) // a backslash may be the file's last byte
			continue
		case c == '\n':
			s.line++
			if len(delim) == 1 {
				s.i++
				return
			}
		case strings.HasPrefix(s.src[s.i:], delim):
			s.i += len(delim)
			// A multi-line string may end with up to two more quotes of its own.
			for len(delim) == 3 && s.peek(0) == q {
				s.i++
			}
			return
		}
		s.i++
	}
}
