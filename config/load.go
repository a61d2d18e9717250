package config

import (
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// TokenEnv is the environment variable that supplies server.admin_token when the file
// sets none. A token in the file wins.
const TokenEnv = "EDGEVITALS_ADMIN_TOKEN"

// maxFileBytes bounds what Load reads: a config is a few KiB, never megabytes.
const maxFileBytes = 4 << 20

// Problem is one thing wrong with a config. String gives "FILE:LINE: key: what is wrong", as
// `edgevitals check` prints it; the line, key and file are left out when unknown (a missing
// key has no line, a Config built in code has no file).
type Problem struct {
	File string
	Line int
	Key  string // "site[1].origins[0]"; "" for the file as a whole
	Msg  string
	Err  error // the underlying error, if any (for errors.Is), e.g. fs.ErrNotExist
}

// String formats the problem as "FILE:LINE: key: what is wrong".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error makes a Problem usable as an error.
func (p Problem) Error() string { return p.String() }

// Unwrap returns the underlying error, if any.
func (p Problem) Unwrap() error { return p.Err }

// Errors is every problem found in a config, in file order.
type Errors struct {
	Problems []Problem
}

// Error gives one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns each problem as an error, for errors.Is and errors.As.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

func errorsOf(ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	return &Errors{Problems: ps}
}

// Load reads, decodes and validates the file at path. The returned Config has every default
// filled in. The error, when not nil, is an *Errors holding every problem found.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errorsOf([]Problem{{File: path, Msg: "cannot read config: " + unwrapPath(err), Err: err}})
	}
	defer f.Close() // read only: a failed close loses nothing
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, errorsOf([]Problem{{File: path, Msg: "cannot read config: " + unwrapPath(err), Err: err}})
	}
	if len(data) > maxFileBytes {
		return nil, errorsOf([]Problem{{File: path, Msg: fmt.Sprintf("must be at most %d bytes; is this a config file?", maxFileBytes)}})
	}
	return Parse(path, data)
}

// unwrapPath drops the path from an *os.PathError: the problem already names the file.
func unwrapPath(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse decodes and validates a config held in memory; name is the file name used in
// problems. The returned Config has every default filled in, and the admin token from
// EDGEVITALS_ADMIN_TOKEN when the document sets none.
func Parse(name string, data []byte) (*Config, error) {
	src := string(data)
	var doc map[string]any
	if _, err := toml.Decode(src, &doc); err != nil {
		return nil, errorsOf([]Problem{syntaxProblem(name, err)})
	}

	c := Default()
	d := &decoder{}
	d.table("", doc, reflect.ValueOf(c).Elem())
	if c.Server.AdminToken == "" {
		c.Server.AdminToken = Secret(os.Getenv(TokenEnv))
	}
	for i := range c.Sites {
		// Fill in what the file left to the preset, so the loaded Config says it outright.
		s := &c.Sites[i]
		ttl, swr, sie := Duration(s.TTL()), Duration(s.SWR()), Duration(s.SIE())
		s.DefaultTTL, s.StaleWhileRevalidate, s.StaleIfError = &ttl, &swr, &sie
		compress := s.Compresses()
		s.Compress = &compress
	}
	c.Server.ACME.fill(c.DataDir)
	problems := append(d.problems, c.validate(d.bad)...)

	lines := keyLines(src)
	for i := range problems {
		problems[i].File = name
		problems[i].Line = lineOf(lines, problems[i].Key)
	}
	// File order; problems without a line (missing keys) last. Stable keeps the order of
	// problems on one line.
	sort.SliceStable(problems, func(i, j int) bool {
		a, b := problems[i].Line, problems[j].Line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
	if err := errorsOf(problems); err != nil {
		return nil, err
	}
	return c, nil
}

// lineOf finds the line of key, or of the array it is an element of ("site[1].origins[0]"
// is on the line of "site[1].origins" when the array is written on one line).
func lineOf(lines map[string]int, key string) int {
	for key != "" {
		if l, ok := lines[key]; ok {
			return l
		}
		if !strings.HasSuffix(key, "]") {
			return 0
		}
		key = key[:strings.LastIndexByte(key, '[')]
	}
	return 0
}

func syntaxProblem(name string, err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return Problem{File: name, Line: pe.Position.Line, Msg: "invalid TOML: " + pe.Message, Err: err}
	}
	return Problem{File: name, Msg: "invalid TOML: " + err.Error(), Err: err}
}

// decoder assigns a decoded TOML document onto a Config, field by field through the toml
// struct tags, so that it can report every unknown key and every value of the wrong type or
// unit, each under its own key, where the TOML library would stop at the first.
type decoder struct {
	problems []Problem
	bad      map[string]bool // keys already reported, so validation does not report them twice
}

func (d *decoder) fail(key, format string, args ...any) {
	d.problems = append(d.problems, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	if d.bad == nil {
		d.bad = map[string]bool{}
	}
	d.bad[key] = true
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// table decodes a TOML table onto the struct rv. Keys are visited in sorted order so that
// problems come out the same every time.
func (d *decoder) table(path string, doc map[string]any, rv reflect.Value) {
	fields := map[string]int{}
	for i := 0; i < rv.NumField(); i++ {
		if tag, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("toml"), ","); tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := join(path, k)
		i, ok := fields[k]
		if !ok {
			d.fail(key, "unknown key")
			continue
		}
		d.value(key, doc[k], rv.Field(i))
	}
}

func (d *decoder) value(key string, v any, rv reflect.Value) {
	if rv.Kind() == reflect.Pointer {
		p := reflect.New(rv.Type().Elem())
		if d.value(key, v, p.Elem()); !d.bad[key] {
			rv.Set(p)
		}
		return
	}
	if rv.Addr().Type().Implements(textUnmarshaler) {
		d.text(key, v, rv)
		return
	}
	switch rv.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.fail(key, "must be a table, got %s", show(v))
			return
		}
		d.table(key, m, rv)
	case reflect.Slice:
		d.slice(key, v, rv)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			d.fail(key, "must be a string, got %s", show(v))
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			d.fail(key, "must be true or false, got %s", show(v))
			return
		}
		rv.SetBool(b)
	case reflect.Int:
		n, ok := v.(int64)
		if !ok || rv.OverflowInt(n) {
			d.fail(key, "must be an integer, got %s", show(v))
			return
		}
		rv.SetInt(n)
	case reflect.Float64:
		switch n := v.(type) {
		case float64:
			rv.SetFloat(n)
		case int64:
			rv.SetFloat(float64(n))
		default:
			d.fail(key, "must be a number, got %s", show(v))
		}
	default: // a field type this decoder was not taught; a bug, not the user's fault
		d.fail(key, "cannot be decoded into %s", rv.Type())
	}
}

// text decodes Duration and Size: strings through UnmarshalText; integers are bytes for a
// Size, and only 0 is accepted as a Duration (a number without a unit is ambiguous).
func (d *decoder) text(key string, v any, rv reflect.Value) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case int64:
		if rv.Type() == reflect.TypeFor[Duration]() && x != 0 {
			d.fail(key, `must be a duration with a unit like "750ms" or "5m", got %d`, x)
			return
		}
		s = strconv.FormatInt(x, 10)
	default:
		d.fail(key, "must be a string, got %s", show(v))
		return
	}
	if err := rv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
		d.fail(key, "%s", err)
	}
}

func (d *decoder) slice(key string, v any, rv reflect.Value) {
	var elems []any
	switch x := v.(type) {
	case []any:
		elems = x
	case []map[string]any:
		for _, m := range x {
			elems = append(elems, m)
		}
	default:
		d.fail(key, "must be an array, got %s", show(v))
		return
	}
	out := reflect.MakeSlice(rv.Type(), len(elems), len(elems))
	for i, e := range elems {
		ev := out.Index(i)
		switch p := ev.Addr().Interface().(type) {
		case *Site:
			*p = DefaultSite()
		case *Page:
			*p = DefaultPage()
		}
		d.value(key+"["+strconv.Itoa(i)+"]", e, ev)
	}
	rv.Set(out)
}

// show describes a decoded TOML value for a message.
func show(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return x.Format(time.RFC3339)
	default:
		return fmt.Sprint(v)
	}
}
