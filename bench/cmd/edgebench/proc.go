package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of the CPU times in /proc; it is 100 on every Linux port
// the harness runs on.
const clkTck = 100

// proc is one server process the harness started, with its process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // set before done closes
}

// startProc starts argv in its own process group, output to logPath, pinned to cpu with
// taskset when cpu >= 0. taskset execs the command, so the PID is the server's own.
func startProc(name, logPath string, cpu int, argv []string, env []string) (*proc, error) {
	if cpu >= 0 {
		argv = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, argv[0], err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the process's output, for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	return lastLines(string(b), 8)
}

// stop ends the process and its children: SIGTERM to the PIDs of its tree, then SIGKILL
// to those still there after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	pids := procTree(p.pid())
	starts := map[int]uint64{}
	for _, pid := range pids {
		if st, err := readProcStat(pid); err == nil {
			starts[pid] = st.start
		}
	}
	// The leader stops its own children (nginx workers, the Varnish cache child); killing
	// a worker first would only make its master start another one. An error means the
	// process is already gone, which is the goal.
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	for _, pid := range pids {
		if pid == p.pid() && p.exited() {
			continue // reaped: its PID may belong to someone else by now
		}
		// Children outliving their parent are reparented; the start time tells that the
		// PID is still the process we started and not a new one.
		if st, err := readProcStat(pid); err == nil && st.start == starts[pid] {
			_ = syscall.Kill(pid, syscall.SIGKILL) // gone already is fine
		}
	}
	<-p.done
	// Orphans are reaped by someone else: wait until they are gone, so that the next
	// round's CPU and ports are not still held by them.
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range pids {
		for alive(pid, starts[pid]) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// alive reports whether pid is still the process that started at start, and not a zombie.
func alive(pid int, start uint64) bool {
	st, err := readProcStat(pid)
	return err == nil && st.start == start && !st.zombie
}

// procStat holds the fields of /proc/PID/stat the harness uses.
type procStat struct {
	ppid   int
	ticks  uint64 // utime + stime, in clock ticks
	start  uint64 // start time after boot, in clock ticks: tells a PID's reuse apart
	zombie bool   // exited, not yet reaped (state Z)
}

// parseProcStat parses one /proc/PID/stat line. The command name may hold spaces and
// parentheses, so fields are counted after the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("proc stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] state, f[1] ppid, ..., f[11] utime, f[12] stime, ..., f[19] starttime
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("proc stat: %d fields after the command name, want at least 20", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: ppid %q: %w", f[1], err)
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: utime %q: %w", f[11], err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: stime %q: %w", f[12], err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: starttime %q: %w", f[19], err)
	}
	return procStat{ppid: ppid, ticks: ut + st, start: start, zombie: f[0] == "Z"}, nil
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// procTree returns root and all its descendants (Varnish's cache child, nginx's workers).
func procTree(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue // exited while we looked
		}
		children[st.ppid] = append(children[st.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// treeCPU returns the CPU time used so far by the process tree of root.
func treeCPU(root int) time.Duration {
	var ticks uint64
	for _, pid := range procTree(root) {
		if st, err := readProcStat(pid); err == nil {
			ticks += st.ticks
		}
	}
	return ticksToDuration(ticks)
}

func ticksToDuration(t uint64) time.Duration { return time.Duration(t) * time.Second / clkTck }

// parseVmHWM returns the peak resident set size from /proc/PID/status, in bytes.
func parseVmHWM(b []byte) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("proc status: VmHWM %q: want \"N kB\"", strings.TrimSpace(rest))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc status: VmHWM %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("proc status: no VmHWM line")
}

// treeHWM sums the peak RSS of the processes of root's tree. Shared pages count once per
// process, so for multi-process servers it is an upper bound.
func treeHWM(root int) int64 {
	var sum int64
	for _, pid := range procTree(root) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil {
			continue
		}
		if n, err := parseVmHWM(b); err == nil {
			sum += n
		}
	}
	return sum
}

// cpuTimes is the busy time of each CPU from /proc/stat.
type cpuTimes map[int]time.Duration

// parseCPUTimes parses /proc/stat: busy = every column but idle and iowait (guest time is
// already inside user).
func parseCPUTimes(b []byte) (cpuTimes, error) {
	out := cpuTimes{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			return nil, fmt.Errorf("proc stat: cpu name %q", f[0])
		}
		var busy uint64
		for i, s := range f[1:] {
			if i >= 8 { // guest, guest_nice: counted in user already
				break
			}
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("proc stat: %s column %d %q: %w", f[0], i+1, s, err)
			}
			if i == 3 || i == 4 { // idle, iowait
				continue
			}
			busy += v
		}
		out[n] = ticksToDuration(busy)
	}
	if len(out) == 0 {
		return nil, errors.New("proc stat: no per-cpu lines")
	}
	return out, nil
}

func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseCPUTimes(b)
}

func selfCPU() time.Duration {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		return 0
	}
	return ticksToDuration(st.ticks)
}
