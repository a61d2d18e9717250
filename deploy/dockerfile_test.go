package deploy

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The Dockerfile is checked as text: no Docker engine runs where these tests do, so these
// tests do not build the images. They hold what an image user relies on: the two targets,
// the health check, the labels and a user that is not root, following each stage's FROM
// chain as Docker does.

var dockerfile = filepath.Join("..", "Dockerfile")

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	line int    // where it starts, 1-based
	cmd  string // upper case: FROM, RUN, LABEL, ...
	args string
}

// stage is one FROM and the instructions under it.
type stage struct {
	name, from string
	ins        []instruction
}

// parseDockerfile splits a Dockerfile into stages. Comments and blank lines go; a line
// ending in a backslash continues on the next (comment lines inside a continuation are
// skipped, as Docker does).
func parseDockerfile(text string) ([]stage, error) {
	var stages []stage
	var cur *instruction
	flush := func() error {
		if cur == nil {
			return nil
		}
		in := *cur
		cur = nil
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			} else if len(f) != 1 {
				return fmt.Errorf("line %d: FROM %s: want IMAGE [AS NAME]", in.line, in.args)
			}
			stages = append(stages, st)
			return nil
		}
		if in.cmd == "ARG" && len(stages) == 0 {
			return nil // a global ARG, before the first FROM
		}
		if len(stages) == 0 {
			return fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		return nil
	}
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cont := strings.HasSuffix(line, `\`)
		line = strings.TrimSpace(strings.TrimSuffix(line, `\`))
		if cur == nil {
			cmd, args, _ := strings.Cut(line, " ")
			cur = &instruction{line: i + 1, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		} else {
			cur.args += " " + line
		}
		if !cont {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: %s ends in a continuation", cur.line, cur.cmd)
	}
	return stages, nil
}

// chain returns the instructions that make stage name's image: those of the stages it is
// built FROM (by name), oldest first, then its own. args are the ARGs declared in the
// stage itself: a LABEL can only use those (ARG scope ends at each FROM).
func chain(stages []stage, name string) (ins []instruction, args map[string]bool, err error) {
	byName := map[string]stage{}
	for _, s := range stages {
		if s.name != "" {
			byName[s.name] = s
		}
	}
	s, ok := byName[name]
	if !ok {
		return nil, nil, fmt.Errorf("no stage %q", name)
	}
	args = map[string]bool{}
	for _, in := range s.ins {
		if in.cmd == "ARG" {
			n, _, _ := strings.Cut(in.args, "=")
			args[n] = true
		}
	}
	for depth := 0; ; depth++ {
		if depth > len(stages) {
			return nil, nil, fmt.Errorf("stage %q: FROM chain loops", name)
		}
		ins = append(slices.Clone(s.ins), ins...)
		parent, ok := byName[s.from]
		if !ok {
			return ins, args, nil // an image from a registry
		}
		s = parent
	}
}

// labels parses the key=value pairs of LABEL instructions, later ones winning.
func labels(ins []instruction) (map[string]string, error) {
	out := map[string]string{}
	for _, in := range ins {
		if in.cmd != "LABEL" {
			continue
		}
		rest := in.args
		for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
			k, v, ok := strings.Cut(rest, "=")
			if !ok || strings.ContainsAny(k, " \t") {
				return nil, fmt.Errorf("line %d: LABEL %q: want key=value", in.line, rest)
			}
			if strings.HasPrefix(v, `"`) {
				q, err := strconv.QuotedPrefix(v)
				if err != nil {
					return nil, fmt.Errorf("line %d: LABEL %s: %w", in.line, k, err)
				}
				uq, err := strconv.Unquote(q)
				if err != nil {
					return nil, fmt.Errorf("line %d: LABEL %s: %w", in.line, k, err)
				}
				out[k], rest = uq, v[len(q):]
			} else {
				val, after, _ := strings.Cut(v, " ")
				out[k], rest = val, after
			}
		}
	}
	return out, nil
}

func last(ins []instruction, cmd string) (instruction, bool) {
	for i := len(ins) - 1; i >= 0; i-- {
		if ins[i].cmd == cmd {
			return ins[i], true
		}
	}
	return instruction{}, false
}

// binary is where both images hold edgevitals; HEALTHCHECK and ENTRYPOINT run it.
const binary = "/usr/local/bin/edgevitals"

func TestDockerfile(t *testing.T) {
	t.Parallel()
	stages, err := parseDockerfile(read(t, dockerfile))
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}
	if n := len(stages); n == 0 || stages[n-1].name != "full" {
		t.Errorf("%s: last stage is not \"full\": a plain docker build must give the image with Chromium", dockerfile)
	}
	for _, target := range []string{"proxy", "full"} {
		t.Run(target, func(t *testing.T) {
			ins, args, err := chain(stages, target)
			if err != nil {
				t.Fatal(err)
			}
			copied := false
			for _, in := range ins {
				if in.cmd == "COPY" && strings.HasPrefix(in.args, "--from=build ") && strings.HasSuffix(in.args, " "+binary) {
					copied = true
				}
			}
			if !copied {
				t.Errorf("no COPY --from=build ... %s", binary)
			}

			hc, ok := last(ins, "HEALTHCHECK")
			if !ok {
				t.Fatal("no HEALTHCHECK")
			}
			_, exec, ok := strings.Cut(hc.args, "CMD ")
			var argv []string
			if !ok || json.Unmarshal([]byte(exec), &argv) != nil || len(argv) < 2 || argv[0] != binary || argv[1] != "health" {
				t.Errorf("line %d: HEALTHCHECK %s, want CMD [%q, \"health\", ...] (exec form: no shell in the image is needed)", hc.line, hc.args, binary)
			}
			if !strings.Contains(hc.args, "--timeout=") || !slices.Contains(argv, "-timeout") {
				t.Errorf("line %d: HEALTHCHECK %s: want Docker's --timeout and health's -timeout below it", hc.line, hc.args)
			}

			user, ok := last(ins, "USER")
			if !ok {
				t.Fatal("no USER: the image would run as root")
			}
			uid, _, _ := strings.Cut(user.args, ":")
			if n, err := strconv.Atoi(uid); err != nil || n == 0 {
				t.Errorf("line %d: final USER %s, want a numeric non-root UID (Kubernetes runAsNonRoot checks numbers)", user.line, user.args)
			}

			if ep, ok := last(ins, "ENTRYPOINT"); !ok || ep.args != `["`+binary+`"]` {
				t.Errorf("ENTRYPOINT = %+v, want [%q]", ep, binary)
			}

			ls, err := labels(ins)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"title", "description", "source", "version", "revision", "created"} {
				if ls["org.opencontainers.image."+k] == "" {
					t.Errorf("no label org.opencontainers.image.%s", k)
				}
			}
			for k, arg := range map[string]string{"version": "VERSION", "revision": "REVISION", "created": "CREATED"} {
				if v := ls["org.opencontainers.image."+k]; v != "${"+arg+"}" || !args[arg] {
					t.Errorf("label org.opencontainers.image.%s = %q (ARG %s in this stage: %v), want ${%s} from an ARG of the stage", k, v, arg, args[arg], arg)
				}
			}

			var chromium bool
			for _, in := range ins {
				if in.cmd == "RUN" && strings.Contains(in.args, "apt-get install") && slices.Contains(strings.Fields(in.args), "chromium") {
					chromium = true
				}
			}
			if want := target == "full"; chromium != want {
				t.Errorf("installs chromium = %v, want %v", chromium, want)
			}
		})
	}
}

// TestParseDockerfile holds the parser the test above relies on to what Docker reads.
func TestParseDockerfile(t *testing.T) {
	t.Parallel()
	stages, err := parseDockerfile(`ARG BASE=x
FROM golang AS build
RUN a \
 # a comment inside a continuation
 && b
FROM debian AS base
LABEL a="one two" b=three \
      c="with \"quotes\""
USER 10001
FROM base AS final
ARG VERSION
LABEL b=four
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 3 || stages[0].ins[0].args != "a && b" || stages[0].ins[0].line != 3 {
		t.Fatalf("stages = %+v", stages)
	}
	ins, args, err := chain(stages, "final")
	if err != nil || len(ins) != 4 || !args["VERSION"] || len(args) != 1 {
		t.Fatalf("chain(final) = %+v %v %v", ins, args, err)
	}
	ls, err := labels(ins)
	want := map[string]string{"a": "one two", "b": "four", "c": `with "quotes"`}
	if err != nil || fmt.Sprint(ls) != fmt.Sprint(want) {
		t.Errorf("labels = %v %v, want %v", ls, err, want)
	}
	for _, bad := range []string{"RUN x\n", "FROM a AS\n", "FROM a\nRUN x \\\n"} {
		if _, err := parseDockerfile(bad); err == nil {
			t.Errorf("parseDockerfile(%q) = nil error", bad)
		}
	}
	if _, _, err := chain([]stage{{name: "a", from: "b"}, {name: "b", from: "a"}}, "a"); err == nil {
		t.Error("chain of a loop = nil error")
	}
}
