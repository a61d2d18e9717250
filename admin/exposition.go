package admin

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// writeExposition writes set in the Prometheus text format with the HELP
// text of help (the first map naming a family wins). Each family is written once, its lines together: one
// HELP, one TYPE, then every series, whatever the number of series and of
// writers that emitted them (metrics.WriteGauge* and friends repeat HELP and
// TYPE on every call, and promtool and expfmt reject a second HELP or TYPE
// line, or a TYPE after samples). Families keep the order they first appear in.
func writeExposition(w io.Writer, set *metrics.Set, help []map[string]string) {
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	for _, f := range families(buf.Bytes()) {
		if f.help != nil {
			if text, known := helpOf(help, f.name); known {
				fmt.Fprintf(w, "# HELP %s %s\n", f.name, text)
			} else {
				w.Write(f.help)
			}
		}
		if f.typ != nil {
			w.Write(f.typ)
		}
		for _, l := range f.lines {
			w.Write(l)
		}
	}
}

// family is one metric family of an exposition: its first HELP and TYPE
// lines and its other lines (samples, other comments), newline included.
type family struct {
	name      string
	help, typ []byte
	lines     [][]byte
}

// families groups the lines of a Prometheus text exposition by family, in
// the order families first appear. A sample's family is its name, or for
// name_bucket, name_sum and name_count the histogram or summary name when a
// TYPE line declares one. Blank lines are dropped.
func families(b []byte) []*family {
	var lines [][]byte
	for line := range bytes.Lines(b) {
		if len(bytes.TrimSpace(line)) > 0 {
			if line[len(line)-1] != '\n' {
				line = append(line[:len(line):len(line)], '\n')
			}
			lines = append(lines, line)
		}
	}
	kinds := map[string]string{} // family -> declared type
	for _, l := range lines {
		if rest, ok := bytes.CutPrefix(l, []byte("# TYPE ")); ok {
			if f := bytes.Fields(rest); len(f) == 2 {
				kinds[string(f[0])] = string(f[1])
			}
		}
	}
	byName := map[string]*family{}
	var out []*family
	get := func(name string) *family {
		f := byName[name]
		if f == nil {
			f = &family{name: name}
			byName[name] = f
			out = append(out, f)
		}
		return f
	}
	var last *family
	for _, l := range lines {
		switch {
		case bytes.HasPrefix(l, []byte("# HELP ")), bytes.HasPrefix(l, []byte("# TYPE ")):
			fields := bytes.Fields(l)
			if len(fields) < 3 {
				continue // "# HELP" without a name says nothing
			}
			last = get(string(fields[2]))
			if fields[1][0] == 'H' && last.help == nil {
				last.help = l
			} else if fields[1][0] == 'T' && last.typ == nil {
				last.typ = l
			}
		case l[0] == '#':
			if last == nil {
				last = get("")
			}
			last.lines = append(last.lines, l)
		default:
			last = get(sampleFamily(l, kinds))
			last.lines = append(last.lines, l)
		}
	}
	return out
}

// sampleFamily is the family name of a sample line.
func sampleFamily(l []byte, kinds map[string]string) string {
	end := bytes.IndexAny(l, "{ \t")
	if end < 0 {
		end = len(l)
	}
	name := string(bytes.TrimSpace(l[:end]))
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if k := kinds[base]; k == "histogram" || k == "summary" || k == "gaugehistogram" {
				return base
			}
		}
	}
	return name
}

// helpOf finds the HELP text of family in help.
func helpOf(help []map[string]string, family string) (string, bool) {
	for _, m := range help {
		if text, ok := m[family]; ok {
			return text, true
		}
	}
	return "", false
}
